import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Download links of local-disk destinations: `/downloads/{token}` where the token is
 * base64url(JSON payload) "." base64url(HMAC-SHA256). The token is the credential: it is
 * bound to one destination, one object key and one expiry, and signed with a key derived
 * from the master key for this purpose only, so it can't be forged, stretched or pointed
 * at another file.
 */
export interface DownloadGrant {
  destinationId: string;
  key: string;
  /** ms since epoch */
  expiresAt: number;
  filename: string;
}

export type TokenCheck = { ok: true; grant: DownloadGrant } | { ok: false; reason: "invalid" | "expired" };

interface Payload {
  v: 1;
  d: string;
  k: string;
  e: number;
  f: string;
}

export class DownloadTokens {
  constructor(private readonly key: Uint8Array) {}

  private mac(payload: string): Buffer {
    return createHmac("sha256", this.key).update(`download:${payload}`).digest();
  }

  sign(grant: DownloadGrant): string {
    const payload: Payload = { v: 1, d: grant.destinationId, k: grant.key, e: grant.expiresAt, f: grant.filename };
    const encoded = Buffer.from(JSON.stringify(payload)).toString("base64url");
    return `${encoded}.${this.mac(encoded).toString("base64url")}`;
  }

  verify(token: string, now = Date.now()): TokenCheck {
    const parts = token.split(".");
    if (parts.length !== 2 || !parts[0] || !parts[1]) return { ok: false, reason: "invalid" };
    const [encoded, mac] = parts as [string, string];
    // Compared as text: base64url's last character has spare bits, so comparing decoded
    // bytes would accept several spellings of one MAC. A token has exactly one.
    const given = Buffer.from(mac);
    const expected = Buffer.from(this.mac(encoded).toString("base64url"));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: "invalid" };
    let p: Partial<Payload>;
    try {
      p = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
    } catch {
      return { ok: false, reason: "invalid" };
    }
    if (p.v !== 1 || typeof p.d !== "string" || typeof p.k !== "string" || typeof p.e !== "number" || typeof p.f !== "string") {
      return { ok: false, reason: "invalid" };
    }
    if (now >= p.e) return { ok: false, reason: "expired" };
    return { ok: true, grant: { destinationId: p.d, key: p.k, expiresAt: p.e, filename: p.f } };
  }
}
