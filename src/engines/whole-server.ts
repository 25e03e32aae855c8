import { SQL } from "bun";
import { addressOf, classifyConnectError, connectionOptions, ProbeError } from "./network.ts";
import { pgConninfo } from "./pg-conninfo.ts";
import { findTool, runTool } from "./process.ts";
import { engineFor } from "./registry.ts";
import { ToolFailedError } from "./tool-stream.ts";
import type { DumpCommand, DumpEnv } from "./dump.ts";
import type { SourceTarget } from "./types.ts";

/**
 * A whole server as one data source (`database: "*"`): which databases it holds now
 * (discovery, at every run), and how its globals are dumped (PostgreSQL roles, memberships
 * and tablespaces; MySQL/MariaDB users, roles and grants). Every connection goes to the
 * target's checked address (network.ts pinTarget); a database name only ever travels as a
 * quoted value or a bound parameter.
 */
export const WHOLE_SERVER = "*";

/** The globals part's name: no PostgreSQL or MySQL database is called that in practice, and one that is is refused, never confused. */
export const GLOBALS_PART = ":globals";

/** Schemas of MySQL/MariaDB that are the server's own, never backed up as databases. */
export const MYSQL_SYSTEM_SCHEMAS = ["information_schema", "performance_schema", "mysql", "sys"] as const;

export const isWholeServer = (s: { engine: string; database: string | null }) => s.engine !== "sqlite" && s.database === WHOLE_SERVER;

/** A database found on the server, with what a restore needs to create it again. */
export interface ServerDatabase {
  name: string;
  /** MySQL/MariaDB: default character set and collation (a PostgreSQL archive carries its database's own). */
  charset?: string | null;
  collation?: string | null;
}

/**
 * `excludeDatabases` as one predicate: `*` any run of characters, `?` exactly one, anything
 * else literal; the whole name must match, case-sensitively.
 */
export function excludedBy(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => new RegExp(`^${[...p].map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\/]/g, "\\$&"))).join("")}$`, "su"));
  return (name) => res.some((re) => re.test(name));
}

/** Sorted by code point: the order a job dumps them in, the same on every run. */
const byName = (a: ServerDatabase, b: ServerDatabase) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The database a whole-server connection logs into: `postgres` (else `template1`), or MySQL's `information_schema`. */
async function openServer(target: SourceTarget, timeoutSeconds: number, signal?: AbortSignal): Promise<{ sql: SQL; database: string }> {
  // MySQL: information_schema, which every login may use (without a database Bun's client picks `mysql`).
  const candidates = target.engine === "postgres" ? ["postgres", "template1"] : ["information_schema"];
  let last: unknown;
  for (const database of candidates) {
    if (signal?.aborted) throw new ProbeError({ code: "TIMEOUT", message: "aborted" });
    const sql = new SQL(connectionOptions(target, database, timeoutSeconds));
    try {
      await sql`SELECT 1`;
      return { sql, database };
    } catch (err) {
      await sql.close({ timeout: 0 }).catch(() => {});
      last = err;
      if (classifyConnectError(err, target).code !== "DATABASE_NOT_FOUND") break;
    }
  }
  throw new ProbeError(classifyConnectError(last, target));
}

/** Runs `work` on one short-lived connection to the server; a cancel closes it. */
export async function withServer<T>(target: SourceTarget, opts: { timeoutSeconds?: number; signal?: AbortSignal }, work: (sql: SQL, database: string) => Promise<T>): Promise<T> {
  const { sql, database } = await openServer(target, opts.timeoutSeconds ?? target.options.connectTimeoutSeconds ?? 15, opts.signal);
  const onAbort = () => void sql.close({ timeout: 0 }).catch(() => {});
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await work(sql, database);
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    await sql.close({ timeout: 0 }).catch(() => {});
  }
}

/**
 * Every database of the server a whole-server backup takes now: PostgreSQL's `pg_database`
 * without templates and without databases that refuse connections (`datallowconn`);
 * MySQL/MariaDB's schemata (what SHOW DATABASES lists: those the login may see) without the
 * system schemas. `excludeDatabases` is applied. Sorted by name.
 */
export async function listServerDatabases(target: SourceTarget, opts: { timeoutSeconds?: number; signal?: AbortSignal } = {}): Promise<ServerDatabase[]> {
  const excluded = excludedBy(target.excludeDatabases ?? []);
  const found = await withServer(target, opts, async (sql) => {
    if (target.engine === "postgres") {
      const rows = (await sql`SELECT datname AS name FROM pg_database WHERE NOT datistemplate AND datallowconn`) as { name: string }[];
      return rows.map((r) => ({ name: String(r.name) }));
    }
    const rows = (await sql.unsafe("SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA")) as {
      name: string;
      charset: string | null;
      collation: string | null;
    }[];
    return rows
      .map((r) => ({ name: String(r.name), charset: r.charset === null ? null : String(r.charset), collation: r.collation === null ? null : String(r.collation) }))
      .filter((r) => !(MYSQL_SYSTEM_SCHEMAS as readonly string[]).includes(r.name.toLowerCase()));
  });
  return found.filter((d) => !excluded(d.name)).sort(byName);
}

