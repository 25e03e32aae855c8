import { SignedJson } from "../lib/signed-json.ts";

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
  /**
   * The fleet node whose disk holds the file (a local destination is one host's); another
   * node passes the download through from it. Absent in links of older versions.
   */
  nodeId?: string;
}

export type TokenCheck = { ok: true; grant: DownloadGrant } | { ok: false; reason: "invalid" | "expired" };

interface Payload {
  v: 1;
  d: string;
  k: string;
  e: number;
  f: string;
  n?: string;
}

export class DownloadTokens {
  private readonly codec: SignedJson;

  constructor(key: Uint8Array) {
    this.codec = new SignedJson(key, { context: "download:" });
  }

  sign(grant: DownloadGrant): string {
    const payload: Payload = { v: 1, d: grant.destinationId, k: grant.key, e: grant.expiresAt, f: grant.filename, ...(grant.nodeId ? { n: grant.nodeId } : {}) };
    return this.codec.sign(payload);
  }

  verify(token: string, now = Date.now()): TokenCheck {
    const p = this.codec.verify(token) as Partial<Payload> | null | undefined;
    if (
      !p ||
      typeof p !== "object" ||
      p.v !== 1 ||
      typeof p.d !== "string" ||
      typeof p.k !== "string" ||
      typeof p.e !== "number" ||
      typeof p.f !== "string" ||
      (p.n !== undefined && typeof p.n !== "string")
    ) {
      return { ok: false, reason: "invalid" };
    }
    if (now >= p.e) return { ok: false, reason: "expired" };
    return { ok: true, grant: { destinationId: p.d, key: p.k, expiresAt: p.e, filename: p.f, ...(p.n ? { nodeId: p.n } : {}) } };
  }
}
