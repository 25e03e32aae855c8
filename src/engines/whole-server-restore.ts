import { addressOf } from "./network.ts";
import { pgConninfo } from "./pg-conninfo.ts";
import { findTool } from "./process.ts";
import { RestoreSetupError, type ToolCommand } from "./restore.ts";
import { toolInput, ToolFailedError } from "./tool-stream.ts";
import type { SourceTarget } from "./types.ts";
import { withServer } from "./whole-server.ts";

/**
 * The engine side of a whole-server restore: the globals SQL applied with errors tolerated
 * where a role/user already exists, each missing database created as it was (PostgreSQL: by
 * pg_restore --create from the archive; MySQL: with its character set and collation) and
 * restored keeping owners and grants, and a database this restore created dropped again if
 * its restore fails.
 */

const quotePg = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteMy = (name: string) => `\`${name.replace(/`/g, "``")}\``;
const PLAIN = /^[A-Za-z0-9_]{1,64}$/;

function credentialsOf(target: SourceTarget) {
  if (!target.credentials) throw new RestoreSetupError("AUTH_FAILED", "the target data source has no credentials");
  return target.credentials;
}

function tool(names: readonly string[], toolPath: string): string {
  for (const name of names) {
    const found = findTool(name, toolPath);
    if (found) return found;
  }
  throw new RestoreSetupError("RESTORE_TOOL_MISSING", `none of ${names.join(", ")} is on the daemon's PATH`);
}

/**
 * The client that applies the globals SQL, going on after an error (so one role that exists
 * does not stop the rest): psql with ON_ERROR_STOP off into the maintenance database, or the
 * mysql client with `--force`. No psqlrc / option files; client commands off (`--binary-mode`;
 * pg_dumpall's `\restrict` does the same for psql).
 */
export function globalsRestoreCommand(target: SourceTarget, toolPath: string): ToolCommand {
  const creds = credentialsOf(target);
  if (target.engine === "postgres") {
    const argv = [
      tool(["psql"], toolPath),
      "--no-psqlrc",
      "--no-password",
      "--quiet",
      "--set=ON_ERROR_STOP=0",
      `--port=${target.port ?? 5432}`,
      `--dbname=${pgConninfo(target, "postgres")}`,
      "--file=-",
    ];
    const secretEnv: Record<string, string> = { PGPASSWORD: creds.password, PGCONNECT_TIMEOUT: "15" };
    if (target.options.sslMode) secretEnv.PGSSLMODE = target.options.sslMode;
    return { argv, secretEnv };
  }
  const argv = [
    tool(target.engine === "mariadb" ? ["mariadb", "mysql"] : ["mysql", "mariadb"], toolPath),
    "--no-defaults",
    "--force",
    "--binary-mode",
    "--protocol=TCP",
    `--host=${addressOf(target)}`,
    `--port=${target.port ?? 3306}`,
    `--user=${creds.username}`,
    "--default-character-set=utf8mb4",
  ];
  const ssl = target.options.sslMode;
  if (ssl && ssl !== "disable" && ssl !== "prefer") argv.push(target.engine === "mysql" ? "--ssl-mode=REQUIRED" : "--ssl");
  return { argv, secretEnv: { MYSQL_PWD: creds.password } };
}

/** What applying the globals met: errors tolerated (an account that exists) and the others. */
export interface GlobalsOutcome {
  existing: string[];
  errors: string[];
}

/** `psql:<stdin>:12: ERROR:  role "alice" already exists` · `ERROR 1396 (HY000) at line 5: Operation CREATE USER failed for 'alice'@'%'` */
const PG_ERROR = /ERROR:\s+(.*)$/;
const PG_EXISTS = /^(?:role|tablespace) "(.*)" already exists$/;
const MY_ERROR = /^ERROR (\d+) \([0-9A-Z]+\)(?: at line \d+)?: (.*)$/;
const MY_EXISTS = /^Operation CREATE (?:USER|ROLE) failed for (.*)$/;
const MAX_KEPT = 200;

/**
 * Applies the globals SQL from `input`. An account that already exists (PostgreSQL: CREATE
 * ROLE / TABLESPACE "already exists"; MySQL: error 1396 on CREATE USER / ROLE) is tolerated:
 * the statements after it still run (its attributes, memberships and grants are set as in the
 * backup). Any other error fails with GLOBALS_FAILED, after the whole file ran (what went
 * before and after it stays applied: roles cannot be created in one transaction with
 * tablespaces).
 */
