/**
 * The runner's operator limits, against the real daemon and a real PostgreSQL:
 * - runner.maxConcurrentPerOrg: one org with long backups cannot hold every slot, and orgs
 *   with queued work take turns;
 * - runner.maxTimeoutSeconds: a ceiling on every policy's timeoutSeconds (refused above it at
 *   create/update, clamped at run time for policies written before it was lowered);
 * - runner.restoreTimeoutSeconds: a restore running longer is stopped and fails TIMEOUT.
 * "Long" is made deterministic with a table lock held by another session: pg_dump (or
 * pg_restore --clean) waits on it until the test lets go.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

let pg: PgServer;
const LOCKED_DB = "appdb";
const FAST_DB = "fastdb";

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE DATABASE ${FAST_DB} OWNER ${pg.user}`);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 100) g;`, LOCKED_DB);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;`, FAST_DB);
}, 60_000);

afterAll(async () => {
  await pg?.stop();
});

const creds = () => ({ username: pg.user, password: pg.password });

/** An org's API client with its managed destination and one policy attached to `n` sources of `database`. */
async function orgWith(daemon: Daemon, org: string) {
  const api = new DaemonApi(daemon.baseUrl, await daemon.token(org));
  const managed = await api.managedDestination();
  const policy = await api.createPolicy(managed.id);
  const source = async (database: string) => {
    const s = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database }, creds());
    await api.attach(s.id, policy.id);
    return s.id as string;
  };
  return { api, policy, managed, source };
}

describe("runner.maxConcurrentPerOrg", () => {
  test("an org with two long backups holds one slot; another org's run-now starts at once", async () => {
    const daemon = await startDaemon({ env: { SNAPDB_RUNNER_MAX_CONCURRENT: "2", SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "1" } });
    const release = await holdTableLock(pg, LOCKED_DB, "big", "ACCESS EXCLUSIVE");
    try {
      const a = await orgWith(daemon, "org_hog");
      const b = await orgWith(daemon, "org_other");
      const [a1, a2] = [await a.source(LOCKED_DB), await a.source(LOCKED_DB)];
      const b1 = await b.source(FAST_DB);
      const jobA1 = await a.api.runNow(a1);
      const jobA2 = await a.api.runNow(a2);
      await a.api.waitForStatus(`/backup-jobs/${jobA1.id}`, ["running"], 10_000);

      const started = Date.now();
      const jobB = await b.api.runNow(b1);
      const doneB = await b.api.waitForStatus(`/backup-jobs/${jobB.id}`, undefined, 10_000);
      expect(doneB.status).toBe("succeeded");
      expect(Date.now() - started).toBeLessThan(10_000);
      // Org A's first backup still waits on the lock; its second was never let in beside it.
      expect((await a.api.must("GET", `/backup-jobs/${jobA1.id}`)).status).toBe("running");
      expect((await a.api.must("GET", `/backup-jobs/${jobA2.id}`)).status).toBe("queued");

      await release();
      for (const job of [jobA1, jobA2]) expect((await a.api.waitForStatus(`/backup-jobs/${job.id}`)).status).toBe("succeeded");
    } finally {
      await release();
      await daemon.stop();
    }
  }, 90_000);

  test("when a slot frees, orgs with queued work take turns (oldest job first within an org)", async () => {
    const daemon = await startDaemon({ env: { SNAPDB_RUNNER_MAX_CONCURRENT: "1", SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "1" } });
    const release = await holdTableLock(pg, LOCKED_DB, "big", "ACCESS EXCLUSIVE");
    try {
      const a = await orgWith(daemon, "org_a");
      const b = await orgWith(daemon, "org_b");
      const [sa1, sa2, sa3] = [await a.source(LOCKED_DB), await a.source(FAST_DB), await a.source(FAST_DB)];
      const [sb1, sb2] = [await b.source(FAST_DB), await b.source(FAST_DB)];
      // Org A queues three jobs (the first blocks the only slot), then org B queues two.
      const first = await a.api.runNow(sa1);
      await a.api.waitForStatus(`/backup-jobs/${first.id}`, ["running"], 10_000);
      const a2 = await a.api.runNow(sa2);
      const a3 = await a.api.runNow(sa3);
      const b1 = await b.api.runNow(sb1);
      const b2 = await b.api.runNow(sb2);
      await release();
      const finished = new Map<string, any>();
      for (const [api, job] of [
        [a.api, first],
        [a.api, a2],
        [a.api, a3],
        [b.api, b1],
        [b.api, b2],
      ] as const) {
        const done = await api.waitForStatus(`/backup-jobs/${job.id}`);
        expect(done.status).toBe("succeeded");
        finished.set(job.id, done);
      }
      const names = new Map([
        [first.id, "a1"],
        [a2.id, "a2"],
        [a3.id, "a3"],
        [b1.id, "b1"],
        [b2.id, "b2"],
      ]);
      const order = [...finished.values()].sort((x, y) => Date.parse(x.startedAt) - Date.parse(y.startedAt)).map((j) => names.get(j.id));
      expect(order).toEqual(["a1", "b1", "a2", "b2", "a3"]);
    } finally {
      await release();
      await daemon.stop();
    }
  }, 90_000);
});

