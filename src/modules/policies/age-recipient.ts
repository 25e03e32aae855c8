import { bech32 } from "@scure/base";

/**
 * Checks that a string is an age X25519 recipient: Bech32 (BIP 173, not Bech32m) with the
 * human-readable part "age" and 32 bytes of key. A typo in a recipient would silently make
 * backups undecryptable by its owner, so the checksum is verified, not just the prefix.
 */
export function isAgeRecipient(value: string): boolean {
  // age writes recipients in lowercase; Bech32 would also take an all-uppercase spelling.
  if (value !== value.toLowerCase()) return false;
  const decoded = bech32.decodeUnsafe(value, 90);
  if (!decoded || decoded.prefix !== "age") return false;
  // fromWords refuses non-zero padding bits: one key has exactly one spelling.
  return bech32.fromWordsUnsafe(decoded.words)?.length === 32;
}
