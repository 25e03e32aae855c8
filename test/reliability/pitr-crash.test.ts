/**
 * WAL archiving across a crash of the daemon: the real daemon (`bun src/main.ts serve`)
 * archives a PostgreSQL source's WAL, is killed with SIGKILL, and stays down while the
 * database commits rows, finishes segments and checkpoints (which recycles every segment no
 * replication slot holds). Restarted on the same data dir, it resumes from its spool and the
 * slot: the archive has no gap, and a restore to an instant of the downtime has exactly the
 * rows committed before it. Then a clean stop (SIGTERM): exit 0, pg_receivewal stopped by the
 * daemon with SIGINT (its clean exit), its partial segment kept and resumed after the restart.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startPostgres, startPostgresOn, type PgServer } from "../helpers/postgres.ts";
import { waitFor } from "../helpers/servers.ts";
import { tempDir } from "../helpers/tmp.ts";

const ORG = "org_pitr_crash";
const dataDir = tempDir("snapdb-pitr-crash");
const scratch = tempDir("snapdb-pitr-crash-restores");
const restoreRoot = join(scratch.path, "restores");
const ENV = { SNAPDB_ALLOWED_RESTORE_ROOTS: restoreRoot, SNAPDB_LOG_LEVEL: "info", SNAPDB_RUNNER_SHUTDOWN_GRACE_SECONDS: "1" };

let pg: PgServer;
let app: SQL;
let daemon: Daemon | null = null;
let api: DaemonApi;
const started = new Set<Promise<Daemon>>();

async function start(): Promise<void> {
  const starting = startDaemon({ dataDir: dataDir.path, env: ENV });
  started.add(starting);
  daemon = await starting;
  api = new DaemonApi(daemon.baseUrl, api?.token ?? "");
}

/** pg_receivewal processes writing into this daemon's spool (precisely these: found by their argv). */
function receiversOfSpool(): number[] {
  const spool = join(dataDir.path, "wal-spool");
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.endsWith("pg_receivewal")) && argv.some((a) => a.startsWith(`--directory=${spool}/`))) pids.push(Number(pid));
    } catch {}
  }
  return pids;
}

const commits: { started: number; committed: number }[] = [];
let sourceId = "";
async function commitRow(id: number) {
  const started = Date.now();
  await app`INSERT INTO events (id) VALUES (${id})`;
  commits[id] = { started, committed: Date.now() + 1 };
}

async function windowOf(sourceId: string): Promise<{ from: string | null; to: string | null }> {
  return api.must("GET", `/data-sources/${sourceId}/recovery-window`);
}