describe("runner.maxTimeoutSeconds and runner.restoreTimeoutSeconds", () => {
  test("a policy above the ceiling is refused; one written before the ceiling was lowered is cut at it; a blocked restore fails TIMEOUT", async () => {
    const dir = tempDir("snapdb-limits");
    let daemon: Daemon | null = await startDaemon({ dataDir: dir.path });
    let release: (() => Promise<void>) | null = null;
    try {
      // With the default ceiling (86400): a 600 s policy, and one good backup to restore later.
      const org = await orgWith(daemon, "org_limits");
      const slowSource = await org.source(LOCKED_DB);
      const fastSource = await org.source(FAST_DB);
      const backup = await org.api.backupNow(fastSource);
      expect(backup.status).toBe("succeeded");
      const over = await org.api.call("POST", "/backup-policies", { name: "too-long", scheduleCron: "0 3 * * *", destinationId: org.managed.id, retention: { keepLast: 1 }, timeoutSeconds: 86_401 });
      expect(over.status).toBe(400);
      expect(over.body.code).toBe("INVALID_INPUT");
      expect(over.body.details).toEqual([{ path: "/timeoutSeconds", message: expect.stringContaining("runner.maxTimeoutSeconds (86400)") }]);
      await daemon.stop();

      // The operator lowers both limits to 2 s and restarts.
      daemon = await startDaemon({ dataDir: dir.path, env: { SNAPDB_RUNNER_MAX_TIMEOUT_SECONDS: "2", SNAPDB_RUNNER_RESTORE_TIMEOUT_SECONDS: "2" } });
      const api = new DaemonApi(daemon.baseUrl, await daemon.token("org_limits"));
      const refused = await api.call("POST", "/backup-policies", { name: "p600", scheduleCron: "0 3 * * *", destinationId: org.managed.id, retention: { keepLast: 1 }, timeoutSeconds: 600 });
      expect(refused.status).toBe(400);
      expect(refused.body.details[0].path).toBe("/timeoutSeconds");
      expect(refused.body.message).toContain("runner.maxTimeoutSeconds (2)");
      const patch = await api.call("PATCH", `/backup-policies/${org.policy.id}`, { timeoutSeconds: 600 });
      expect(patch.status).toBe(400);
      expect(patch.body.details[0].path).toBe("/timeoutSeconds");
      // Other fields of a policy above the ceiling can still be changed.
      expect((await api.call("PATCH", `/backup-policies/${org.policy.id}`, { retries: 0 })).status).toBe(200);
      expect((await api.must("GET", `/backup-policies/${org.policy.id}`)).timeoutSeconds).toBe(600);

      release = await holdTableLock(pg, LOCKED_DB, "big", "ACCESS EXCLUSIVE");
      const cut = await api.backupNow(slowSource, undefined, 20_000);
      expect(cut.status).toBe("failed");
      expect(cut.error.code).toBe("TIMEOUT");
      expect(cut.error.message).toContain("runner.maxTimeoutSeconds (2)");
      expect(Date.parse(cut.finishedAt) - Date.parse(cut.startedAt)).toBeGreaterThanOrEqual(2000);
      await release();

      // pg_restore --clean waits at its first DROP while a reader holds the table.
      release = await holdTableLock(pg, FAST_DB, "t", "ACCESS SHARE");
      const queued = await api.must("POST", "/restores", { backupJobId: backup.id, clean: true }, 202);
      const restore = await api.waitForStatus(`/restores/${queued.id}`, undefined, 20_000);
      expect(restore.status).toBe("failed");
      expect(restore.error.code).toBe("TIMEOUT");
      expect(restore.error.message).toContain("runner.restoreTimeoutSeconds (2)");
      expect(restore.error.message).toContain("rolled it back");
      expect(Date.parse(restore.finishedAt) - Date.parse(restore.startedAt)).toBeGreaterThanOrEqual(2000);
      await release();
      expect(pg.psql("SELECT count(*) FROM t;", FAST_DB).trim()).toBe("100");
    } finally {
      await release?.();
      await daemon?.stop();
      dir.cleanup();
    }
  }, 120_000);
});
