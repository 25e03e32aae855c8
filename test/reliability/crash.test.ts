/**
 * Crash safety: the real daemon (`bun src/main.ts serve`) is killed with SIGKILL at seeded
 * random points of a backup — while the dump runs, while parts upload to S3, and after the
 * storage has the whole object but before the job row says so — then restarted on the same
 * data dir. After every kill: the store passes integrity and foreign-key checks, no job stays
 * `running`, storage holds only the files of succeeded jobs (with their recorded size and
 * sha256, no temp files), the audit trail has no gap, and the next backup succeeds.
 * SNAPDB_CRASH_SEEDS="1,2,3" picks other seeds.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { DaemonApi, seededRandom } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { tempDir } from "../helpers/tmp.ts";
import { auditGaps, localObjects, readLocal, readStore, s3Objects, sha256, storageProblems } from "./invariants.ts";

const SEEDS = (process.env.SNAPDB_CRASH_SEEDS ?? "1,2,3,4,5,6,7,8").split(",").map(Number);
const ORG = "org_crash";
const dataDir = tempDir("snapdb-crash");
const scratch = tempDir("snapdb-crash-src");
const dbFile = join(dataDir.path, "snapdb.db");
const managedRoot = join(dataDir.path, "managed");
const ENV = { SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1", SNAPDB_LOG_LEVEL: "warn", SNAPDB_RUNNER_SHUTDOWN_GRACE_SECONDS: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path };

let pg: PgServer;
let s3: S3Server;
let proxy: FaultProxy;
let daemon: Daemon | null = null;
let api: DaemonApi;
let token: string;
let managedId: string;
let s3DstId: string;

/** Every daemon ever started: a test that times out mid-start must not leave one running. */
const started = new Set<Promise<Daemon>>();

async function start(): Promise<void> {
  const starting = startDaemon({ dataDir: dataDir.path, env: ENV });
  started.add(starting);
  daemon = await starting;
  api = new DaemonApi(daemon.baseUrl, token ?? "");
}

async function kill9(): Promise<void> {
  await daemon?.stop("SIGKILL");
  daemon = null;
}

function sqliteFile(bytes: number): string {
  const file = join(scratch.path, `src-${crypto.randomUUID()}.db`);
  const db = new Database(file);
  db.run("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)");
  // Random bytes do not compress: the stored file is as big as the dump.
  for (let done = 0; done < bytes; done += 1 << 20) db.run("INSERT INTO blobs (b) VALUES (?)", [randomBytes(Math.min(1 << 20, bytes - done))]);
  db.close();
  return file;
}

/**
 * The backup tools of a dump of the server on `port` still running: its pg_dump, and the
 * processes downstream of it (zstd, age: whatever reads the pg_dump's stdout pipe, or the
 * pipe after it).
 */