beforeAll(async () => {
  chmodSync(scratch.path, 0o755);
  mkdirSync(restoreRoot, { mode: 0o755 });
  pg = await startPostgres({ replication: true });
  app = new SQL({ url: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`, max: 1 });
  await app`CREATE TABLE events (id int PRIMARY KEY)`;
  await start();
  api.token = await daemon!.token(ORG);
}, 120_000);

afterAll(async () => {
  for (const starting of started) await starting.then((d) => d.stop("SIGKILL")).catch(() => {});
  // A pg_receivewal that outlived its daemon (no setpriv here) is ours to stop, by its pid.
  for (const pid of receiversOfSpool()) process.kill(pid, "SIGKILL");
  await app?.close();
  await pg?.stop();
  if (!process.env.PITR_KEEP) dataDir.cleanup();
  scratch.cleanup();
}, 30_000);

test("kill -9 of the daemon mid-stream loses no WAL and leaves no gap", async () => {
  const destination = await api.managedDestination();
  const source = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
  sourceId = source.id;
  const policy = await api.createPolicy(destination.id, { method: "physical", fastCheckpoint: true });
  await api.attach(source.id, policy.id);
  const job = await api.backupNow(source.id);
  expect(job.status).toBe("succeeded");
  for (let i = 0; i <= 2; i++) await commitRow(i);
  await waitFor("pg_receivewal under the daemon", () => receiversOfSpool().length === 1, 30_000);

  await daemon!.stop("SIGKILL");
  daemon = null;
  // Its pg_receivewal dies with it where setpriv can tie them; if one survives, it is stopped
  // here too: the test is about WAL written while nothing receives it.
  await Bun.sleep(200);
  for (const pid of receiversOfSpool()) process.kill(pid, "SIGKILL");
  for (let i = 3; i <= 6; i++) {
    await commitRow(i);
    await Bun.sleep(40);
    pg.psql("SELECT pg_switch_wal();");
  }
  pg.psql("CHECKPOINT;");

  await start();
  await commitRow(7);
  pg.psql("SELECT pg_switch_wal();");
  let window = await windowOf(source.id);
  await waitFor(
    "the window to reach the rows written while the daemon was down",
    async () => {
      window = await windowOf(source.id);
      return window.to !== null && Date.parse(window.to) >= commits[7]!.started;
    },
    60_000,
  ).catch((err) => {
    throw new Error(`${err.message}; window ${JSON.stringify(window)}; daemon log:\n${daemon?.logs()}`);
  });

  const gaps = await api.must("GET", "/audit-log?action=wal_archive.gap,wal_archive.slot_reset");
  expect(gaps.items).toEqual([]);

  // An instant while the daemon was down: between the commits of rows 4 and 5.
  const target = Math.floor((commits[4]!.committed + commits[5]!.started) / 2);
  const dir = join(restoreRoot, "downtime");
  const queued = await api.must("POST", "/restores", { dataSourceId: source.id, targetTime: new Date(target).toISOString(), targetDirectory: dir }, 202);
  const restore = await api.waitForStatus(`/restores/${queued.id}`, undefined, 120_000);
  expect(restore.error).toBeNull();
  const server = await startPostgresOn(dir);
  try {
    const ids = server.psql("SELECT id FROM events ORDER BY id;", "appdb").trim().split("\n").map(Number);
    expect(ids).toEqual([0, 1, 2, 3, 4]);
  } finally {
    await server.stop();
  }
}, 240_000);

test("SIGTERM: the daemon exits 0, pg_receivewal stops with it, its partial segment is kept and resumed without a gap", async () => {
  await waitFor("pg_receivewal under the daemon", () => receiversOfSpool().length === 1, 30_000);
  // Row 8 lands in the segment pg_receivewal is writing: only the .partial file holds it.
  await commitRow(8);
  const spool = join(dataDir.path, "wal-spool", sourceId);
  const partial = () => readdirSync(spool).filter((n) => n.endsWith(".partial"));
  await waitFor("a partial segment in the spool", () => partial().length === 1, 10_000);
  const kept = partial()[0]!;
  await Bun.sleep(500);

  const stopping = daemon!;
  const code = await stopping.stop("SIGTERM");
  const daemonLog = stopping.logs();
  daemon = null;
  expect(code).toBe(0);
  // Stopped by the daemon (SIGINT, its clean exit), not left behind nor killed with it.
  const stopped = daemonLog
    .split("\n")
    .filter((l) => l.includes("WAL archiving stopped for shutdown"))
    .map((l) => JSON.parse(l));
  expect(stopped.map((l) => ({ dataSourceId: l.dataSourceId, pgReceivewal: l.pgReceivewal }))).toEqual([{ dataSourceId: sourceId, pgReceivewal: { exitCode: 0, signal: null } }]);
  expect(receiversOfSpool()).toEqual([]);
  expect(partial()).toEqual([kept]);

  await start();
  await commitRow(9);
  pg.psql("SELECT pg_switch_wal();");
  let window = await windowOf(sourceId);
  await waitFor(
    "the window to reach row 9",
    async () => {
      window = await windowOf(sourceId);
      return window.to !== null && Date.parse(window.to) >= commits[9]!.started;
    },
    60_000,
  ).catch((err) => {
    throw new Error(`${err.message}; window ${JSON.stringify(window)}; daemon log:\n${daemon?.logs()}`);
  });
  expect((await api.must("GET", "/audit-log?action=wal_archive.gap,wal_archive.slot_reset")).items).toEqual([]);
  expect(daemon!.logs()).not.toContain("removed a partial WAL file");

  // Row 8 was only in the partial segment when the daemon stopped: it is in the archive.
  const target = Math.floor((commits[8]!.committed + commits[9]!.started) / 2);
  const dir = join(restoreRoot, "after-sigterm");
  const queued = await api.must("POST", "/restores", { dataSourceId: sourceId, targetTime: new Date(target).toISOString(), targetDirectory: dir }, 202);
  expect((await api.waitForStatus(`/restores/${queued.id}`, undefined, 120_000)).error).toBeNull();
  const server = await startPostgresOn(dir);
  try {
    expect(server.psql("SELECT id FROM events ORDER BY id;", "appdb").trim().split("\n").map(Number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  } finally {
    await server.stop();
  }
}, 240_000);
