import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { keyFingerprint, nodeIdOf, startHeartbeat } from "../../src/fleet/node.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { attach, createPolicy, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { holdTableLock, type PgServer, startPostgres } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Two nodes of one fleet: two apps, each with its own data dir, runner and node labels
 * (`site=a`, `site=b`), over one real PostgreSQL store, sharing the master key and the
 * token secret. They share one queue, and what the queue promises holds across them:
 * a pinned source's jobs (backups, restores into it) run only on the node with its labels;
 * `runner.maxConcurrentPerOrg` counts the whole fleet's running jobs; one data source never
 * runs two jobs at once; a row another node holds is skipped, never waited for. And the
 * shared store asks every SQLite source for its node (`runOn`).
 *
 * A process serves one store engine (src/db/schema.ts binds the tables once), so this file
 * runs in a process of its own: fleet-claims.test.ts starts it with `bun test`, whichever
 * store the rest of the suite runs on. Its name keeps it out of the suite's own run.
 */
let pg: PgServer;
let a: Harness;
let b: Harness;
let storeUrl: string;
const shared = tempDir("snapdb-fleet-claims");
const stops: (() => Promise<void>)[] = [];
const PER_ORG = 2;

const nodeOf = (h: Harness) => nodeIdOf(h.dataDir);
const both = () => Promise.all([a.runner.wake(), b.runner.wake()]);
/** Both nodes take work (whatever an earlier test left stopped). */
const bothStarted = async () => {
  for (const h of [a, b]) if (!h.runner.isRunning) await h.runner.start();
};
const psql = (q: string) => pg.psql(q, "snapdb_fleet_claims").trim();

/** A PostgreSQL database of its own with a table `t`, owned by the test role. */
function sourceDatabase(name: string): void {
  pg.psql(`CREATE DATABASE ${name} OWNER ${pg.user}`);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g;`, name);
}

async function pgSource(h: Harness, token: string, database: string, policyId: string) {
  const source = await must(h, token, "POST", "/data-sources", { name: database, engine: "postgres", host: pg.host, port: pg.port, database }, 201);
  await must(h, token, "PUT", `/data-sources/${source.id}/credentials`, { username: pg.user, password: pg.password }, 204);
  await attach(h, token, source.id, policyId);
  return source;
}

async function destinationAndPolicy(token: string) {
  const dest = await must(a, token, "POST", "/storage-destinations", { kind: "local", name: `disk-${crypto.randomUUID().slice(0, 6)}`, path: join(shared.path, "backups") }, 201);
  return createPolicy(a, token, dest.id);
}

const runNow = (h: Harness, token: string, dataSourceId: string) => must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId }, 202);

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE DATABASE snapdb_fleet_claims OWNER ${pg.user}`);
  storeUrl = `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/snapdb_fleet_claims`;
  for (const db of ["fx1", "fx2", "fx3", "fy1", "fz1", "fw1", "fany"]) sourceDatabase(db);
  mkdirSync(join(shared.path, "backups"));
  mkdirSync(join(shared.path, "sqlite"));
  const env = {
    SNAPDB_STORE_URL: storeUrl,
    SNAPDB_MASTER_KEY_FILE: join(shared.path, "master.key"),
    SNAPDB_JWT_SECRET: `fleet-claims-${crypto.randomUUID()}`,
    SNAPDB_ALLOWED_SQLITE_ROOTS: join(shared.path, "sqlite"),
    SNAPDB_ALLOWED_LOCAL_ROOTS: join(shared.path, "backups"),
    SNAPDB_RUNNER_MAX_CONCURRENT: "4",
    SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: String(PER_ORG),
  };
  a = await createHarness({ ...env, SNAPDB_NODE_LABELS: "site=a,disk=ssd" });
  b = await createHarness({ ...env, SNAPDB_NODE_LABELS: "site=b" });
  // What `snapdb serve` does for each node: register it and keep its heartbeat.
  for (const h of [a, b]) {
    stops.push(await startHeartbeat(h.store.db, { id: nodeOf(h), labels: h.config.node.labels, masterKeyFingerprint: keyFingerprint(h.master), url: "http://127.0.0.1:9" }, 1000, silentLogger));
  }
}, 180_000);

afterAll(async () => {
  await Promise.all([a?.runner.stop(5000), b?.runner.stop(5000)]);
  for (const stop of stops) await stop().catch(() => {});
  a?.close();
  b?.close();
  await pg?.stop();
  shared.cleanup();
});