export async function applyGlobals(target: SourceTarget, input: ReadableStream<Uint8Array>, toolPath: string, signal: AbortSignal): Promise<GlobalsOutcome> {
  const cmd = globalsRestoreCommand(target, toolPath);
  const outcome: GlobalsOutcome = { existing: [], errors: [] };
  let pending = "";
  const take = (line: string) => {
    const pg = target.engine === "postgres" ? PG_ERROR.exec(line) : null;
    const my = target.engine === "postgres" ? null : MY_ERROR.exec(line);
    const message = pg?.[1] ?? my?.[2];
    if (message === undefined) return;
    const exists = pg ? PG_EXISTS.exec(message)?.[1] : my?.[1] === "1396" ? MY_EXISTS.exec(message)?.[1] : undefined;
    const into = exists !== undefined ? outcome.existing : outcome.errors;
    if (into.length < MAX_KEPT) into.push(exists ?? message);
  };
  const onStderr = (text: string) => {
    const lines = (pending + text).split("\n");
    pending = lines.pop() ?? "";
    lines.forEach(take);
    return text;
  };
  try {
    await toolInput(cmd.argv, input, { toolPath, secretEnv: cmd.secretEnv, signal, onStderr });
  } catch (err) {
    take(pending);
    pending = "";
    // mysql --force exits 1 when any statement failed: only the tolerated ones is success.
    const toleratedOnly = err instanceof ToolFailedError && err.exitCode === 1 && target.engine !== "postgres" && outcome.existing.length > 0 && outcome.errors.length === 0;
    if (!toleratedOnly || signal.aborted) throw err;
  }
  take(pending);
  if (outcome.errors.length) {
    const shown = outcome.errors.slice(0, 5).join("; ");
    throw new RestoreSetupError("GLOBALS_FAILED", `${outcome.errors.length} statement(s) of the globals (roles, users, grants) failed: ${shown}`);
  }
  return outcome;
}

/**
 * pg_restore of one database of a whole-server backup into a database the target has (empty,
 * or replaced with `clean`): like a database restore (one
 * transaction, stop at the first error, `clean` drops the archive's objects first) but
 * keeping owners and grants, which the globals restored just before make valid.
 */
export function serverPgRestoreCommand(target: SourceTarget, database: string, clean: boolean, toolPath: string): ToolCommand {
  const creds = credentialsOf(target);
  const argv = [
    tool(["pg_restore"], toolPath),
    "--exit-on-error",
    "--single-transaction",
    "--no-password",
    `--port=${target.port ?? 5432}`,
    `--dbname=${pgConninfo(target, database)}`,
  ];
  if (clean) argv.push("--clean", "--if-exists");
  const secretEnv: Record<string, string> = { PGPASSWORD: creds.password, PGCONNECT_TIMEOUT: "15" };
  if (target.options.sslMode) secretEnv.PGSSLMODE = target.options.sslMode;
  return { argv, secretEnv };
}

/**
 * pg_restore of one database of a whole-server backup that the target does not have:
 * `--create` makes it exactly as it was (encoding, locale, owner, its own grants such as a
 * revoked CONNECT, its settings) from the archive, then restores into it keeping owners and
 * grants. Not one transaction (CREATE DATABASE cannot be in one): if it fails after the
 * database was created, the caller drops it again. It connects first to `postgres`; the
 * reconnection to the new database passes its name as a plain name, never as a connection string.
 */
export function serverPgCreateCommand(target: SourceTarget, toolPath: string): ToolCommand {
  const creds = credentialsOf(target);
  const argv = [tool(["pg_restore"], toolPath), "--create", "--exit-on-error", "--no-password", `--port=${target.port ?? 5432}`, `--dbname=${pgConninfo(target, "postgres")}`];
  const secretEnv: Record<string, string> = { PGPASSWORD: creds.password, PGCONNECT_TIMEOUT: "15" };
  if (target.options.sslMode) secretEnv.PGSSLMODE = target.options.sslMode;
  return { argv, secretEnv };
}

/** Whether `serverPgCreateCommand` failed on its CREATE DATABASE itself (then nothing of it is to drop: the database may be another's). */
export const failedToCreate = (err: unknown) => err instanceof ToolFailedError && /Command was: CREATE DATABASE/.test(err.stderr);

/** How a MySQL/MariaDB database of the backup is created again: what the backup recorded about it. */
export interface DatabaseShape {
  name: string;
  charset?: string | null;
  collation?: string | null;
}

/**
 * Creates a MySQL/MariaDB database on the target's server with its character set and
 * collation (the dump of one database holds no CREATE DATABASE). Returns false when it
 * exists already (created meanwhile). Needs the CREATE privilege.
 */
export async function createMysqlDatabase(target: SourceTarget, db: DatabaseShape, signal?: AbortSignal): Promise<boolean> {
  try {
    return await withServer(target, { signal }, async (sql) => {
      if ((await sql`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${db.name}`).length) return false;
      const charset = db.charset && PLAIN.test(db.charset) ? db.charset : null;
      const collation = charset && db.collation && PLAIN.test(db.collation) ? ` COLLATE ${db.collation}` : "";
      try {
        await sql.unsafe(`CREATE DATABASE ${quoteMy(db.name)} CHARACTER SET ${charset ?? "utf8mb4"}${collation}`);
        return true;
      } catch (err) {
        if (String((err as { errno?: unknown }).errno) === "1007") return false; // created meanwhile
        throw err;
      }
    });
  } catch (err) {
    if (err instanceof RestoreSetupError) throw err;
    throw new RestoreSetupError("DATABASE_CREATE_FAILED", `could not create database ${JSON.stringify(db.name)}: ${(err as Error).message}`);
  }
}

/** Drops a database this restore created, after its restore failed: the target is left as it was. */
export async function dropServerDatabase(target: SourceTarget, name: string): Promise<void> {
  await withServer(target, {}, async (sql) => {
    await sql.unsafe(target.engine === "postgres" ? `DROP DATABASE IF EXISTS ${quotePg(name)}` : `DROP DATABASE IF EXISTS ${quoteMy(name)}`);
  });
}
