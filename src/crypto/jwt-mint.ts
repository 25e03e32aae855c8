import { SignJWT } from "jose";

export interface MintInput {
  secret: Uint8Array;
  orgId: string;
  sub: string;
  scopes: string[];
  ttlSeconds: number;
  audience: string;
  issuer?: string;
  orgClaim: string;
}

/** An HS256 token the daemon accepts, for operators and tests (`snapdb token`). */
export async function mintToken(input: MintInput): Promise<string> {
  // One clock reading for both claims, so exp - iat is exactly the ttl the verifier checks.
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ [input.orgClaim]: input.orgId, scope: input.scopes.join(" ") })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(input.sub)
    .setAudience(input.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + input.ttlSeconds);
  if (input.issuer) jwt.setIssuer(input.issuer);
  return jwt.sign(input.secret);
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90s`, `15m`, `1h`, `7d` → seconds; null when it does not parse. */
export function parseTtl(text: string): number | null {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m) return null;
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return seconds > 0 ? seconds : null;
}