test("a SQLite source on the shared store must name its node (runOn): 400 at /runOn on create and on unpinning", async () => {
  const token = await a.token("org_must_pin");
  const body = { name: "file", engine: "sqlite", path: join(shared.path, "sqlite", "x.db") };
  const bare = await a.call("POST", "/data-sources", { token, body });
  expect(bare.status).toBe(400);
  expect(bare.body.code).toBe("INVALID_INPUT");
  expect(bare.body.details).toEqual([{ path: "/runOn", message: expect.stringContaining("store.url") }]);
  const pinned = await must(a, token, "POST", "/data-sources", { ...body, runOn: { labels: { host: "db1" } } }, 201);
  const unpin = await b.call("PATCH", `/data-sources/${pinned.id}`, { token, body: { runOn: null } });
  expect(unpin.status).toBe(400);
  expect(unpin.body.details.map((d: { path: string }) => d.path)).toEqual(["/runOn"]);
  // Any later change of the source must keep it pinned; a network source runs anywhere.
  expect((await b.call("PATCH", `/data-sources/${pinned.id}`, { token, body: { name: "file-2" } })).status).toBe(200);
  expect((await must(b, token, "GET", `/data-sources/${pinned.id}`)).runOn).toEqual({ labels: { host: "db1" } });
  expect((await a.call("POST", "/data-sources", { token, body: { name: "net", engine: "postgres", host: "db.internal", database: "app" } })).status).toBe(201);
});

