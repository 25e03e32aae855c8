import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Server } from "bun";
import { Elysia } from "elysia";
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { Config } from "../config/schema.ts";
import type { Db } from "../db/client.ts";
import type { ServiceContext } from "../lib/context.ts";
import { AppError } from "../lib/errors.ts";
import { requestMeta } from "./request-meta.ts";

export const SCOPES = ["backup.read", "backup.write", "backup.operate", "backup.restore", "audit.read", "notify.write"] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * The operator's scope for `/metrics` when `http.metricsPublic` is false. Not a tenant scope
 * (never in a default token): the metrics name every organisation's data sources.
 */
export const METRICS_SCOPE = "metrics.read";

/** The caller as a verified token describes it. */
export interface Principal {
  sub: string;
  orgId: string;
  scopes: ReadonlySet<string>;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

const unauthenticated = (message: string) => new AppError("UNAUTHENTICATED", message);

function explainJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "token has expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return "token audience is not accepted";
    if (err.claim === "iss") return "token issuer is not accepted";
    if (err.claim === "nbf") return "token is not valid yet";
    if (err.claim === "exp") return "token must have an exp claim";
    return `token claim ${err.claim} is invalid`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "token algorithm is not accepted";
  return "token is invalid";
}

type KeySource = { key: Uint8Array | KeyObject; algorithms: string[] } | { jwks: JWTVerifyGetKey; algorithms: string[] };

function keySource(auth: Config["auth"], hsSecret: Uint8Array | null): KeySource {
  if (auth.publicKeyFile) {
    const key = createPublicKey(readFileSync(auth.publicKeyFile));
    return { key, algorithms: key.asymmetricKeyType === "ec" ? ["ES256"] : ["RS256"] };
  }
  if (auth.jwksUrl) return { jwks: createRemoteJWKSet(new URL(auth.jwksUrl)), algorithms: ["RS256", "ES256"] };
  if (!hsSecret) throw new Error("an HS256 secret is needed when no public key or JWKS URL is configured");
  return { key: hsSecret, algorithms: ["HS256"] };
}

/** Seconds of clock skew allowed on exp and nbf. */
const CLOCK_TOLERANCE = 5;
/** Verified tokens kept: each entry is one token (~1 KiB with its principal). */
const VERIFIED_TOKENS_MAX = 1000;

const epochSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Tokens that passed verification, keyed by the whole token text (header, claims and
 * signature: a cached signature can never vouch for other claims), each until the second
 * jose would refuse it: `exp` and `nbf` are re-checked on every hit with jose's arithmetic
 * (`exp <= now - tolerance` is expired, `nbf > now + tolerance` not yet valid). The other
 * checks do not change with time (signature, audience, issuer, org and sub claims) or only
 * get easier to pass (the lifetime limit counts from `min(iat, now)`). At most `max`
 * entries; the least recently used goes first. Refusals are never cached.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, { principal: Principal; exp: number; nbf: number }>();

  constructor(private readonly max = VERIFIED_TOKENS_MAX) {}

  get size(): number {
    return this.entries.size;
  }

  get(token: string, now: number): Principal | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (entry.exp <= now - CLOCK_TOLERANCE || entry.nbf > now + CLOCK_TOLERANCE) return undefined;
    this.entries.set(token, entry); // most recently used last
    return entry.principal;
  }

  set(token: string, principal: Principal, exp: number, nbf: number | undefined): void {
    this.entries.delete(token);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { principal, exp, nbf: nbf ?? Number.NEGATIVE_INFINITY });
  }
}

/**
 * Exactly one kind of key verifies tokens (HS256 secret, or a public key, or a JWKS), and
 * only its algorithms are accepted: an RS256 public key can never be used as an HS256 secret.
 *
 * With a secret or a public key file the key cannot change while the daemon runs, so a
 * verified token is remembered (VerifiedTokens) and a repeat only has its time claims checked:
 * jose's verification was 4 % of a page request. With a JWKS every token goes through jose,
 * so a key the issuer withdraws stops working exactly when jose's key set drops it.
 */
