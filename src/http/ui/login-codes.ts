import { createHash, randomBytes } from "node:crypto";
import { nowMs } from "../../lib/clock.ts";

export interface LoginCodeOptions {
  now?: () => number;
  /** How long a code may wait to be used. */
  ttlMs?: number;
  /** Codes waiting at once, all organisations together: memory stays bounded. */
  max?: number;
  /** Codes waiting at once for one organisation: one cannot use up the others' room. */
  maxPerOrg?: number;
}

const hashOf = (code: string) => createHash("sha256").update(code).digest("hex");

/**
 * One-time codes of `snapdb ui-link`: each stands for one read-only token, for 5 minutes,
 * once. Only the code's sha256 is kept (in memory: a restart voids pending codes, which
 * is harmless), so the map holds nothing a reader could replay as a code.
 */
export class LoginCodes {
  private readonly pending = new Map<string, { token: string; orgId: string; expiresAt: number }>();
  private readonly now: () => number;
  readonly ttlMs: number;
  private readonly max: number;
  private readonly maxPerOrg: number;

  constructor(opts: LoginCodeOptions = {}) {
    this.now = opts.now ?? nowMs;
    this.ttlMs = opts.ttlMs ?? 5 * 60_000;
    this.max = opts.max ?? 1000;
    this.maxPerOrg = opts.maxPerOrg ?? 20;
  }

  /** A new code for `token`, valid until the earlier of ttl and the token's own expiry; null when too many wait. */
  issue(token: string, orgId: string, tokenExpiresAt: number): { code: string; expiresAt: number } | null {
    this.sweep();
    if (this.pending.size >= this.max) return null;
    let ofOrg = 0;
    for (const entry of this.pending.values()) if (entry.orgId === orgId) ofOrg++;
    if (ofOrg >= this.maxPerOrg) return null;
    const code = randomBytes(32).toString("base64url");
    const expiresAt = Math.min(this.now() + this.ttlMs, tokenExpiresAt);
    this.pending.set(hashOf(code), { token, orgId, expiresAt });
    return { code, expiresAt };
  }

  /** The token behind `code`, once: the code is gone after this call whatever it answers. */
  redeem(code: string): string | null {
    const key = hashOf(code);
    const entry = this.pending.get(key);
    this.pending.delete(key);
    if (!entry || entry.expiresAt <= this.now()) return null;
    return entry.token;
  }

  get size(): number {
    return this.pending.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.pending) if (entry.expiresAt <= now) this.pending.delete(key);
  }
}