describe("two nodes, one queue", () => {
  test("a pinned source's backups and restores run only on the node with its labels; unpinned work runs anywhere", async () => {
    const token = await a.token("org_pin");
    const policy = await destinationAndPolicy(token);
    const file = (name: string) => {
      const path = join(shared.path, "sqlite", name);
      const db = new Database(path);
      db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
      db.run("INSERT INTO notes (body) VALUES ('on one host')");
      db.close();
      return path;
    };
    const onA = await must(a, token, "POST", "/data-sources", { name: "on-a", engine: "sqlite", path: file("a.db"), runOn: { labels: { site: "a" } } }, 201);
    const onB = await must(a, token, "POST", "/data-sources", { name: "on-b", engine: "sqlite", path: file("b.db"), runOn: { labels: { site: "b" } } }, 201);
    // Labels the node lacks, or a value that differs, keep a job off it: nobody has disk=hdd.
    const nowhere = await must(a, token, "POST", "/data-sources", { name: "nowhere", engine: "sqlite", path: file("c.db"), runOn: { labels: { site: "a", disk: "hdd" } } }, 201);
    const anywhere = await pgSource(a, token, "fany", policy.id);
    for (const s of [onA, onB, nowhere]) await attach(a, token, s.id, policy.id);

    // Only node b takes work: the job pinned to a stays queued however often b looks.
    await b.runner.start();
    const jobs = { onA: await runNow(a, token, onA.id), onB: await runNow(b, token, onB.id), nowhere: await runNow(a, token, nowhere.id), anywhere: await runNow(a, token, anywhere.id) };
    await b.runner.wake();
    const doneOnB = await waitForStatus(b, token, `/backup-jobs/${jobs.onB.id}`);
    const anyDone = await waitForStatus(b, token, `/backup-jobs/${jobs.anywhere.id}`);
    expect([doneOnB.status, anyDone.status]).toEqual(["succeeded", "succeeded"]);
    expect([doneOnB.nodeId, anyDone.nodeId]).toEqual([nodeOf(b), nodeOf(b)]);
    for (let i = 0; i < 5; i++) {
      await b.runner.wake();
      await Bun.sleep(100);
    }
    for (const id of [jobs.onA.id, jobs.nowhere.id]) expect((await must(b, token, "GET", `/backup-jobs/${id}`)).status).toBe("queued");

    // Node a comes up: it runs its own, never the one no node matches.
    await a.runner.start();
    const doneOnA = await waitForStatus(a, token, `/backup-jobs/${jobs.onA.id}`);
    expect(doneOnA).toMatchObject({ status: "succeeded", nodeId: nodeOf(a) });
    await both();
    await Bun.sleep(300);
    expect((await must(a, token, "GET", `/backup-jobs/${jobs.nowhere.id}`)).status).toBe("queued");
    await must(a, token, "POST", `/backup-jobs/${jobs.nowhere.id}/cancel`, undefined, 202);

    // A restore into the source pinned to a: queued while only b runs, run by a.
    await a.runner.stop(5000);
    const restore = await must(b, token, "POST", "/restores", { backupJobId: doneOnA.id, clean: true }, 202);
    for (let i = 0; i < 5; i++) {
      await b.runner.wake();
      await Bun.sleep(100);
    }
    expect(await must(b, token, "GET", `/restores/${restore.id}`)).toMatchObject({ status: "queued", nodeId: null });
    await a.runner.start();
    expect(await waitForStatus(a, token, `/restores/${restore.id}`)).toMatchObject({ status: "succeeded", nodeId: nodeOf(a) });
  }, 120_000);

  test("runner.maxConcurrentPerOrg counts the whole fleet: two of the org run, the third waits whichever node looks", async () => {
    const tokenX = await a.token("org_limit_x");
    const tokenY = await a.token("org_limit_y");
    const policyX = await destinationAndPolicy(tokenX);
    const policyY = await destinationAndPolicy(tokenY);
    const xs = [await pgSource(a, tokenX, "fx1", policyX.id), await pgSource(a, tokenX, "fx2", policyX.id), await pgSource(a, tokenX, "fx3", policyX.id)];
    const y = await pgSource(a, tokenY, "fy1", policyY.id);
    // Every dump waits on its table while the test holds it: the jobs stay running.
    const releases = await Promise.all(["fx1", "fx2", "fx3", "fy1"].map((db) => holdTableLock(pg, db, "t", "ACCESS EXCLUSIVE")));
    try {
      // All queued first, then both nodes look at once: their claims race for the org's slots.
      await Promise.all([a.runner.stop(5000), b.runner.stop(5000)]);
      const jobs = [];
      for (const [i, s] of xs.entries()) jobs.push(await runNow(i % 2 ? b : a, tokenX, s.id));
      const yJob = await runNow(a, tokenY, y.id);
      await Promise.all([a.runner.start(), b.runner.start()]);
      const runningOf = (org: string) =>
        Number(psql(`SELECT (SELECT count(*) FROM backup_jobs WHERE org_id = '${org}' AND status = 'running') + (SELECT count(*) FROM restores WHERE org_id = '${org}' AND status = 'running')`));
      let most = 0;
      for (let i = 0; i < 15; i++) {
        await both();
        most = Math.max(most, runningOf("org_limit_x"));
        await Bun.sleep(100);
      }
      expect(most).toBe(PER_ORG);
      expect(runningOf("org_limit_x")).toBe(PER_ORG);
      const statuses = await Promise.all(jobs.map(async (j) => (await must(a, tokenX, "GET", `/backup-jobs/${j.id}`)).status));
      expect(statuses.sort()).toEqual(["queued", "running", "running"]);
      // The limit is per organisation: the other one's job runs meanwhile.
      expect((await must(a, tokenY, "GET", `/backup-jobs/${yJob.id}`)).status).toBe("running");
      // GET /nodes sees the same: three jobs running in the fleet, spread over its nodes.
      const listed = (await must(b, tokenY, "GET", "/nodes")).items;
      expect(listed.map((n: { id: string }) => n.id).sort()).toEqual([nodeOf(a), nodeOf(b)].sort());
      expect(listed.every((n: { status: string }) => n.status === "up")).toBe(true);
      expect(listed.reduce((sum: number, n: { running: number }) => sum + n.running, 0)).toBe(3);
      expect(listed.find((n: { id: string }) => n.id === nodeOf(a)).labels).toEqual({ site: "a", disk: "ssd" });

      for (const release of releases) await release();
      const done = await Promise.all(jobs.map((j) => waitForStatus(a, tokenX, `/backup-jobs/${j.id}`)));
      expect(done.map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
      // The third started only once one of the first two had finished.
      const [first, second, third] = done.sort((p, q) => Date.parse(p.startedAt) - Date.parse(q.startedAt));
      expect(Date.parse(third.startedAt)).toBeGreaterThanOrEqual(Math.min(Date.parse(first.finishedAt), Date.parse(second.finishedAt)));
    } finally {
      for (const release of releases) await release();
    }
  }, 120_000);

  test("one data source runs one job at a time across the nodes: a restore into it waits for its running backup", async () => {
    const token = await a.token("org_exclusive");
    const policy = await destinationAndPolicy(token);
    const z = await pgSource(a, token, "fz1", policy.id);
    await bothStarted();
    const earlier = await waitForStatus(a, token, `/backup-jobs/${(await runNow(a, token, z.id)).id}`);
    expect(earlier.status).toBe("succeeded");
    const release = await holdTableLock(pg, "fz1", "t", "ACCESS EXCLUSIVE");
    try {
      const backup = await runNow(b, token, z.id);
      await waitForStatus(a, token, `/backup-jobs/${backup.id}`, ["running"]);
      const restore = await must(a, token, "POST", "/restores", { backupJobId: earlier.id, clean: true }, 202);
      for (let i = 0; i < 10; i++) {
        await both();
        await Bun.sleep(100);
      }
      expect((await must(b, token, "GET", `/restores/${restore.id}`)).status).toBe("queued");
      await release();
      const [backupDone, restoreDone] = [await waitForStatus(a, token, `/backup-jobs/${backup.id}`), await waitForStatus(b, token, `/restores/${restore.id}`)];
      expect([backupDone.status, restoreDone.status]).toEqual(["succeeded", "succeeded"]);
      expect(Date.parse(restoreDone.startedAt)).toBeGreaterThanOrEqual(Date.parse(backupDone.finishedAt));
    } finally {
      await release();
    }
  }, 120_000);

  test("a queued row another node holds is skipped, not waited for; it runs once let go", async () => {
    const token = await a.token("org_skip");
    const policy = await destinationAndPolicy(token);
    const w = await pgSource(a, token, "fw1", policy.id);
    await bothStarted();
    const earlier = await waitForStatus(a, token, `/backup-jobs/${(await runNow(a, token, w.id)).id}`);
    await Promise.all([a.runner.stop(5000), b.runner.stop(5000)]);
    const job = await runNow(a, token, w.id);
    // Another node's claim in progress: its transaction holds the job row.
    const other = new SQL({ url: storeUrl, max: 1 });
    const release = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const holding = other.begin(async (tx) => {
      await tx`SELECT id FROM backup_jobs WHERE id = ${job.id} FOR UPDATE`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    try {
      const started = await Promise.race([a.runner.start().then(() => "looked" as const), Bun.sleep(5000).then(() => "blocked" as const)]);
      const waiting = psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'snapdb_fleet_claims' AND wait_event_type = 'Lock'");
      expect({ started, waiting }).toEqual({ started: "looked", waiting: "0" });
      expect((await must(a, token, "GET", `/backup-jobs/${job.id}`)).status).toBe("queued");
    } finally {
      release.resolve();
      await holding;
      await other.close();
    }
    await a.runner.wake();
    expect(await waitForStatus(a, token, `/backup-jobs/${job.id}`)).toMatchObject({ status: "succeeded", nodeId: nodeOf(a) });

    // Restores alike.
    await a.runner.stop(5000);
    const restore = await must(a, token, "POST", "/restores", { backupJobId: earlier.id, clean: true }, 202);
    const other2 = new SQL({ url: storeUrl, max: 1 });
    const release2 = Promise.withResolvers<void>();
    const locked2 = Promise.withResolvers<void>();
    const holding2 = other2.begin(async (tx) => {
      await tx`SELECT id FROM restores WHERE id = ${restore.id} FOR UPDATE`;
      locked2.resolve();
      await release2.promise;
    });
    await locked2.promise;
    try {
      const started = await Promise.race([a.runner.start().then(() => "looked" as const), Bun.sleep(5000).then(() => "blocked" as const)]);
      expect(started).toBe("looked");
      expect((await must(a, token, "GET", `/restores/${restore.id}`)).status).toBe("queued");
    } finally {
      release2.resolve();
      await holding2;
      await other2.close();
    }
    await a.runner.wake();
    expect(await waitForStatus(a, token, `/restores/${restore.id}`)).toMatchObject({ status: "succeeded", nodeId: nodeOf(a) });
  }, 120_000);
});

describe("restore plans on two nodes", () => {
  test("run-nows of one plan sent to both nodes at once queue exactly one run; the others are 409", async () => {
    const token = await a.token("org_plan_race");
    await Promise.all([a.runner.stop(5000), b.runner.stop(5000)]);
    const source = await must(a, token, "POST", "/data-sources", { name: "plan-race", engine: "postgres", host: pg.host, port: pg.port, database: "fx1" }, 201);
    const plan = await must(
      a,
      token,
      "POST",
      "/restore-plans",
      { name: "race", dataSourceId: source.id, mode: "drill", scheduleCron: "0 4 1 1 *", enabled: false, target: { dataSourceId: source.id } },
      201,
    );
    // Several rounds: a lost race shows as two queued runs in any one of them.
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? b : a).call("POST", `/restore-plans/${plan.id}/run-now`, { token })));
      const statuses = answers.map((r) => r.status).sort();
      expect({ round, statuses }).toEqual({ round, statuses: [202, 409, 409, 409, 409, 409, 409, 409] });
      const queued = psql(`SELECT count(*) FROM restores WHERE plan_id = '${plan.id}' AND status = 'queued'`);
      expect({ round, queued }).toEqual({ round, queued: "1" });
      const run = answers.find((r) => r.status === 202)!.body;
      await must(a, token, "POST", `/restores/${run.id}/cancel`, undefined, 202);
      expect((await must(a, token, "GET", `/restores/${run.id}`)).status).toBe("canceled");
    }
  }, 120_000);
});
