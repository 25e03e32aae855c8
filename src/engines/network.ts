import { SQL } from "bun";
import { isIP } from "node:net";
import { redactSecret } from "../lib/redact.ts";
import { OutboundError, type OutboundPolicy } from "../net/outbound-policy.ts";
import type { SourceTarget, VerifyError, VerifyErrorCode } from "./types.ts";

/**
 * Connecting to PostgreSQL, MySQL and MariaDB goes through Bun's built-in SQL client: one
 * client for the three engines, no native add-on, and it reports connection failures with
 * stable codes (ERR_POSTGRES_CONNECTION_REFUSED, …) plus the server's SQLSTATE / errno.
 */
export interface ServerProbe {
  /** Raw rows of the probe query; the engine turns them into a version. */
  rows: Record<string, unknown>[];
  latencyMs: number;
}

export class ProbeError extends Error {
  constructor(
    readonly verifyError: VerifyError,
    options?: { cause?: unknown },
  ) {
    super(verifyError.message, options);
  }
}

/** The host as a name: an IPv6 literal without its brackets (libpq and TLS want it bare). */
export function bareHost(host: string | null): string {
  const h = host ?? "";
  return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}

/**
 * The target with `address` set: its host resolved and every address checked against the
 * outbound policy. Dumps and restores connect to that address only (resolved once, so a
 * DNS answer changing meanwhile cannot redirect them). A refusal is CONNECTION_REFUSED and,
 * in job and restore errors, says why. Verify (`wording: "verify"`) answers a refused
 * address exactly like an unreachable host: it does not tell a tenant which addresses the
 * operator fenced off.
 */
export async function pinTarget(target: SourceTarget, policy: OutboundPolicy, wording: "plain" | "verify" = "plain"): Promise<SourceTarget> {
  if (target.engine === "sqlite") return target;
  const where = `${target.host}:${target.port}`;
  try {
    return { ...target, address: await policy.resolve(bareHost(target.host)) };
  } catch (err) {
    if (!(err instanceof OutboundError)) throw err;
    const message = wording === "verify" && err.kind === "denied" ? `could not connect to ${where}` : `could not connect to ${where}: ${err.message}`;
    throw new ProbeError({ code: "CONNECTION_REFUSED", message }, { cause: err });
  }
}

/** The checked address a connection must use; a target that skipped `pinTarget` is a bug, never a fallback to `host`. */
export function addressOf(target: SourceTarget): string {
  if (!target.address) throw new Error(`internal: no checked address for ${target.host} (pinTarget was not called)`);
  return target.address;
}

/**
 * Bun SQL's `tls` option from our sslMode (the same libpq mode names). The connection goes
 * to the checked IP address, so verify-full names the host the certificate must match.
 */
function tlsOption(target: SourceTarget) {
  const mode = target.options.sslMode ?? "prefer";
  const host = bareHost(target.host);
  if (mode === "verify-full" && isIP(host) === 0) return { serverName: host, rejectUnauthorized: true };
  return mode;
}

/** Bun SQL options for one short-lived connection to a pinned target. */
export function connectionOptions(target: SourceTarget, database: string | undefined, connectTimeoutSeconds: number): ConstructorParameters<typeof SQL>[0] {
  return {
    adapter: target.engine === "postgres" ? "postgres" : "mysql",
    hostname: addressOf(target),
    port: target.port ?? undefined,
    database,
    username: target.credentials?.username ?? "",
    password: target.credentials?.password ?? "",
    tls: tlsOption(target),
    max: 1,
    connectionTimeout: connectTimeoutSeconds,
    idleTimeout: 1,
  } as ConstructorParameters<typeof SQL>[0];
}

/** The error as the API tells it: a code of the API (docs/api.md) and a message free of the password. */
export function classifyConnectError(err: unknown, target: SourceTarget): VerifyError {
  const e = (err ?? {}) as { code?: string; errno?: string | number; message?: string };
  const code = String(e.code ?? "");
  const errno = String(e.errno ?? "");
  const message = redactSecret(String(e.message ?? err), target.credentials?.password);
  const fail = (c: VerifyErrorCode, m = message): VerifyError => ({ code: c, message: m });
  const where = `${target.host}:${target.port}`;
  if (code.endsWith("CONNECTION_TIMEOUT") || code === "ETIMEDOUT") return fail("TIMEOUT", `no answer from ${where} in time: ${message}`);
  if (/TLS|SSL/.test(code) || /\b(TLS|SSL|certificate)\b/i.test(message)) return fail("TLS_ERROR");
  // PostgreSQL SQLSTATEs: 28P01 wrong password, 28000 no pg_hba entry / role; 3D000 no database.
  if (errno === "28P01" || errno === "28000") return fail("AUTH_FAILED");
  if (errno === "3D000") return fail("DATABASE_NOT_FOUND");
  // MySQL/MariaDB: 1045 access denied (login); 1049 unknown database; 1044 no access to the
  // database, which is also what a user without global rights sees for a missing one.
  if (errno === "1045" || errno === "1698") return fail("AUTH_FAILED");
  if (errno === "1049" || errno === "1044") return fail("DATABASE_NOT_FOUND", `${message} (it does not exist or the user may not use it)`);
  if (code.includes("AUTHENTICATION") || code.includes("PASSWORD") || code.includes("SASL")) {
    // Without a server errno, Bun's MySQL client says this when the server refuses TLS.
    if (!errno && target.options.sslMode && target.options.sslMode !== "disable" && target.options.sslMode !== "prefer") {
      return fail("TLS_ERROR", `TLS (sslMode ${target.options.sslMode}) could not be set up with ${where}: ${message}`);
    }
    return fail("AUTH_FAILED");
  }
  if (code.endsWith("CONNECTION_REFUSED") || code === "ECONNREFUSED") return fail("CONNECTION_REFUSED", `nothing accepts connections at ${where}`);
  // Unresolvable host, reset connection, server errors at login: the source is not reachable as configured.
  return fail("CONNECTION_REFUSED", `could not connect to ${where}: ${message}`);
}

/**
 * Resolves and checks the host (pinTarget), opens one connection to the checked
 * address, runs `query`, closes. Bounded twice: Bun's connection timeout (connect + login),
 * and an overall deadline (from before the lookup) for a server that logs in and then stalls.
 */
export async function probeServer(target: SourceTarget, query: string, timeoutMs: number, policy: OutboundPolicy): Promise<ServerProbe> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeError({ code: "TIMEOUT", message: `no answer from ${target.host}:${target.port} within ${timeoutMs} ms` })), timeoutMs);
  });
  let sql: SQL | null = null;
  try {
    const pinned = await Promise.race([pinTarget(target, policy, "verify"), deadline]);
    sql = new SQL(connectionOptions(pinned, target.database ?? undefined, Math.max(1, Math.ceil(timeoutMs / 1000))));
    const rows = (await Promise.race([sql.unsafe(query), deadline])) as Record<string, unknown>[];
    return { rows: [...rows], latencyMs: Math.max(0, Math.round(performance.now() - started)) };
  } catch (err) {
    if (err instanceof ProbeError) throw err;
    throw new ProbeError(classifyConnectError(err, target));
  } finally {
    clearTimeout(timer);
    sql?.close({ timeout: 0 }).catch(() => {});
  }
}

/** `15.18 (Debian …)` → `15.18`; `10.11.19-MariaDB-0+deb12u1` → `10.11.19`. */
export function leadingVersion(text: string): string {
  return /^\d+(\.\d+)*/.exec(text.trim())?.[0] ?? text.trim();
}
