/**
 * Prefixed, time-sortable ids: `{prefix}_{26 chars}` where the 26 chars are a ULID
 * (48-bit millisecond time + 80 random bits, Crockford base32). Ids minted in the same
 * millisecond by this process increase monotonically, so "newest first" by id is the
 * insertion order and keyset pagination over ids is stable.
 */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export const ID_PREFIXES = {
  dataSource: "ds",
  policy: "pol",
  attachment: "att",
  job: "job",
  destination: "dst",
  restore: "rst",
  restorePlan: "rpl",
  audit: "aud",
  request: "req",
  notificationChannel: "nch",
  notificationRule: "nru",
  notificationDelivery: "ndl",
  node: "node",
} as const;

export type IdPrefix = (typeof ID_PREFIXES)[keyof typeof ID_PREFIXES];

let lastTime = -1;
const lastRandom = new Uint8Array(10);

function encodeTime(ms: number): string {
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits → 16 base32 chars, most significant first.
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = "";
  for (let i = 0; i < 16; i++) {
    out = ALPHABET[Number(bits & 31n)] + out;
    bits >>= 5n;
  }
  return out;
}

function incrementRandom(bytes: Uint8Array): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 255) {
      bytes[i]!++;
      return;
    }
    bytes[i] = 0;
  }
}

export function ulid(now = Date.now()): string {
  if (now <= lastTime) {
    incrementRandom(lastRandom);
    now = lastTime;
  } else {
    lastTime = now;
    crypto.getRandomValues(lastRandom);
    lastRandom[0]! &= 0x7f; // leave room to increment within one millisecond
  }
  return encodeTime(now) + encodeRandom(lastRandom);
}

export function newId(prefix: IdPrefix, now?: number): string {
  return `${prefix}_${ulid(now)}`;
}

const ID_BODY = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function isId(value: string, prefix: IdPrefix): boolean {
  return value.startsWith(`${prefix}_`) && ID_BODY.test(value.slice(prefix.length + 1));
}

/** The smallest id that could have been minted at `ms`: used to turn time bounds into id bounds. */
export function lowestIdAt(prefix: IdPrefix, ms: number): string {
  return `${prefix}_${encodeTime(ms)}${"0".repeat(16)}`;
}
