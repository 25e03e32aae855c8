/**
 * Checks that a string is an age X25519 recipient: Bech32 (BIP 173, not Bech32m) with the
 * human-readable part "age" and 32 bytes of key. A typo in a recipient would silently make
 * backups undecryptable by its owner, so the checksum is verified, not just the prefix.
 */
const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATORS[i]!;
  }
  return chk >>> 0;
}

const expandHrp = (hrp: string) => [...[...hrp].map((c) => c.charCodeAt(0) >> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];

/** 5-bit groups to bytes; null when the padding is not zero bits (a malformed encoding). */
function toBytes(words: number[]): number[] | null {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  for (const w of words) {
    acc = (acc << 5) | w;
    bits += 5;
    while (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (bits >= 5 || (acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

export function isAgeRecipient(value: string): boolean {
  // age writes recipients in lowercase; Bech32 forbids mixed case anyway.
  if (value !== value.toLowerCase() || !value.startsWith("age1") || value.length > 90) return false;
  const data: number[] = [];
  for (const c of value.slice(4)) {
    const v = CHARSET.indexOf(c);
    if (v < 0) return false;
    data.push(v);
  }
  if (data.length < 6 || polymod([...expandHrp("age"), ...data]) !== 1) return false;
  return toBytes(data.slice(0, -6))?.length === 32;
}
