import { createHmac, timingSafeEqual } from "node:crypto";

export interface SignedJsonOptions {
  /** Prepended to the payload before it is MACed, so one key can't sign for another purpose. */
  context?: string;
  /** Truncate the MAC to this many bytes (default: all 32 of HMAC-SHA256). */
  macBytes?: number;
}

/**
 * Tokens of the form base64url(JSON) "." base64url(HMAC-SHA256(context ‖ payload)): pagination
 * cursors and download links. The MAC covers the payload's text as sent, and is compared as
 * text: base64url's last character has spare bits, so comparing decoded bytes would accept
 * several spellings of one MAC, and a token has exactly one.
 */
export class SignedJson {
  constructor(
    private readonly key: Uint8Array,
    private readonly options: SignedJsonOptions = {},
  ) {}

  private mac(encoded: string): string {
    const digest = createHmac("sha256", this.key)
      .update(`${this.options.context ?? ""}${encoded}`)
      .digest();
    return (this.options.macBytes ? digest.subarray(0, this.options.macBytes) : digest).toString("base64url");
  }

  sign(value: unknown): string {
    const encoded = Buffer.from(JSON.stringify(value)).toString("base64url");
    return `${encoded}.${this.mac(encoded)}`;
  }

  /**
   * The JSON value of a token this key signed, or undefined (never a throw) for anything else:
   * wrong shape, foreign or tampered MAC, or signed bytes that are not JSON. The value's shape
   * is the caller's to check: the MAC only proves these bytes were signed once.
   */
  verify(token: string): unknown {
    const parts = token.split(".");
    if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
    const [encoded, mac] = parts as [string, string];
    const given = Buffer.from(mac);
    const expected = Buffer.from(this.mac(encoded));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(encoded, "base64url").toString("utf8")) as unknown;
    } catch {
      return undefined;
    }
  }
}
