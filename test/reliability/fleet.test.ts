import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { type PgServer, startPostgres } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Two daemons on one PostgreSQL store (fleet mode), each with its own data dir, sharing the
 * master key file and the token signing secret: one API, one queue, and a job whose node is
 * killed mid-backup is retried by the other node once the lease runs out.
 */
let pg: PgServer;
let a: Daemon;
let b: Daemon;
const shared = tempDir("snapdb-fleet");
const ORG = "org_fleet";
const LEASE_SECONDS = 5;

/** The daemon API as a client sees it, each answer held to the served document. */
const clients = new Map<string, DaemonApi>();
const api = (d: Daemon, token: string, method: string, path: string, body?: unknown) => {
  const key = `${d.baseUrl} ${token}`;
  if (!clients.has(key)) clients.set(key, new DaemonApi(d.baseUrl, token));
  return clients.get(key)!.call(method, path, body);
};

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE DATABASE snapdb_fleet OWNER ${pg.user}`);
  // A source big enough that its dump is still running when its node is killed.
  pg.psql("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b FROM generate_series(1, 1500000) g", pg.database);
  pg.psql(`ALTER TABLE big OWNER TO ${pg.user}`, pg.database);
  const storeUrl = `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/snapdb_fleet`;
  mkdirSync(join(shared.path, "backups"), { recursive: true });
  const env = {
    SNAPDB_STORE_URL: storeUrl,
    SNAPDB_MASTER_KEY_FILE: join(shared.path, "master.key"),
    SNAPDB_JWT_SECRET: `fleet-secret-${crypto.randomUUID()}`,
    SNAPDB_RUNNER_LEASE_SECONDS: String(LEASE_SECONDS),
    SNAPDB_ALLOWED_LOCAL_ROOTS: shared.path,
  };
  a = await startDaemon({ env });
  b = await startDaemon({ env });
}, 180_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await pg?.stop();
  shared.cleanup();
});

test("one API: what one node writes, the other answers; both are registered nodes", async () => {
  const token = await a.token(ORG);
  const created = await api(a, token, "POST", "/data-sources", { name: "fleet-pg", engine: "postgres", host: pg.host, port: pg.port, database: pg.database });
  expect(created.status).toBe(201);
  const listed = await api(b, token, "GET", "/data-sources");
  expect(listed.status).toBe(200);
  expect(listed.body.items.map((s: any) => s.id)).toEqual([created.body.id]);
  // The token minted by one node's CLI is good on the other: they share the signing secret.
  expect((await api(b, token, "GET", `/data-sources/${created.body.id}`)).body.name).toBe("fleet-pg");
  const up = pg.psql("SELECT count(*) FROM nodes WHERE stopped_at IS NULL", "snapdb_fleet").trim();
  expect(up).toBe("2");
});

test("kill -9 the node running a backup: after the lease the other node retries it and it succeeds", async () => {
  const token = await b.token(ORG);
  const dest = await api(b, token, "POST", "/storage-destinations", { name: "shared", kind: "local", path: join(shared.path, "backups") });
  expect(dest.status).toBe(201);
  const policy = await api(a, token, "POST", "/backup-policies", {
    name: "fleet-nightly",
    scheduleCron: "0 3 * * *",
    destinationId: dest.body.id,
    retries: 1,
    retention: { keepLast: 5 },
  });
  expect(policy.status).toBe(201);
  const source = (await api(a, token, "GET", "/data-sources")).body.items[0];
  expect((await api(a, token, "PUT", `/data-sources/${source.id}/credentials`, { username: pg.user, password: pg.password })).status).toBe(204);
  expect((await api(b, token, "POST", "/attachments", { dataSourceId: source.id, policyId: policy.body.id, enabled: true })).status).toBe(201);

  const queued = await api(a, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id });
  expect(queued.status).toBe(202);
  const jobId = queued.body.id;
  // Whichever node claims it: wait until it runs, then kill that node without a chance to clean up.
  let runningOn = "";
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && !runningOn; await Bun.sleep(20)) {
    runningOn = pg.psql(`SELECT coalesce(node_id, '') FROM backup_jobs WHERE id = '${jobId}' AND status = 'running'`, "snapdb_fleet").trim();
  }
  expect(runningOn).toStartWith("node_");
  const nodeOf = (d: Daemon) =>
    Bun.file(join(d.dataDir, "node-id"))
      .text()
      .then((t) => t.trim());
  const [victim, survivor] = (await nodeOf(a)) === runningOn ? [a, b] : [b, a];
  const killedAt = Date.now();
  await victim.stop("SIGKILL");

  let job: any = null;
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; await Bun.sleep(250)) {
    job = (await api(survivor, token, "GET", `/backup-jobs/${jobId}`)).body;
    if (job.status === "succeeded" || job.status === "failed") break;
  }
  expect(job).toMatchObject({ status: "succeeded", attempt: 2 });
  const survivorId = await nodeOf(survivor);
  expect(pg.psql(`SELECT node_id FROM backup_jobs WHERE id = '${jobId}'`, "snapdb_fleet").trim()).toBe(survivorId);
  // Not before the lease ran out: a live node's job is never taken from it.
  const retriedAt = Number(pg.psql(`SELECT started_at FROM backup_jobs WHERE id = '${jobId}'`, "snapdb_fleet").trim());
  expect(retriedAt - killedAt).toBeGreaterThanOrEqual((LEASE_SECONDS - 1) * 1000);
  const audit = (await api(survivor, token, "GET", `/audit-log?targetId=${jobId}`)).body.items.map((e: any) => [e.action, e.metadata?.error?.code ?? null]);
  expect(audit).toContainEqual(["backup_job.retry_scheduled", "INTERRUPTED"]);
  expect(audit.filter(([action]: string[]) => action === "backup_job.completed")).toHaveLength(1);
}, 180_000);
