import { SQL } from "bun";
import type { RestoreErrorCode } from "../lib/failure-codes.ts";
import { findTool } from "./process.ts";
import { addressOf, classifyConnectError, connectionOptions, ProbeError } from "./network.ts";
import { pgConninfo } from "./pg-conninfo.ts";
import { toolInput } from "./tool-stream.ts";
import type { EngineName, SourceTarget } from "./types.ts";

/**
 * The engine side of a restore: is the target empty, create a missing database, empty it
 * for `clean`, and the restore tool fed through stdin. The runner (src/runner/restore.ts)
 * streams the backup into these; SQLite files are handled in ./sqlite-restore.ts.
 */

/** Why a restore could not start or finish, as its `error.code` says it. */
export class RestoreSetupError extends Error {
  constructor(
    readonly code: RestoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "RestoreSetupError";
  }
}

/** MySQL and MariaDB dumps restore into each other: one family. */
export const engineFamily = (engine: EngineName) => (engine === "mariadb" ? "mysql" : engine);

/** Names a restore may create: plain identifiers, so no quoting or `dbname=` connstring tricks. */
export const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;

const quotePg = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteMy = (name: string) => `\`${name.replace(/`/g, "``")}\``;

function credentialsOf(target: SourceTarget) {
  if (!target.credentials) throw new RestoreSetupError("AUTH_FAILED", "the target data source has no credentials");
  return target.credentials;
}

/**
 * One short-lived connection to the target's checked address (see network.ts pinTarget):
 * run `work`, close. Connection failures become ProbeError codes.
 */
export async function withConnection<T>(target: SourceTarget, database: string | undefined, signal: AbortSignal | undefined, work: (sql: SQL) => Promise<T>): Promise<T> {
  credentialsOf(target); // none set: AUTH_FAILED before any connection
  const sql = new SQL(connectionOptions(target, database, target.options.connectTimeoutSeconds ?? 15));
  // A cancel closes the connection: a statement waiting on a lock fails instead of hanging on.
  const onAbort = () => void sql.close({ timeout: 0 }).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) throw new RestoreSetupError("CANCELED", "aborted");
    // Connecting is lazy: a first trivial query tells a connection failure (classified like
    // verify: AUTH_FAILED, DATABASE_NOT_FOUND, …) from a failure of the work itself.
    try {
      await sql`SELECT 1`;
    } catch (err) {
      throw new ProbeError(classifyConnectError(err, target));
    }
    return await work(sql);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await sql.close({ timeout: 0 }).catch(() => {});
  }
}

export interface TargetState {
  exists: boolean;
  /** Number of user relations (tables, views, sequences, …); 0 when it does not exist. */
  relations: number;
}

/**
 * What is in the target database now. PostgreSQL: relations in pg_class outside the system
 * schemas (pg_class is readable by everyone, unlike information_schema which hides what the
 * user has no rights on). MySQL/MariaDB: information_schema.tables of that schema.
 */
