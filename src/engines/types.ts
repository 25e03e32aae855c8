import type { SourceCheckCode } from "../lib/failure-codes.ts";
import type { OutboundPolicy } from "../net/outbound-policy.ts";

/**
 * What snapdb needs from a database engine. The data source module uses `verify`; the
 * backup runner adds `dump` (→ stream) and `restore` (← stream) to these same objects, so
 * everything engine-specific (connection, tools, versions) lives behind this one interface.
 */
export type EngineName = "postgres" | "mysql" | "mariadb" | "sqlite";
export const ENGINE_NAMES = ["postgres", "mysql", "mariadb", "sqlite"] as const satisfies readonly EngineName[];

export type SslMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface EngineOptions {
  sslMode?: SslMode;
  connectTimeoutSeconds?: number;
  /** Whole-server PostgreSQL backups: keep the roles' password hashes in the globals file. */
  includeRolePasswords?: boolean;
}

/** A data source as an engine sees it: where it is and, decrypted for the call only, how to log in. */
export interface SourceTarget {
  engine: EngineName;
  host: string | null;
  port: number | null;
  database: string | null;
  path: string | null;
  options: EngineOptions;
  credentials: { username: string; password: string } | null;
  /** `database: "*"` (see whole-server.ts): databases left out, names or globs. */
  excludeDatabases?: string[];
  /**
   * Network engines: the IP address to connect to, `host` resolved and checked against the
   * outbound policy (network.ts `pinTarget`). Every connection uses it, never `host` again.
   */
  address?: string;
}

/**
 * The daemon's surroundings, passed in rather than read from globals so a test can point
 * the tool lookup at another PATH (no mocks) and tighten the timeout.
 */
export interface EngineEnv {
  /** The PATH searched for dump and restore tools. */
  toolPath: string;
  /** Upper bound for one verify (connect + version query + tool checks), ms. */
  timeoutMs: number;
  /** Which addresses a tenant's host may resolve to. */
  outbound: OutboundPolicy;
}

export type VerifyErrorCode = SourceCheckCode;

export interface VerifyError {
  code: VerifyErrorCode;
  message: string;
}

/**
 * `ok: false` still carries `latencyMs`/`serverVersion` when the connection worked and a
 * later check (the dump tool) failed: it tells the user the database side is fine.
 */
export type VerifyResult = ({ ok: true; latencyMs: number; serverVersion: string } & ServerListing) | ({ ok: false; latencyMs?: number; serverVersion?: string; error: VerifyError } & ServerListing);

/** A whole-server source's verify also says which databases a backup would take, and which it cannot read. */
export interface ServerListing {
  databases?: string[];
  unreadable?: string[];
}

export interface Engine {
  readonly name: EngineName;
  /** The port used when a network data source leaves it out; null for file engines. */
  readonly defaultPort: number | null;
  /** The tool(s) a dump needs, first found wins (for docs and `doctor`). */
  readonly dumpTools: readonly string[];
  /** Connects for real and checks the dump tool; never throws for an unreachable source. */
  verify(target: SourceTarget, env: EngineEnv): Promise<VerifyResult>;
}

export const verifyFailure = (code: VerifyErrorCode, message: string, extra: { latencyMs?: number; serverVersion?: string } = {}): VerifyResult => ({
  ok: false,
  ...extra,
  error: { code, message },
});
