import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { type PgServer, startPostgres } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { findFaketimeLib } from "../helpers/tool-paths.ts";

/**
 * Three compiled daemons on one PostgreSQL store: A (started first, so the first leader),
 * B whose clock runs 10 s ahead (libfaketime, as a host with a drifting clock would), and C
 * labelled `site=c`. Over about three minutes of wall time: the API answers the same on
 * every node; 50 run-nows spread over the nodes never run one data source twice at once
 * (a trigger in the store logs every claim and release, replayed afterwards); a source
 * pinned to `site=c` only runs on C; an every-minute schedule fires once per minute, also
 * across the leader being killed — B (the skewed one) takes over and neither misses nor
 * repeats a minute.
 */
const FAKETIME_LIB = findFaketimeLib();
const ORG = "org_fleet3";
const LEASE_SECONDS = 6;
const STORE_DB = "snapdb_fleet3";

let pg: PgServer;
let a: Daemon;
let b: Daemon;
let c: Daemon;
let token: string;
const shared = tempDir("snapdb-fleet3");
const sql = (query: string) => pg.psql(query, STORE_DB).trim();

/** The daemon API as a client sees it, each answer held to the served document. */
const clients = new Map<Daemon, DaemonApi>();
const api = (d: Daemon, method: string, path: string, body?: unknown) => {
  if (!clients.has(d)) clients.set(d, new DaemonApi(d.baseUrl, token));
  return clients.get(d)!.call(method, path, body);
};