/** Whether `name` is (still) a database of the server: a part whose database vanished mid-run is skipped, not failed. */
export async function serverHasDatabase(target: SourceTarget, name: string, signal?: AbortSignal): Promise<boolean> {
  return withServer(target, { signal }, async (sql) => {
    if (target.engine === "postgres") return (await sql`SELECT 1 FROM pg_database WHERE datname = ${name}`).length > 0;
    return (await sql`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${name}`).length > 0;
  });
}

/**
 * Which of `databases` the login cannot read, as far as can be told without dumping them:
 * PostgreSQL: no CONNECT privilege, a login that fails, or a table, view, sequence or schema
 * it may not read (pg_dump would stop on it); MySQL/MariaDB: a database it may not USE.
 */
export async function unreadableDatabases(target: SourceTarget, databases: readonly string[], timeoutSeconds: number): Promise<string[]> {
  const unreadable: string[] = [];
  for (const name of databases) {
    const sql = new SQL(connectionOptions(target, name, timeoutSeconds));
    try {
      if (target.engine === "postgres") {
        const [row] = await sql`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r','p','v','m','f','S') AND n.nspname NOT IN ('pg_catalog','information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
          AND (NOT has_schema_privilege(n.oid, 'USAGE') OR NOT has_table_privilege(c.oid, 'SELECT'))`;
        if (Number(row.n) > 0) unreadable.push(name);
      } else {
        await sql`SELECT 1`;
      }
    } catch {
      unreadable.push(name);
    } finally {
      await sql.close({ timeout: 0 }).catch(() => {});
    }
  }
  return unreadable;
}

/**
 * Whether the login can read what the globals part dumps: PostgreSQL role passwords
 * (`includeRolePasswords`) need a superuser (pg_authid); MySQL/MariaDB users and grants need
 * the `mysql` system tables. Without passwords, PostgreSQL's roles are readable by anyone.
 */
export async function globalsReadable(target: SourceTarget, timeoutSeconds: number): Promise<boolean> {
  try {
    return await withServer(target, { timeoutSeconds }, async (sql) => {
      if (target.engine === "postgres") {
        if (!target.options.includeRolePasswords) return true;
        const [row] = await sql`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`;
        return row?.rolsuper === true;
      }
      await sql.unsafe("SELECT 1 FROM mysql.user LIMIT 0");
      return true;
    });
  } catch {
    return false;
  }
}

/**
 * The file name of a part inside its job's folder (without the extension): `globals`, or
 * `db-<name>` for a name of [A-Za-z0-9_-] only, else `dbx-<base64url of the UTF-8 name>`.
 * Never `.`/`..`/`/`, never two parts on one name.
 */
export function partFileName(part: { name: string; kind: "globals" | "database" }): string {
  if (part.kind === "globals") return "globals";
  return /^[A-Za-z0-9_-]{1,100}$/.test(part.name) ? `db-${part.name}` : `dbx-${Buffer.from(part.name, "utf8").toString("base64url")}`;
}

const mariadbSystemOption = new Map<string, boolean>();

/** Whether this dump tool can write users and grants itself (`mariadb-dump --system=users` of recent MariaDB releases: its `--help` says). */
async function dumpsUsers(tool: string, toolPath: string): Promise<boolean> {
  const known = mariadbSystemOption.get(tool);
  if (known !== undefined) return known;
  const run = await runTool([tool, "--no-defaults", "--help"], { toolPath, timeoutMs: 10_000 }).catch(() => null);
  const has = run?.exitCode === 0 && /--system=/.test(run.stdout);
  mariadbSystemOption.set(tool, has);
  return has;
}

function firstTool(names: readonly string[], toolPath: string): string {
  for (const name of names) {
    const found = findTool(name, toolPath);
    if (found) return found;
  }
  throw new ToolFailedError("DUMP_FAILED", names.join(" or "), null, `none of ${names.join(", ")} is on the daemon's PATH`);
}

/** The login, or AUTH_FAILED before anything starts. */
function credentialsOf(target: SourceTarget) {
  if (!target.credentials) throw new ProbeError({ code: "AUTH_FAILED", message: "the data source has no credentials" });
  return target.credentials;
}

/**
 * The command that writes the server's globals as SQL, or null when they are generated
 * in-process (`mysqlGlobalsStream`: a MySQL dump tool without `--system`).
 * PostgreSQL: `pg_dumpall --globals-only` (roles, memberships, role settings, tablespaces),
 * `--no-role-passwords` unless the source's `includeRolePasswords`. MariaDB: `--system=users`
 * (users with their password hashes, roles, grants).
 */
