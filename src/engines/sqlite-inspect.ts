import { tmpdir } from "node:os";
import { spawnTool } from "./tool-stream.ts";

/**
 * Reading a SQLite file the daemon restored or snapshotted (row counts, a plan's checks) in a
 * child process, never in the daemon: a check is tenant SQL, and one that never ends (an
 * endless recursive CTE) would block the daemon's only thread; bun:sqlite has no interrupt,
 * and a Worker cannot be stopped inside a query (it keeps its CPU after terminate()). A child
 * is killed at its deadline, and dies with the daemon where setpriv allows it. The child is
 * this very executable: `bun -e` from source, the compiled binary with BUN_BE_BUN=1 (it then
 * behaves as the bun it embeds). Its environment is PATH, the locale and that variable: none
 * of the daemon's secrets.
 *
 * Every check opens the file on its own read-only connection and runs one statement
 * (bun:sqlite prepares the first statement of the text only), so an ATTACH in one check
 * cannot serve a later one. The path must be a real one (no symlink anywhere in it): the file
 * is opened with SQLite's NOFOLLOW, as every tenant file is (sqlite-path.ts).
 */
const CHILD = `
import { Database, constants } from "bun:sqlite";
const input = JSON.parse(await Bun.stdin.text());
const text = (v) => v === null || v === undefined ? null : typeof v === "string" ? v : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : String(v);
const open = () => { const db = new Database(input.path, constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_NOFOLLOW); db.run("PRAGMA query_only = ON"); return db; };
const openRw = () => new Database(input.path, constants.SQLITE_OPEN_READWRITE | constants.SQLITE_OPEN_NOFOLLOW);
const out = {};
if (input.verify) {
  let db = null;
  try {
    db = open();
    db.query("SELECT count(*) AS n FROM sqlite_master").get();
    out.version = db.query("SELECT sqlite_version() AS v").get().v;
  } catch (e) { out.error = String(e && e.message || e); }
  finally { db && db.close(); }
}
if (input.objects) {
  let db = null;
  try {
    db = open();
    out.objects = Number(db.query("SELECT count(*) AS n FROM sqlite_master WHERE type IN ('table','view') AND name NOT LIKE 'sqlite\\\\_%' ESCAPE '\\\\'").get().n);
  } catch { out.objects = -1; }
  finally { db && db.close(); }
}
if (input.integrity) {
  let db = null;
  try {
    db = openRw();
    out.integrity = db.query("PRAGMA integrity_check").all().map((r) => r.integrity_check).join("; ");
  } catch (e) { out.integrity = String(e && e.message || e); }
  finally { db && db.close(); }
}
if (input.checkpoint) {
  let db = null;
  try {
    db = openRw();
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    out.checkpointed = true;
  } catch (e) { out.error = String(e && e.message || e); }
  finally { db && db.close(); }
}
if (input.count) {
  const db = open();
  try {
    const tables = db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\\\_%' ESCAPE '\\\\' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name").all();
    out.tables = {};
    for (const t of tables) out.tables[t.name] = Number(db.query('SELECT count(*) AS n FROM "' + t.name.replace(/"/g, '""') + '"').get().n);
  } finally { db.close(); }
}
if (input.check) {
  let db = null;
  try {
    db = open();
    const row = db.query(input.check).values()[0];
    out.found = row === undefined ? null : text(row[0]);
  } catch (e) { out.error = String(e && e.message || e); }
  finally { db && db.close(); }
}
process.stdout.write(JSON.stringify(out));
`;

export interface SqliteInspectResult {
  tables?: Record<string, number>;
  found?: string | null;
  /** `verify`: the SQLite library's version, once the schema was read. */
  version?: string;
  /** `objects`: tables and views (-1: not a database). */
  objects?: number;
  /** `integrity`: PRAGMA integrity_check's answer ("ok"), or why it could not run. */
  integrity?: string;
  checkpointed?: boolean;
  error?: string;
}

/** What the child does: each on a connection of its own (read-write only for `integrity` and `checkpoint`). */
export interface SqliteInspectRequest {
  count?: boolean;
  check?: string;
  verify?: boolean;
  objects?: boolean;
  integrity?: boolean;
  checkpoint?: boolean;
}

export class SqliteInspectError extends Error {
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
    this.name = "SqliteInspectError";
  }
}

/**
 * Runs the child once: `count` the rows of every table, one `check` statement, `verify`
 * (the schema reads), `objects`, `integrity`, `checkpoint`. Every open of a tenant's SQLite
 * file happens in such a child, never on the daemon's thread: a file swapped for a FIFO
 * would block its open until someone writes into it, and with it the whole daemon.
 */
export async function inspectSqlite(path: string, request: SqliteInspectRequest, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SqliteInspectResult> {
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
  // A spawned tool like the dump tools: dies with the daemon where setpriv allows it, killed on abort.
  const { proc, detach, stderrDone, failure } = spawnTool(
    [process.execPath, "-e", CHILD],
    { toolPath: process.env.PATH ?? "/usr/bin:/bin", secretEnv: { BUN_BE_BUN: "1" }, signal, cwd: tmpdir() },
    "pipe",
    "pipe",
  );
  try {
    const stdout = new Response(proc.stdout).text();
    await proc.stdin.write(JSON.stringify({ path, ...request }));
    await proc.stdin.end();
    const [out] = await Promise.all([stdout, proc.exited, stderrDone]);
    if (deadline.aborted) throw new SqliteInspectError(`stopped after ${Math.round(opts.timeoutMs / 1000)} s`, true);
    if (opts.signal?.aborted) throw new SqliteInspectError("aborted");
    if (proc.exitCode !== 0) throw new SqliteInspectError(failure("RESTORE_FAILED").message.slice(0, 500));
    return JSON.parse(out) as SqliteInspectResult;
  } finally {
    detach();
  }
}