function toolsOf(port: number): string[] {
  const procs = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  const found: string[] = [];
  const fd = (pid: string, n: number) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${n}`);
    } catch {
      return null;
    }
  };
  let outs = new Set<string>();
  for (const pid of procs) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!argv[0]?.endsWith("pg_dump") || !argv.includes(`--port=${port}`)) continue;
      found.push(`pg_dump ${pid}`);
      const out = fd(pid, 1);
      if (out?.startsWith("pipe:")) outs.add(out);
    } catch {}
  }
  // Follow the pipes downstream (pg_dump | zstd | age).
  while (outs.size > 0) {
    const next = new Set<string>();
    for (const pid of procs) {
      const input = fd(pid, 0);
      if (!input || !outs.has(input)) continue;
      found.push(`downstream ${pid}`);
      const out = fd(pid, 1);
      if (out?.startsWith("pipe:")) next.add(out);
    }
    outs = next;
  }
  return found;
}

/** Every invariant, checked right after a kill (store) and after the restart (API, storage). */
async function checkAfterCrash(label: string): Promise<void> {
  const store = readStore(dbFile);
  expect(store.integrity, label).toBe("ok");
  expect(store.foreignKeyProblems, label).toEqual([]);
  expect(auditGaps(store), label).toEqual([]);

  await start();
  const after = readStore(dbFile);
  expect(
    after.jobs.filter((j) => j.status === "running").map((j) => j.id),
    `${label}: running after recovery`,
  ).toEqual([]);
  expect(
    after.restores.filter((r) => r.status === "running").map((r) => r.id),
    `${label}: restores running after recovery`,
  ).toEqual([]);
  expect(auditGaps(after), label).toEqual([]);
  const temp = localObjects(managedRoot).filter((o) => o.key.includes(".snapdb-part-"));
  expect(
    temp.map((o) => o.key),
    `${label}: temp files`,
  ).toEqual([]);
  // A SQLite snapshot is a whole unencrypted copy of a user's database: none may outlive a crash.
  const scratchDir = join(dataDir.path, "tmp");
  expect(existsSync(scratchDir) ? readdirSync(scratchDir) : [], `${label}: snapshots left in tmp/`).toEqual([]);
  expect(storageProblems(readLocal(managedRoot), after.jobs, managedId), `${label}: managed dir`).toEqual([]);
  expect(storageProblems(await s3Objects(s3.endpoint, "crash"), after.jobs, s3DstId), `${label}: s3 bucket`).toEqual([]);
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3rver(["crash"])]);
  proxy = await startFaultProxy(s3.endpoint);
  pg.psql(
    `SET ROLE ${pg.user};
    CREATE TABLE events (id serial PRIMARY KEY, body text NOT NULL);
    INSERT INTO events (body) SELECT md5(g::text) || repeat('x', 200) FROM generate_series(1, 20000) g;`,
    pg.database,
  );
  await start();
  token = await daemon!.token(ORG);
  api.token = token;
  managedId = (await api.managedDestination()).id;
  s3DstId = (await api.s3Destination({ ...s3, endpoint: proxy.endpoint }, "crash")).id;
}, 120_000);

afterAll(async () => {
  for (const starting of started) await starting.then((d) => d.stop("SIGKILL")).catch(() => {});
  const timed = async (what: string, p: Promise<unknown> | undefined) => {
    const t = Date.now();
    await Promise.race([p, Bun.sleep(8000)]);
    if (Date.now() - t > 2000) console.warn(`${what} took ${Date.now() - t} ms to close`);
  };
  await Promise.all([timed("proxy", proxy?.close()), timed("s3rver", s3?.close()), timed("postgres", pg?.stop())]);
  dataDir.cleanup();
  scratch.cleanup();
}, 30_000);

type Scenario = "dump" | "upload" | "after-upload" | "anywhere";
const SCENARIOS: Scenario[] = ["dump", "upload", "after-upload", "anywhere"];

/** Sets up a source for the scenario, starts its backup, kills the daemon at a seeded point. */
async function crashOnce(seed: number): Promise<{ sourceId: string; policyId: string; jobId: string; cleanup: () => Promise<void> }> {
  if (!daemon) await start();
  const random = seededRandom(seed);
  const scenario = SCENARIOS[(seed - 1) % SCENARIOS.length]!;
  const delay = (maxMs: number) => Bun.sleep(Math.floor(random() * maxMs));
  let cleanup = async () => {};

  if (scenario === "dump" || scenario === "anywhere") {
    const source = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
    const policy = await api.createPolicy(managedId, { retries: 1 });
    await api.attach(source.id, policy.id);
    if (scenario === "dump") {
      // A held lock keeps pg_dump waiting mid-dump (the temp file is already open) for as long as we like.
      cleanup = await holdTableLock(pg, pg.database, "events", "ACCESS EXCLUSIVE");
      try {
        const job = await api.runNow(source.id);
        // Wait for the upload's temp file (the put has begun, pg_dump is blocked), then kill at a seeded point.
        const tempOf = () => localObjects(managedRoot).some((o) => o.key.includes(job.id) && o.key.includes(".snapdb-part-"));
        for (let i = 0; i < 400 && !tempOf(); i++) await Bun.sleep(25);
        await delay(400);
        expect(toolsOf(pg.port)).not.toEqual([]);
        await kill9();
        // Evidence the kill hit the window: the temp file is there for recovery to remove.
        expect(tempOf()).toBe(true);
        // The tools die with the daemon, though pg_dump is still waiting on the lock and
        // nothing it writes to has closed: none runs on for a backup nobody will keep.
        for (let i = 0; i < 40 && toolsOf(pg.port).length > 0; i++) await Bun.sleep(50);
        expect(toolsOf(pg.port)).toEqual([]);
        return { sourceId: source.id, policyId: policy.id, jobId: job.id, cleanup };
      } catch (err) {
        await cleanup();
        throw err;
      }
    }
    // Anywhere: from just after run-now to past the end of a typical backup (~0.5 s on an idle
    // box), so some seeds land after success (retention, the audit write) and some before.
    const job = await api.runNow(source.id);
    await delay(1500);
    await kill9();
    return { sourceId: source.id, policyId: policy.id, jobId: job.id, cleanup };
  }

  // S3 through the fault proxy, unencrypted and uncompressed so sizes are predictable.
  const big = scenario === "upload";
  // 28 MiB: more than the S3 driver buffers ahead ((queueSize + 1) × 8 MiB parts), so the
  // SQLite snapshot is still being read when the kill comes.
  const source = await api.createSource({ engine: "sqlite", path: sqliteFile(big ? 28 << 20 : 64 << 10) });
  const policy = await api.createPolicy(s3DstId, { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } });
  await api.attach(source.id, policy.id);
  const firstPart = Promise.withResolvers<void>();
  const answered = Promise.withResolvers<void>();
  const never = new Promise(() => {});
  proxy.rule = (req) => {
    if (!req.url.includes(source.id)) return null;
    if (big && req.method === "PUT" && req.url.includes("partNumber=")) {
      firstPart.resolve();
      // Slow parts: the upload stays in flight long enough to be killed mid-way.
      return { delayMs: 1500 };
    }
    // The object is whole in storage; its answer never reaches the daemon before the kill.
    if (!big && req.method === "PUT") return { holdResponse: never, onUpstreamAnswered: () => answered.resolve() };
    return null;
  };
  const job = await api.runNow(source.id);
  await Promise.race([big ? firstPart.promise : answered.promise, Bun.sleep(20_000)]);
  await delay(big ? 900 : 200);
  await kill9();
  proxy.rule = () => null;
  const stored = (await s3Objects(s3.endpoint, "crash")).map((o) => o.key);
  const jobRow = readStore(dbFile).jobs.find((j) => j.id === job.id)!;
  expect(jobRow.status).toBe("running");
  // Evidence the kill hit the window: after-upload, storage holds the whole object the job row does not record.
  if (!big) expect(stored).toContain(jobRow.object_key!);
  else expect(readdirSync(join(dataDir.path, "tmp")).some((f) => f.startsWith("sqlite-snapshot-"))).toBe(true);
  return { sourceId: source.id, policyId: policy.id, jobId: job.id, cleanup };
}

describe("kill -9 during a backup", () => {
  // A test that failed half-way must not leave its faults on for the next one.
  beforeEach(() => {
    if (proxy) proxy.rule = () => null;
  });

  for (const seed of SEEDS) {
    test(`seed ${seed} (${SCENARIOS[(seed - 1) % SCENARIOS.length]})`, async () => {
      const crashed = await crashOnce(seed);
      try {
        await checkAfterCrash(`seed ${seed}`);
        const job = await api.must("GET", `/backup-jobs/${crashed.jobId}`);
        console.log(`seed ${seed}: the killed job ended ${job.status}${job.error ? ` (${job.error.code})` : ""}`);
        // Killed mid-way it is failed INTERRUPTED; a kill that came late finds it succeeded.
        if (job.status !== "succeeded") {
          expect(job.status).toBe("failed");
          expect(job.error.code).toBe("INTERRUPTED");
        }
        await crashed.cleanup();
        const next = await api.backupNow(crashed.sourceId, crashed.policyId, 60_000);
        expect(next.status).toBe("succeeded");
        expect(next.error).toBeNull();
      } finally {
        await crashed.cleanup();
      }
    }, 60_000);
  }

  test("kill -9 during a restore: failed INTERRUPTED after restart, the SQLite target untouched", async () => {
    if (!daemon) await start();
    const target = sqliteFile(3 << 20);
    const source = await api.createSource({ engine: "sqlite", path: target });
    const policy = await api.createPolicy(s3DstId, { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } });
    await api.attach(source.id, policy.id);
    const backup = await api.backupNow(source.id);
    expect(backup.status).toBe("succeeded");
    // Change the target after the backup, so a restore that went through would show.
    const live = new Database(target);
    live.run("CREATE TABLE after_backup (x)");
    live.close();
    const before = sha256(readFileSync(target));
    // The backup file comes back slowly: the restore is mid-way, its temp file half written, at the kill.
    proxy.rule = (req) => (req.method === "GET" && req.url.includes(source.id) ? { slowBody: { chunkBytes: 64 << 10, pauseMs: 20 } } : null);
    const restore = await api.must("POST", "/restores", { backupJobId: backup.id, clean: true }, 202);
    const temp = (name: string) => name.includes(`snapdb-restore-${restore.id}`);
    for (let i = 0; i < 200 && !readdirSync(dirname(target)).some(temp); i++) await Bun.sleep(25);
    expect(readdirSync(dirname(target)).some(temp)).toBe(true);
    await Bun.sleep(Math.floor(seededRandom(99)() * 300));
    await kill9();
    proxy.rule = () => null;
    await checkAfterCrash("restore");
    const after = await api.must("GET", `/restores/${restore.id}`);
    expect(after.status).toBe("failed");
    expect(after.error.code).toBe("INTERRUPTED");
    expect(sha256(readFileSync(target))).toBe(before);
    expect(readdirSync(dirname(target)).filter(temp)).toEqual([]);
  }, 60_000);

  test("the store after every crash, restarted once more: consistent, nothing running, storage matches", async () => {
    await kill9();
    await checkAfterCrash("final");
    const jobs = await api.must("GET", "/backup-jobs?limit=200");
    expect(jobs.items.some((j: any) => j.error?.code === "INTERRUPTED")).toBe(true);
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    daemon = null;
  }, 60_000);
});
