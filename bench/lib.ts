/**
 * Shared pieces of the benchmarks: machine facts, statistics, the RESULTS.md appender, an
 * RSS sampler for the daemon process, and small API helpers over a real listening daemon.
 * Everything talks to 127.0.0.1 only.
 */
import { SQL } from "bun";
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem, loadavg } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, startDaemon, type Daemon, type DaemonOptions } from "../test/helpers/daemon.ts";

export { REPO_ROOT, startDaemon, type Daemon };
/** Where results are appended; SNAPDB_BENCH_RESULTS redirects a trial run elsewhere. */
export const RESULTS = process.env.SNAPDB_BENCH_RESULTS ?? join(REPO_ROOT, "bench/RESULTS.md");

export function sh(cmd: string, opts: { env?: Record<string, string> } = {}): string {
  const res = Bun.spawnSync(["bash", "-c", cmd], { env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  if (res.exitCode !== 0) throw new Error(`${cmd} failed (${res.exitCode}): ${res.stderr.toString().slice(-2000)}`);
  return res.stdout.toString();
}

/** `sh` without blocking the event loop (samplers and watchers keep running meanwhile). */
export async function shAsync(cmd: string, opts: { env?: Record<string, string> } = {}): Promise<string> {
  const proc = Bun.spawn(["bash", "-c", cmd], { env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd} failed (${code}): ${err.slice(-2000)}`);
  return out;
}

export function machine(): string {
  let commit = "unknown";
  let dirty = "";
  try {
    commit = sh("git -C " + REPO_ROOT + " rev-parse --short HEAD").trim();
    dirty = sh("git -C " + REPO_ROOT + " status --porcelain -- src").trim() ? " (src/ has uncommitted changes)" : "";
  } catch {}
  const cpu = cpus()[0]?.model ?? "unknown";
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  return `${cpus().length} × ${cpu}, ${gib} GiB RAM, Bun ${Bun.version}, commit ${commit}${dirty}`;
}

export const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** `median (min–max)` with a formatter. */
export function mmm(xs: number[], fmt: (n: number) => string = (n) => n.toFixed(1)): string {
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}

/** Appends one dated section to bench/RESULTS.md (created with a header if missing). */
export function appendResults(title: string, body: string): void {
  if (!existsSync(RESULTS)) writeFileSync(RESULTS, "# snapdb benchmark results\n\nAppended by the scripts in bench/ (see bench/README.md); newest at the bottom.\n");
  const section = `\n## ${title} — ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC\n\nMachine: ${machine()}. Load average at the end (1/5/15 min): ${load()}.\n\n${body.trim()}\n`;
  appendFileSync(RESULTS, section);
  process.stdout.write(section);
}

/** VmRSS / VmHWM of a process in MiB (null once it is gone). */
export function memOf(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return null;
  }
}

/** Resets VmHWM (the kernel's peak RSS) so the next reading is the peak of what follows. */
export function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {}
}

/** Samples VmRSS every `ms` until stopped; returns the max seen and VmHWM at the end. */
export function rssSampler(pid: number, ms = 100) {
  let max = 0;
  const tick = () => {
    const m = memOf(pid);
    if (m) max = Math.max(max, m.rss);
  };
  tick();
  const timer = setInterval(tick, ms);
  return {
    stop(): { maxRss: number; hwm: number } {
      clearInterval(timer);
      tick();
      return { maxRss: max, hwm: memOf(pid)?.hwm ?? max };
    },
  };
}

/** A small fetch-based client of the daemon's API that checks statuses. */
export function apiOf(d: Daemon, token: string) {
  return async function api(method: string, path: string, body?: unknown, want: number[] = [200, 201, 202, 204]): Promise<any> {
    const res = await fetch(d.baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!want.includes(res.status)) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/** Starts the daemon from source with a quiet log. */
export function daemon(opts: DaemonOptions = {}): Promise<Daemon> {
  return startDaemon({ readyTimeoutMs: 60_000, ...opts, env: { SNAPDB_LOG_LEVEL: "warn", ...opts.env } });
}

/**
 * The setting most benchmarks share: a daemon running one job at a time (stopped by
 * `cleanup`), an org's API client, its managed (local) destination and a data source for
 * the PostgreSQL server `pg`, credentials set.
 */
export async function daemonWithPgSource(pg: { host: string; port: number; database: string; user: string; password: string }, cleanup: ReturnType<typeof cleanupStack>) {
  const d = await daemon({ env: { SNAPDB_RUNNER_MAX_CONCURRENT: "1" } });
  cleanup.push(() => d.stop());
  const api = apiOf(d, await d.token("org_bench"));
  const managed = await api("POST", "/storage-destinations/managed/ensure");
  const source = await api("POST", "/data-sources", { name: "bench-pg", engine: "postgres", host: pg.host, port: pg.port, database: pg.database });
  await api("PUT", `/data-sources/${source.id}/credentials`, { username: pg.user, password: pg.password });
  return { d, api, managed, source };
}

/** Stops everything registered, in reverse order, on normal end, error and SIGINT/SIGTERM. */
export function cleanupStack() {
  const stack: (() => unknown)[] = [];
  let done = false;
  const run = async () => {
    if (done) return;
    done = true;
    for (const f of stack.reverse()) {
      try {
        await f();
      } catch (err) {
        console.error("cleanup:", err);
      }
    }
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void run().then(() => process.exit(130)));
  return { push: (f: () => unknown) => stack.push(f), run };
}

export const fmtMs = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(0));

/** CPU seconds of a process: its own (user + sys) and its reaped children's (cutime + cstime). */
export function cpuOf(pid: number | "self"): { self: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  // Fields 14–17 of proc(5), counted from field 3 here; clock ticks are 100 per second on Linux.
  return { self: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100 };
}

/** A session seen in pg_stat_activity: its database, application_name and backend_start (ms; the server's clock is this machine's). */
export interface SeenSession {
  datname: string;
  app: string;
  started: number;
}

/**
 * Watches a PostgreSQL server's pg_stat_activity every `ms` for sessions matching `where` (an
 * SQL condition over its columns, written by the script) and keeps every one seen, so the
 * server-side start of each step of a run can be read afterwards. Both sides of a pair are
 * watched alike, so the load it adds (one small query per period) is the same on both. A
 * session shorter than the period may be missed. The login sees other sessions' details only
 * for its own role: the daemon and the shell connect as the same role.
 */
export function sessionWatcher(pg: { host: string; port: number; user: string; password: string }, where: string, ms = 50) {
  const sql = new SQL({ url: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/postgres`, max: 1 });
  const seen = new Map<string, SeenSession>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const rows = (await sql.unsafe(`SELECT pid, datname, application_name AS app, backend_start AS started FROM pg_stat_activity WHERE (${where}) AND pid <> pg_backend_pid()`)) as {
        pid: number;
        datname: string;
        app: string;
        started: Date;
      }[];
      for (const r of rows) seen.set(`${r.pid}@${r.started.getTime()}`, { datname: r.datname, app: r.app, started: r.started.getTime() });
      await Bun.sleep(ms);
    }
  })();
  return {
    /** Sessions that started in [from, to]. */
    sessions: (from = 0, to = Infinity) => [...seen.values()].filter((s) => s.started >= from && s.started <= to),
    async stop() {
      stopped = true;
      await loop.catch(() => {});
      await sql.close({ timeout: 0 });
    },
  };
}

/**
 * CPU seconds of a PostgreSQL server's whole process tree: the postmaster (with the backends
 * it has reaped) and every live child (backends, autovacuum, walwriter, …), read from /proc.
 * `dataDir` is the server's data directory (postmaster.pid names the postmaster).
 */
export function pgServerCpu(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const own = cpuOf(postmaster);
  let total = own.self + own.children;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== postmaster) continue;
      const c = cpuOf(Number(entry));
      total += c.self + c.children;
    } catch {} // the process ended meanwhile: its time is in the postmaster's children now
  }
  return total;
}
