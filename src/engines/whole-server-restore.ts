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

/**
 * What applying the globals met: accounts that existed (tolerated), MySQL grants on tables or
 * routines the target does not have (yet), with `retry` the SQL of just those statements,
 * and every other error.
 */
export interface GlobalsOutcome {
  existing: string[];
  missing: string[];
  retry: string;
  errors: string[];
}

/** `psql:<stdin>:12: ERROR:  role "alice" already exists` · `ERROR 1396 (HY000) at line 5: Operation CREATE USER failed for 'alice'@'%'` */
const PG_ERROR = /ERROR:\s+(.*)$/;
const PG_EXISTS = /^(?:role|tablespace) "(.*)" already exists$/;
const MY_ERROR = /^ERROR (\d+) \([0-9A-Z]+\)(?: at line (\d+))?: (.*)$/;
const MY_EXISTS = /^Operation CREATE (?:USER|ROLE) failed for (.*)$/;
/** 1146 no such table, 1305 no such procedure/function: a grant on an object of a database not restored (yet). */
const MY_MISSING = new Set(["1146", "1305"]);
const MAX_KEPT = 200;
/** The globals text kept to pick the statements to retry from (users and grants: small). */
const MAX_TEXT = 32 * 1024 * 1024;

/**
 * Applies the globals SQL from `input`. An account that already exists (PostgreSQL: CREATE
 * ROLE / TABLESPACE "already exists"; MySQL: error 1396 on CREATE USER / ROLE) is tolerated:
 * the statements after it still run (its attributes, memberships and grants are set as in the
 * backup). So are MySQL grants on a table or routine the target does not have yet: their
 * statements (one line each, as mariadb-dump and SHOW GRANTS write them) come back in
 * `retry`, for the caller to apply once the databases are restored. Any other error fails
 * with GLOBALS_FAILED, after the whole file ran (what went before and after it stays
 * applied: roles cannot be created in one transaction with tablespaces).
 */
export async function applyGlobals(target: SourceTarget, input: ReadableStream<Uint8Array>, toolPath: string, signal: AbortSignal): Promise<GlobalsOutcome> {
  const cmd = globalsRestoreCommand(target, toolPath);
  const outcome: GlobalsOutcome = { existing: [], missing: [], retry: "", errors: [] };
  const retryLines: number[] = [];
  let pending = "";
  const keep = (into: string[], what: string) => void (into.length < MAX_KEPT && into.push(what));
  const take = (line: string) => {
    if (target.engine === "postgres") {
      const message = PG_ERROR.exec(line)?.[1];
      if (message === undefined) return;
      const exists = PG_EXISTS.exec(message)?.[1];
      return exists !== undefined ? keep(outcome.existing, exists) : keep(outcome.errors, message);
    }
    const my = MY_ERROR.exec(line);
    if (!my) return;
    const [, code, at, message] = my as unknown as [string, string, string | undefined, string];
    const exists = code === "1396" ? MY_EXISTS.exec(message)?.[1] : undefined;
    if (exists !== undefined) return keep(outcome.existing, exists);
    if (MY_MISSING.has(code) && at) {
      retryLines.push(Number(at));
      return keep(outcome.missing, message);
    }
    keep(outcome.errors, message);
  };
  const onStderr = (text: string) => {
    const lines = (pending + text).split("\n");
    pending = lines.pop() ?? "";
    lines.forEach(take);
    return text;
  };
  // MySQL: the text as it goes by, to find the lines to retry.
  const chunks: Uint8Array[] = [];
  let kept = 0;
  const tee = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (target.engine !== "postgres" && kept + chunk.byteLength <= MAX_TEXT) chunks.push(chunk);
      kept += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  try {
    await toolInput(cmd.argv, input.pipeThrough(tee), { toolPath, secretEnv: cmd.secretEnv, signal, onStderr });
  } catch (err) {
    take(pending);
    pending = "";
    // mysql --force exits 1 when any statement failed: only tolerated ones is a success.
    const tolerated = outcome.existing.length + outcome.missing.length > 0 && outcome.errors.length === 0;
    const toleratedOnly = err instanceof ToolFailedError && err.exitCode === 1 && target.engine !== "postgres" && tolerated;
    if (!toleratedOnly || signal.aborted) throw err;
  }
  take(pending);
  if (outcome.errors.length) {
    const shown = outcome.errors.slice(0, 5).join("; ");
    throw new RestoreSetupError("GLOBALS_FAILED", `${outcome.errors.length} statement(s) of the globals (roles, users, grants) failed: ${shown}`);
  }
  if (retryLines.length && kept <= MAX_TEXT) {
    const lines = Buffer.concat(chunks).toString("utf8").split("\n");
    outcome.retry = `${retryLines
      .map((n) => lines[n - 1] ?? "")
      .filter((l) => l.trim() !== "")
      .join("\n")}\n`;
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
  const argv = [tool(["pg_restore"], toolPath), "--exit-on-error", "--single-transaction", "--no-password", `--port=${target.port ?? 5432}`, `--dbname=${pgConninfo(target, database)}`];
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
