import type { SQL } from "bun";
import { ProbeError } from "./network.ts";
import { RestoreSetupError, withConnection } from "./restore.ts";
import { inspectSqlite } from "./sqlite-inspect.ts";
import type { SourceTarget } from "./types.ts";

/**
 * A restore plan's checks: SQL that returns one value, run read-only in the restored
 * database and compared, as text, with what the user expects. Each check is ONE statement
 * in its own read-only transaction:
 * - PostgreSQL: the session defaults to read-only, each check runs inside BEGIN READ ONLY,
 *   sent with the extended query protocol (a bound parameter forces it), which refuses a
 *   second statement in the text;
 * - MySQL/MariaDB: START TRANSACTION READ ONLY (and a read-only session), the text handed to
 *   the server as a user variable and run through PREPARE, which takes one statement only;
 * - SQLite: a read-only connection per check in a child process (sqlite-inspect.ts).
 * A check that errors fails with its error; it never ends the run.
 */
export interface CheckSpec {
  name: string;
  sql: string;
  expect: string;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  /** The first column of the first row as text; null when no row came back or the value was NULL. */
  found: string | null;
  /** Why the check could not run (SQL error, timeout); absent when it ran. */
  error?: string;
}

/** Per check: a check that runs longer fails (a statement timeout, or the child is killed). */
export const CHECK_TIMEOUT_SECONDS = 300;

/** How a value reads as text: numbers in decimal, booleans true/false, times in ISO 8601 UTC, JSON as JSON. */
export function valueAsText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  return JSON.stringify(v);
}

const clip = (s: string, max = 500) => (s.length > max ? `${s.slice(0, max)}…` : s);
const messageOf = (err: unknown) => clip(err instanceof Error ? err.message : String(err));
const result = (check: CheckSpec, found: string | null, error?: string): CheckResult => ({
  name: check.name,
  ok: error === undefined && found !== null && found === check.expect,
  found,
  ...(error === undefined ? {} : { error }),
});

async function pgChecks(sql: SQL, checks: CheckSpec[]): Promise<CheckResult[]> {
  await sql.unsafe("SET default_transaction_read_only = on");
  await sql.unsafe(`SET statement_timeout = '${CHECK_TIMEOUT_SECONDS}s'`);
  const out: CheckResult[] = [];
  for (const check of checks) {
    try {
      await sql.unsafe("BEGIN READ ONLY");
      // The unused parameter makes Bun use the extended protocol: one statement only.
      const rows = (await sql.unsafe(check.sql, [0]).values()) as unknown[][];
      out.push(result(check, valueAsText(rows[0]?.[0])));
    } catch (err) {
      out.push(result(check, null, messageOf(err)));
    } finally {
      await sql.unsafe("ROLLBACK").catch(() => {});
    }
  }
  return out;
}

async function mysqlChecks(sql: SQL, checks: CheckSpec[]): Promise<CheckResult[]> {
  await sql.unsafe("SET SESSION TRANSACTION READ ONLY");
  // MariaDB's and MySQL's statement time limits; whichever the server does not know is skipped.
  await sql.unsafe(`SET SESSION max_statement_time = ${CHECK_TIMEOUT_SECONDS}`).catch(() => {});
  await sql.unsafe(`SET SESSION max_execution_time = ${CHECK_TIMEOUT_SECONDS * 1000}`).catch(() => {});
  const out: CheckResult[] = [];
  for (const check of checks) {
    try {
      await sql.unsafe("START TRANSACTION READ ONLY");
      await sql.unsafe("SET @snapdb_check = ?", [check.sql]);
      await sql.unsafe("PREPARE snapdb_check FROM @snapdb_check");
      const rows = (await sql.unsafe("EXECUTE snapdb_check").values()) as unknown[][];
      out.push(result(check, valueAsText(rows[0]?.[0])));
    } catch (err) {
      out.push(result(check, null, messageOf(err)));
    } finally {
      await sql.unsafe("DEALLOCATE PREPARE snapdb_check").catch(() => {});
      await sql.unsafe("ROLLBACK").catch(() => {});
    }
  }
  return out;
}

/** Runs `checks` against `database` of a pinned network target, or against the SQLite file at `sqlitePath`. */
export async function runChecks(where: { target: SourceTarget; database: string | null; sqlitePath: string | null }, checks: CheckSpec[], signal?: AbortSignal): Promise<CheckResult[]> {
  if (checks.length === 0) return [];
  if (where.target.engine === "sqlite") {
    const out: CheckResult[] = [];
    for (const check of checks) {
      try {
        const r = await inspectSqlite(where.sqlitePath!, { check: check.sql }, { timeoutMs: CHECK_TIMEOUT_SECONDS * 1000, signal });
        out.push(r.error !== undefined ? result(check, null, clip(r.error)) : result(check, r.found ?? null));
      } catch (err) {
        out.push(result(check, null, messageOf(err)));
      }
    }
    return out;
  }
  const database = where.database!;
  try {
    return await withConnection(where.target, database, signal, (sql) => (where.target.engine === "postgres" ? pgChecks(sql, checks) : mysqlChecks(sql, checks)));
  } catch (err) {
    if (err instanceof ProbeError || err instanceof RestoreSetupError) throw err;
    throw new RestoreSetupError("VERIFICATION_FAILED", `the checks could not be run: ${messageOf(err)}`);
  }
}