export function createTokenVerifier(auth: Config["auth"], hsSecret: Uint8Array | null, cache = new VerifiedTokens()): TokenVerifier {
  const source = keySource(auth, hsSecret);
  const verified = "jwks" in source ? null : cache;
  const options = {
    algorithms: source.algorithms,
    audience: auth.audience,
    issuer: auth.issuer || undefined,
    requiredClaims: ["exp"],
    clockTolerance: CLOCK_TOLERANCE,
  };
  return async (token) => {
    const known = verified?.get(token, epochSeconds());
    if (known) return known;
    let payload: JWTPayload;
    try {
      payload = "jwks" in source ? (await jwtVerify(token, source.jwks, options)).payload : (await jwtVerify(token, source.key, options)).payload;
    } catch (err) {
      throw unauthenticated(explainJoseError(err));
    }
    // A long-lived token outlives every rotation of the secret it leaked with: refuse one made
    // to last longer than the limit. Without iat, or with one in the future, what is left counts.
    const now = epochSeconds();
    const issuedAt = typeof payload.iat === "number" ? Math.min(payload.iat, now) : now;
    if (payload.exp! - issuedAt > auth.maxTokenLifetimeSeconds) {
      throw unauthenticated(`token lifetime exceeds auth.maxTokenLifetimeSeconds (${auth.maxTokenLifetimeSeconds} s)`);
    }
    const orgId = payload[auth.orgClaim];
    if (typeof orgId !== "string" || orgId === "") throw unauthenticated(`token has no ${auth.orgClaim} claim`);
    if (typeof payload.sub !== "string" || payload.sub === "") throw unauthenticated("token has no sub claim");
    const scope = payload.scope;
    const scopes = typeof scope === "string" ? scope.split(" ").filter(Boolean) : [];
    const principal: Principal = { sub: payload.sub, orgId, scopes: new Set(scopes) };
    verified?.set(token, principal, payload.exp!, payload.nbf);
    return principal;
  };
}

export function bearerToken(header: string | null): string {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) throw unauthenticated("missing bearer token");
  return match[1]!;
}

/** OpenAPI marker of a route's scope: the spec and the security test suite read it. */
export const REQUIRED_SCOPE = "x-required-scope";

const principals = new WeakMap<Request, Principal>();

/** The service context of an authenticated request. */
export function serviceContext(db: Db, principal: Principal, request: Request, server: Server<unknown> | null): ServiceContext {
  return {
    db,
    orgId: principal.orgId,
    actor: { type: "user", id: principal.sub },
    requestId: requestMeta(request).id,
    ip: server?.requestIP(request)?.address ?? null,
  };
}

/**
 * `{ scope: "backup.read" }` on a route: verifies the bearer token, checks the scope, and
 * hands the route its `principal` and the service context `ctx` built from it. The check runs
 * in `transform`, before body and query validation, so a caller without a valid token learns
 * nothing about the input format.
 */
export function authPlugin(verify: TokenVerifier, db: Db) {
  return new Elysia({ name: "snapdb-auth" }).macro({
    scope: (scope: Scope) => ({
      detail: { security: [{ bearer: [] }], [REQUIRED_SCOPE]: scope } as Record<string, unknown>,
      async transform({ request }: { request: Request }) {
        const principal = await verify(bearerToken(request.headers.get("authorization")));
        if (!principal.scopes.has(scope)) throw new AppError("FORBIDDEN", `token lacks the ${scope} scope`);
        principals.set(request, principal);
      },
      resolve({ request, server }: { request: Request; server: Server<unknown> | null }) {
        const principal = principals.get(request);
        if (!principal) throw new AppError("UNAUTHENTICATED", "missing bearer token");
        return { principal, ctx: serviceContext(db, principal, request, server) };
      },
    }),
  });
}