const nodeIdOf = (d: Daemon) =>
  Bun.file(join(d.dataDir, "node-id"))
    .text()
    .then((t) => t.trim());

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number, everyMs = 200): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await Bun.sleep(everyMs)) {
    const value = await probe();
    if (value) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

let everyMinute: { attachmentId: string; createdAt: number };
let sources: string[] = [];
let policyId = "";

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE DATABASE ${STORE_DB} OWNER ${pg.user}`);
  pg.psql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g", pg.database);
  pg.psql(`ALTER TABLE t OWNER TO ${pg.user}`, pg.database);
  const storeUrl = `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${STORE_DB}`;
  mkdirSync(join(shared.path, "backups"), { recursive: true });
  const env = {
    SNAPDB_STORE_URL: storeUrl,
    SNAPDB_MASTER_KEY_FILE: join(shared.path, "master.key"),
    SNAPDB_JWT_SECRET: `fleet3-secret-${crypto.randomUUID()}`,
    SNAPDB_RUNNER_LEASE_SECONDS: String(LEASE_SECONDS),
    SNAPDB_ALLOWED_LOCAL_ROOTS: shared.path,
    // One job at a time per node: a wave of five run-nows must spread over the fleet.
    SNAPDB_RUNNER_MAX_CONCURRENT: "1",
    SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "5",
  };
  // A first, alone: it becomes the leader before the others ask.
  a = await startDaemon({ binary: "compiled", env, readyTimeoutMs: 120_000 });
  [b, c] = await Promise.all([
    startDaemon({ binary: "compiled", env: { ...env, LD_PRELOAD: FAKETIME_LIB, FAKETIME: "+10s", FAKETIME_DONT_RESET: "1" } }),
    startDaemon({ binary: "compiled", env: { ...env, SNAPDB_NODE_LABELS: "site=c" } }),
  ]);
  token = await a.token(ORG);

  // The store's own log of every claim and release of a job: replayed later, it shows whether
  // two jobs of one source ever ran at once, whatever the nodes' clocks say.
  sql(`CREATE TABLE test_running_log (seq bigserial PRIMARY KEY, data_source_id text, job_id text, running boolean, at timestamptz DEFAULT clock_timestamp());
       CREATE FUNCTION test_log_running() RETURNS trigger AS $$ BEGIN
         IF NEW.status = 'running' AND OLD.status <> 'running' THEN INSERT INTO test_running_log (data_source_id, job_id, running) VALUES (NEW.data_source_id, NEW.id, true); END IF;
         IF OLD.status = 'running' AND NEW.status <> 'running' THEN INSERT INTO test_running_log (data_source_id, job_id, running) VALUES (NEW.data_source_id, NEW.id, false); END IF;
         RETURN NEW; END $$ LANGUAGE plpgsql SECURITY DEFINER;
       CREATE TRIGGER test_log_running AFTER UPDATE ON backup_jobs FOR EACH ROW EXECUTE FUNCTION test_log_running();`);

  const dest = await api(a, "POST", "/storage-destinations", { name: "shared", kind: "local", path: join(shared.path, "backups") });
  expect(dest.status).toBe(201);
  const policy = await api(b, "POST", "/backup-policies", { name: "manual", scheduleCron: "0 3 * * *", destinationId: dest.body.id, retention: { keepLast: 50 } });
  expect(policy.status).toBe(201);
  policyId = policy.body.id;
  const minutely = await api(c, "POST", "/backup-policies", { name: "every-minute", scheduleCron: "* * * * *", destinationId: dest.body.id, retention: { keepLast: 50 } });
  expect(minutely.status).toBe(201);

  const source = async (d: Daemon, name: string, extra: Record<string, unknown> = {}) => {
    const created = await api(d, "POST", "/data-sources", { name, engine: "postgres", host: pg.host, port: pg.port, database: pg.database, ...extra });
    expect(created.status).toBe(201);
    expect((await api(d, "PUT", `/data-sources/${created.body.id}/credentials`, { username: pg.user, password: pg.password })).status).toBe(204);
    return created.body.id as string;
  };
  // The scheduled source first: its minutes start counting while the rest is set up.
  const scheduled = await source(a, "scheduled");
  const attachment = await api(b, "POST", "/attachments", { dataSourceId: scheduled, policyId: minutely.body.id, enabled: true });
  expect(attachment.status).toBe(201);
  everyMinute = { attachmentId: attachment.body.id, createdAt: Date.now() };
  const daemons = [a, b, c];
  sources = [];
  for (let i = 0; i < 5; i++) {
    const id = await source(daemons[i % 3]!, `busy-${i}`);
    expect((await api(daemons[(i + 1) % 3]!, "POST", "/attachments", { dataSourceId: id, policyId, enabled: true })).status).toBe(201);
    sources.push(id);
  }
}, 300_000);

afterAll(async () => {
  // FLEET_LOGS=dir keeps the three daemons' logs for a look after a failure.
  if (process.env.FLEET_LOGS)
    for (const [n, d] of [
      ["a", a],
      ["b", b],
      ["c", c],
    ] as const)
      if (d) await Bun.write(`${process.env.FLEET_LOGS}/${n}.log`, d.logs());
  await Promise.all([a?.stop("SIGKILL"), b?.stop("SIGKILL"), c?.stop("SIGKILL")]);
  await pg?.stop();
  shared.cleanup();
});

test("the API answers the same on every node; GET /nodes lists the three with their labels", async () => {
  for (const path of ["/data-sources", "/backup-policies", "/attachments", "/storage-destinations"]) {
    // nextRunAt is computed from the answering node's clock (B's runs 10 s ahead): left out.
    const view = async (d: Daemon) => {
      const r = await api(d, "GET", path);
      for (const item of r.body?.items ?? []) delete item.nextRunAt;
      return r;
    };
    const [x, y, z] = await Promise.all([view(a), view(b), view(c)]);
    expect(x.status).toBe(200);
    expect(y.body).toEqual(x.body);
    expect(z.body).toEqual(x.body);
  }
  const listed = (await api(b, "GET", "/nodes")).body.items as any[];
  const ids = await Promise.all([a, b, c].map(nodeIdOf));
  expect(listed.map((n) => n.id).sort()).toEqual([...ids].sort());
  for (const n of listed) expect(n.status).toBe("up");
  expect(listed.find((n) => n.id === ids[2])!.labels).toEqual({ site: "c" });
}, 60_000);

test("50 run-nows spread over the three nodes never run one data source twice at once", async () => {
  const daemons = [a, b, c];
  const accepted: string[] = [];
  const statuses = new Map<number, number>();
  // Ten waves of five (one per source), each request to another node; a wave lands while the
  // previous one's jobs are queued or running, so claims of one source race across nodes.
  for (let wave = 0; wave < 10; wave++) {
    const answers = await Promise.all(sources.map((id, i) => api(daemons[(wave + i) % 3]!, "POST", "/backup-jobs/run-now", { dataSourceId: id, policyId })));
    for (const r of answers) {
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 202) accepted.push(r.body.id);
    }
    await Bun.sleep(150);
  }
  // Accepted, or refused because that source's backup is queued or running: nothing else.
  expect([...statuses.keys()].every((s) => s === 202 || s === 409)).toBe(true);
  expect(accepted.length).toBeGreaterThanOrEqual(5);
  await until(
    "every accepted run-now to finish",
    () => sql(`SELECT count(*) FROM backup_jobs WHERE id IN (${accepted.map((id) => `'${id}'`).join(",")}) AND status IN ('queued','running')`) === "0",
    180_000,
    500,
  );
  const statusesOf = sql(`SELECT DISTINCT status FROM backup_jobs WHERE id IN (${accepted.map((id) => `'${id}'`).join(",")})`).split("\n");
  expect(statusesOf).toEqual(["succeeded"]);
  // More than one node did the work.
  expect(Number(sql(`SELECT count(DISTINCT node_id) FROM backup_jobs WHERE id IN (${accepted.map((id) => `'${id}'`).join(",")})`))).toBeGreaterThanOrEqual(2);
  // Replay the store's log of claims and releases, in the order the store saw them.
  const log = sql("SELECT data_source_id || ' ' || job_id || ' ' || running FROM test_running_log ORDER BY at, seq").split("\n").filter(Boolean);
  const runningOf = new Map<string, string>();
  for (const line of log) {
    const [ds, job, running] = line.split(" ");
    if (running === "true") {
      expect(runningOf.get(ds!) ?? null).toBeNull();
      runningOf.set(ds!, job!);
    } else if (runningOf.get(ds!) === job) runningOf.delete(ds!);
  }
  expect(log.length).toBeGreaterThanOrEqual(accepted.length * 2);
}, 240_000);

test("a source pinned to site=c runs only on node C, whichever node is asked", async () => {
  const pinned = await api(a, "POST", "/data-sources", { name: "pinned", engine: "postgres", host: pg.host, port: pg.port, database: pg.database, runOn: { labels: { site: "c" } } });
  expect(pinned.status).toBe(201);
  expect(pinned.body.runOn).toEqual({ labels: { site: "c" } });
  expect((await api(a, "PUT", `/data-sources/${pinned.body.id}/credentials`, { username: pg.user, password: pg.password })).status).toBe(204);
  expect((await api(b, "POST", "/attachments", { dataSourceId: pinned.body.id, policyId, enabled: true })).status).toBe(201);
  const cId = await nodeIdOf(c);
  for (const d of [a, b, a, b]) {
    const queued = await api(d, "POST", "/backup-jobs/run-now", { dataSourceId: pinned.body.id, policyId });
    expect(queued.status).toBe(202);
    const job = await until(
      "the pinned job to finish",
      async () => {
        const j = (await api(d, "GET", `/backup-jobs/${queued.body.id}`)).body;
        return j.status === "succeeded" || j.status === "failed" ? j : null;
      },
      60_000,
    );
    expect(job.status).toBe("succeeded");
    expect(job.nodeId).toBe(cId);
  }
}, 180_000);

test("a download of a file on C's own disk (the managed local destination is per node) is passed through by A", async () => {
  const managed = await api(a, "POST", "/storage-destinations/managed/ensure");
  expect([200, 201]).toContain(managed.status);
  const onC = await api(a, "POST", "/backup-policies", { name: "managed-on-c", scheduleCron: "0 4 * * *", destinationId: managed.body.id, retention: { keepLast: 5 } });
  expect(onC.status).toBe(201);
  const pinned = (await api(a, "GET", "/data-sources")).body.items.find((s: any) => s.name === "pinned");
  expect((await api(a, "POST", "/attachments", { dataSourceId: pinned.id, policyId: onC.body.id, enabled: true })).status).toBe(201);
  const queued = await api(a, "POST", "/backup-jobs/run-now", { dataSourceId: pinned.id, policyId: onC.body.id });
  expect(queued.status).toBe(202);
  const job = await until(
    "the job on C's disk",
    async () => {
      const j = (await api(a, "GET", `/backup-jobs/${queued.body.id}`)).body;
      return j.status === "succeeded" || j.status === "failed" ? j : null;
    },
    60_000,
  );
  expect(job).toMatchObject({ status: "succeeded", nodeId: await nodeIdOf(c) });
  const link = await api(a, "POST", `/backup-jobs/${job.id}/download-link`, { expiresInSeconds: 300 });
  expect(link.status).toBe(200);
  expect(link.body.url).toStartWith(a.baseUrl);
  // A's own managed directory does not have the file; C's does.
  const res = await fetch(link.body.url);
  expect(res.status).toBe(200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(new Bun.CryptoHasher("sha256").update(bytes).digest("hex")).toBe(job.sha256);
  expect(res.headers.get("content-disposition")).toContain("attachment");
  const filesUnder = (dir: string): string[] =>
    existsSync(dir)
      ? readdirSync(dir, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => e.name)
      : [];
  expect(filesUnder(join(a.dataDir, "managed"))).toEqual([]);
  expect(filesUnder(join(c.dataDir, "managed")).length).toBeGreaterThanOrEqual(1);
}, 120_000);

test("an every-minute schedule fires once per minute, also when the leader is killed and the skewed node takes over", async () => {
  const slots = () => sql(`SELECT scheduled_for FROM backup_jobs WHERE attachment_id = '${everyMinute.attachmentId}' ORDER BY scheduled_for`).split("\n").filter(Boolean).map(Number);
  // The first minute is fired by A, the leader.
  const first = (await until("the first scheduled minute", () => slots()[0], 90_000, 500))!;
  expect(first % 60_000).toBe(0);
  expect(a.logs()).toContain("this node leads the fleet");
  // C leaves cleanly, so the successor can only be B, whose clock is 10 s ahead; then A dies.
  await c.stop("SIGTERM");
  await until("the first minute's job to finish", () => sql(`SELECT status FROM backup_jobs WHERE attachment_id = '${everyMinute.attachmentId}' AND scheduled_for = ${first}`) === "succeeded", 60_000);
  const killedAt = Date.now();
  await a.stop("SIGKILL");
  await until("B to take over", () => b.logs().includes("this node leads the fleet"), LEASE_SECONDS * 1000 + 5_000, 100);
  expect(Date.now() - killedAt).toBeLessThanOrEqual(LEASE_SECONDS * 1000 + 2_000);
  // Two more minutes, fired by B.
  await until("two more scheduled minutes", () => slots().length >= 3 && slots(), 150_000, 1_000);
  // Past the next minute's boundary too, so a late second firing would show.
  const third = first + 2 * 60_000;
  await Bun.sleep(Math.max(0, third + 15_000 - Date.now()));
  const all = slots().filter((s) => s <= third);
  expect(all).toEqual([first, first + 60_000, third]);
  // Only the leader of the moment fired: no node tried a minute another had fired.
  const logs = a.logs() + b.logs() + c.logs();
  const queuedLines = logs.split("\n").filter((l) => l.includes("backup job queued") && l.includes(everyMinute.attachmentId));
  expect(queuedLines.length).toBe(slots().length);
  expect(logs.split("\n").filter((l) => l.includes("scheduled run skipped") && l.includes(everyMinute.attachmentId))).toEqual([]);
}, 360_000);
