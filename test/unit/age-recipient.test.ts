import { describe, expect, test } from "bun:test";
import { bech32, bech32m } from "@scure/base";
import { newAgeIdentity } from "../../src/crypto/age.ts";
import { isAgeRecipient } from "../../src/modules/policies/age-recipient.ts";

const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const key = new Uint8Array(32).map((_, i) => i * 7 + 1);

/** `text` with the character at `i` replaced by another of the Bech32 alphabet. */
const swap = (text: string, i: number) => {
  const at = i < 0 ? text.length + i : i;
  const next = CHARSET[(CHARSET.indexOf(text[at]!) + 1) % 32]!;
  return text.slice(0, at) + next + text.slice(at + 1);
};

describe("age recipients", () => {
  test("age's own recipients pass", async () => {
    expect(isAgeRecipient(RECIPIENT)).toBe(true);
    for (let i = 0; i < 5; i++) expect(isAgeRecipient((await newAgeIdentity()).recipient)).toBe(true);
    expect(isAgeRecipient(bech32.encode("age", bech32.toWords(key)))).toBe(true);
  });

  test("a recipient with a bad checksum is refused (a typo anywhere in it)", () => {
    expect(isAgeRecipient(swap(RECIPIENT, -1))).toBe(false);
    expect(isAgeRecipient(swap(RECIPIENT, 10))).toBe(false);
    expect(isAgeRecipient(swap(RECIPIENT, 4))).toBe(false);
    // Two neighbours exchanged: the prefix and length still look right.
    const t = RECIPIENT;
    expect(isAgeRecipient(t.slice(0, 20) + t[21] + t[20] + t.slice(22))).toBe(false);
  });

  test("other prefixes, key sizes, Bech32m, non-zero padding, uppercase and junk are refused", () => {
    expect(isAgeRecipient(bech32.encode("agx", bech32.toWords(key)))).toBe(false);
    expect(isAgeRecipient(bech32.encode("age", bech32.toWords(key.subarray(0, 31))))).toBe(false);
    expect(isAgeRecipient(bech32.encode("age", bech32.toWords(new Uint8Array(33))))).toBe(false);
    expect(isAgeRecipient(bech32m.encode("age", bech32m.toWords(key)))).toBe(false);
    // 32 bytes are 256 bits in 52 five-bit words: 4 bits of padding, which must be zero.
    const words = bech32.toWords(key);
    words[words.length - 1]! |= 1;
    expect(isAgeRecipient(bech32.encode("age", words))).toBe(false);
    for (const junk of ["", "age1", "age1notakey", RECIPIENT.toUpperCase(), "ssh-ed25519 AAAA", "AGE-SECRET-KEY-1QQQ", `${RECIPIENT}q`, RECIPIENT.slice(0, -1), ` ${RECIPIENT}`]) {
      expect({ junk, ok: isAgeRecipient(junk) }).toEqual({ junk, ok: false });
    }
  });
});
