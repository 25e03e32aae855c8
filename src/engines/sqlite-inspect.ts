import { tmpdir } from "node:os";

/**
 * Reading a SQLite file the daemon restored or snapshotted (row counts, a plan's checks) in a
 * child process, never in the daemon: a check is tenant SQL, and one that never ends (an
 * endless recursive CTE) would block the daemon's only thread; bun:sqlite has no interrupt,
 * and a Worker cannot be stopped inside a query (it keeps its CPU after terminate()). A child
 * is SIGKILLed at its deadline. The child is this very executable: `bun -e` from source, the
 * compiled binary with BUN_BE_BUN=1 (it then behaves as the bun it embeds). Its environment
 * is that one variable: none of the daemon's secrets.
 *
 * Every check opens the file on its own read-only connection and runs one statement
 * (bun:sqlite prepares the first statement of the text only), so an ATTACH in one check
 * cannot serve a later one.
 */
const CHILD = `
import { Database } from "bun:sqlite";
const input = JSON.parse(await Bun.stdin.text());
const text = (v) => v === null || v === undefined ? null : typeof v === "string" ? v : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : String(v);
const open = () => { const db = new Database(input.path, { readonly: true }); db.run("PRAGMA query_only = ON"); return db; };
const out = {};
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
  error?: string;
}

export class SqliteInspectError extends Error {
  constructor(message: string, readonly timedOut = false) {
    super(message);
    this.name = "SqliteInspectError";
  }
}

/** Runs the child once: `count` the rows of every table, and/or one `check` statement. */
export async function inspectSqlite(path: string, request: { count?: boolean; check?: string }, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SqliteInspectResult> {
  const proc = Bun.spawn([process.execPath, "-e", CHILD], {
    cwd: tmpdir(),
    env: { BUN_BE_BUN: "1" },
    stdin: new Blob([JSON.stringify({ path, ...request })]),
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs);
  const onAbort = () => proc.kill("SIGKILL");
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (timedOut) throw new SqliteInspectError(`stopped after ${Math.round(opts.timeoutMs / 1000)} s`, true);
    if (opts.signal?.aborted) throw new SqliteInspectError("aborted");
    if (code !== 0) throw new SqliteInspectError(stderr.trim().split("\n").slice(-3).join(" ").slice(0, 500) || `exited with code ${code}`);
    return JSON.parse(stdout) as SqliteInspectResult;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