export async function inspectDatabase(target: SourceTarget, database: string, signal?: AbortSignal): Promise<TargetState> {
  if (target.engine === "postgres") {
    try {
      return await withConnection(target, database, signal, async (sql) => {
        const [row] = await sql`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r','p','v','m','f','S') AND n.nspname NOT IN ('pg_catalog','information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;
        return { exists: true, relations: Number(row.n) };
      });
    } catch (err) {
      if (err instanceof ProbeError && err.verifyError.code === "DATABASE_NOT_FOUND") return { exists: false, relations: 0 };
      throw err;
    }
  }
  return withConnection(target, "information_schema", signal, async (sql) => {
    const [schema] = await sql`SELECT count(*) AS n FROM information_schema.schemata WHERE schema_name = ${database}`;
    if (Number(schema.n) === 0) return { exists: false, relations: 0 };
    const [row] = await sql`SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ${database}`;
    return { exists: true, relations: Number(row.n) };
  });
}

/**
 * Creates a missing database with the target's credentials (PostgreSQL through the `postgres`
 * maintenance database: the role needs CREATEDB; MySQL/MariaDB: CREATE privilege). Returns
 * whether it created one.
 */
export async function ensureDatabase(target: SourceTarget, database: string, signal?: AbortSignal): Promise<boolean> {
  if (!DATABASE_NAME.test(database)) throw new RestoreSetupError("INVALID_TARGET", `refusing to create a database named ${JSON.stringify(database)}`);
  try {
    if (target.engine === "postgres") {
      return await withConnection(target, "postgres", signal, async (sql) => {
        const found = await sql`SELECT 1 FROM pg_database WHERE datname = ${database}`;
        if (found.length) return false;
        try {
          await sql.unsafe(`CREATE DATABASE ${quotePg(database)}`);
          return true;
        } catch (err) {
          if ((err as { errno?: string }).errno === "42P04") return false; // created meanwhile
          throw err;
        }
      });
    }
    return await withConnection(target, "information_schema", signal, async (sql) => {
      const [before] = await sql`SELECT count(*) AS n FROM information_schema.schemata WHERE schema_name = ${database}`;
      await sql.unsafe(`CREATE DATABASE IF NOT EXISTS ${quoteMy(database)} CHARACTER SET utf8mb4`);
      return Number(before.n) === 0;
    });
  } catch (err) {
    if (err instanceof ProbeError || err instanceof RestoreSetupError) throw err;
    throw new RestoreSetupError("DATABASE_CREATE_FAILED", `could not create database ${database}: ${(err as Error).message}`);
  }
}

/**
 * `clean` for MySQL/MariaDB: drops every view and table of the target database (foreign key
 * checks off), so the result is exactly the backup's tables. Routines and events are left;
 * the dump drops and recreates the ones it holds.
 */
export async function dropMysqlTables(target: SourceTarget, database: string, signal?: AbortSignal): Promise<number> {
  return withConnection(target, database, signal, async (sql) => {
    const rows = await sql`SELECT table_name AS name, table_type AS type FROM information_schema.tables WHERE table_schema = ${database}`;
    await sql.unsafe("SET FOREIGN_KEY_CHECKS = 0");
    for (const r of rows as { name: string; type: string }[]) {
      if (r.type === "VIEW") await sql.unsafe(`DROP VIEW IF EXISTS ${quoteMy(database)}.${quoteMy(r.name)}`);
    }
    for (const r of rows as { name: string; type: string }[]) {
      if (r.type !== "VIEW") await sql.unsafe(`DROP TABLE IF EXISTS ${quoteMy(database)}.${quoteMy(r.name)}`);
    }
    return rows.length;
  });
}

function firstTool(names: readonly string[], toolPath: string): string {
  for (const name of names) {
    const found = findTool(name, toolPath);
    if (found) return found;
  }
  throw new RestoreSetupError("RESTORE_TOOL_MISSING", `none of ${names.join(", ")} is on the daemon's PATH`);
}

export interface ToolCommand {
  argv: string[];
  secretEnv: Record<string, string>;
}

/**
 * pg_restore reading the custom-format archive from stdin, in ONE transaction
 * (`--single-transaction`, which implies exit-on-error): if the stream is cut (checksum
 * mismatch, cancel, failure) the tool is killed before it sees end-of-input, so it never
 * commits and PostgreSQL rolls everything back. `clean` adds `--clean --if-exists` (drops
 * the archive's objects first, inside the same transaction).
 */
export function pgRestoreCommand(target: SourceTarget, database: string, clean: boolean, toolPath: string): ToolCommand {
  const creds = credentialsOf(target);
  const tool = firstTool(["pg_restore"], toolPath);
  // Where and as whom in one conninfo string of quoted values: a database or user name is
  // never read as a connection string, a URI or an option.
  const argv = [tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--no-password", `--port=${target.port ?? 5432}`, `--dbname=${pgConninfo(target, database)}`];
  if (clean) argv.push("--clean", "--if-exists");
  const secretEnv: Record<string, string> = { PGPASSWORD: creds.password, PGCONNECT_TIMEOUT: "15" };
  if (target.options.sslMode) secretEnv.PGSSLMODE = target.options.sslMode;
  return { argv, secretEnv };
}

/** The mysql / mariadb client running the SQL dump from stdin; it stops at the first error. */
export function mysqlRestoreCommand(target: SourceTarget, database: string, toolPath: string): ToolCommand {
  const creds = credentialsOf(target);
  const tool = firstTool(target.engine === "mariadb" ? ["mariadb", "mysql"] : ["mysql", "mariadb"], toolPath);
  const argv = [
    tool,
    "--protocol=TCP",
    // The checked address, not the name: DNS is not asked again (see network.ts pinTarget).
    `--host=${addressOf(target)}`,
    `--port=${target.port ?? 3306}`,
    // `--opt=value` forms throughout: a value starting with `-` stays a value.
    `--user=${creds.username}`,
    "--default-character-set=utf8mb4",
    // No client-command parsing or \0 / \r\n mangling of the dump's bytes.
    "--binary-mode",
    `--database=${database}`,
  ];
  const ssl = target.options.sslMode;
  if (ssl && ssl !== "disable" && ssl !== "prefer") argv.push(target.engine === "mysql" ? "--ssl-mode=REQUIRED" : "--ssl");
  return { argv, secretEnv: { MYSQL_PWD: creds.password } };
}

/**
 * Feeds `input` to the tool's stdin, one chunk at a time (each write waits for the pipe to
 * drain: a slow tool slows the download). Resolves when the tool exited 0 after
 * end-of-input. If `input` errors (checksum mismatch, decrypt failure) or the restore is
 * aborted, the tool is SIGKILLed BEFORE its stdin is closed, so it never sees a clean end of
 * input: pg_restore cannot commit its single transaction. A tool that dies early (broken
 * pipe) is reported with its own exit code and stderr tail, not as a write error.
 */
export async function runRestoreTool(cmd: ToolCommand, input: ReadableStream<Uint8Array>, toolPath: string, signal: AbortSignal): Promise<void> {
  await toolInput(cmd.argv, input, { toolPath, secretEnv: cmd.secretEnv, signal });
}