export async function globalsCommand(target: SourceTarget, env: DumpEnv): Promise<DumpCommand | null> {
  const creds = credentialsOf(target);
  if (target.engine === "postgres") {
    const tool = firstTool(["pg_dumpall"], env.toolPath);
    // pg_dumpall ignores the conninfo's dbname (it goes to `postgres`, else `template1`), but
    // keeps hostaddr and user from it.
    const argv = [tool, "--globals-only", "--no-password", `--port=${target.port ?? 5432}`, `--dbname=${pgConninfo(target, "postgres")}`];
    if (!target.options.includeRolePasswords) argv.push("--no-role-passwords");
    const secretEnv: Record<string, string> = { PGPASSWORD: creds.password, PGCONNECT_TIMEOUT: "15" };
    if (target.options.sslMode) secretEnv.PGSSLMODE = target.options.sslMode;
    return { argv, secretEnv };
  }
  const tool = firstTool(engineFor(target.engine).dumpTools, env.toolPath);
  if (!(await dumpsUsers(tool, env.toolPath))) return null;
  const argv = [tool, "--no-defaults", "--system=users", "--skip-dump-date", "--protocol=TCP", `--host=${addressOf(target)}`, `--port=${target.port ?? 3306}`, `--user=${creds.username}`];
  const ssl = target.options.sslMode;
  if (ssl && ssl !== "disable" && ssl !== "prefer") argv.push(target.engine === "mysql" ? "--ssl-mode=REQUIRED" : "--ssl");
  return { argv, secretEnv: { MYSQL_PWD: creds.password } };
}

const quoteMyString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
const account = (user: string, host: string) => `${quoteMyString(user)}@${quoteMyString(host)}`;

/** Accounts the server manages itself (they exist on every server of that version). */
const SYSTEM_ACCOUNT = /^(mysql\.(sys|session|infoschema)|mariadb\.sys)$/;

/**
 * MySQL users, roles and grants as SQL, for dump tools without `--system=users`: every
 * account's `SHOW CREATE USER` (password hash included) first, then every account's
 * `SHOW GRANTS`, so role grants find their roles. The server's own accounts are left out.
 */
export async function mysqlGlobalsSql(target: SourceTarget, signal?: AbortSignal): Promise<string> {
  return withServer(target, { signal }, async (sql) => {
    let rows: { user: string; host: string; role?: string }[];
    try {
      rows = (await sql.unsafe("SELECT User AS user, Host AS host, is_role AS role FROM mysql.user")) as typeof rows;
    } catch {
      rows = (await sql.unsafe("SELECT User AS user, Host AS host FROM mysql.user")) as typeof rows;
    }
    const accounts = rows
      .map((r) => ({ user: String(r.user), host: String(r.host), role: String(r.role ?? "N") === "Y" }))
      .filter((a) => !SYSTEM_ACCOUNT.test(a.user))
      .sort((a, b) => (a.user + "\0" + a.host < b.user + "\0" + b.host ? -1 : 1));
    // MySQL 8's caching_sha2 hashes are binary: as hex they survive the text file (MariaDB has no such setting).
    await sql.unsafe("SET SESSION print_identified_with_as_hex = ON").catch(() => {});
    const out: string[] = ["-- users, roles and grants, written by snapdb", "SET NAMES utf8mb4;"];
    for (const a of accounts) {
      if (a.role) {
        out.push(`CREATE ROLE ${quoteMyString(a.user)};`);
        continue;
      }
      const [row] = (await sql.unsafe(`SHOW CREATE USER ${account(a.user, a.host)}`)) as Record<string, unknown>[];
      out.push(`${String(Object.values(row ?? {})[0] ?? "")};`);
    }
    for (const a of accounts) {
      const grants = (await sql.unsafe(a.role ? `SHOW GRANTS FOR ${quoteMyString(a.user)}` : `SHOW GRANTS FOR ${account(a.user, a.host)}`)) as Record<string, unknown>[];
      for (const g of grants) out.push(`${String(Object.values(g)[0])};`);
    }
    return `${out.join("\n")}\n`;
  });
}

/** `mysqlGlobalsSql` as the dump stream of the globals part (its failure is the part's DUMP_FAILED). */
export function mysqlGlobalsStream(target: SourceTarget, signal: AbortSignal): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent) return controller.close();
      sent = true;
      try {
        controller.enqueue(new TextEncoder().encode(await mysqlGlobalsSql(target, signal)));
      } catch (err) {
        const message = err instanceof ProbeError ? err.verifyError.message : err instanceof Error ? err.message : String(err);
        controller.error(new ToolFailedError("DUMP_FAILED", "users and grants (SHOW CREATE USER / SHOW GRANTS)", null, message));
      }
    },
  });
}
