import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { targetOf } from "../../src/modules/data-sources/credentials.ts";
import { startRetentionSweep } from "../../src/runner/create.ts";
import { createWalArchiver } from "../../src/runner/wal-archiver.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { holdTableLock } from "../helpers/postgres.ts";
import { storeServer, storeServerSql, testStore } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * A shared PostgreSQL store can be gone for a moment (a restart, a failover, the network),
 * which an embedded SQLite file never is. The runner's background looks at the queue then
 * fail: they are logged and retried, never an unhandled rejection (which ends a Bun process,
 * the daemon and its running backups with it). Only on the PostgreSQL leg of the matrix: there
 * is no outage to make of a SQLite file.
 */
describe.skipIf(testStore() !== "postgres")("the PostgreSQL store gone for a moment", () => {
  const dir = tempDir("snapdb-outage");
  let h: Harness;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
    process.on("unhandledRejection", onUnhandled);
    await h.runner.start();
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    await h.runner.stop(1000);
    h.close();
    dir.cleanup();
  });

  const database = () => new URL(h.config.store.url).pathname.slice(1);

  /** The store refuses connections (those open are ended) while `fn` runs. */
  async function outage(fn: () => Promise<void>): Promise<void> {
    await storeServerSql(
      `ALTER DATABASE ${database()} ALLOW_CONNECTIONS false;
       SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database()}';`,
    );
    try {
      await fn();
    } finally {
      await storeServerSql(`ALTER DATABASE ${database()} ALLOW_CONNECTIONS true;`);
    }
  }

  test("the runner's background wakes log the failure and carry on; the next backup runs", async () => {
    const token = await h.token("org_outage");
    const managed = await managedDestination(h, token);
    const policy = await createPolicy(h, token, managed.id);
    const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(dir.path) });
    await attach(h, token, source.id, policy.id);

    await outage(async () => {
      // As the scheduler and finished jobs do: a wake on the next turn of the event loop.
      for (let i = 0; i < 3; i++) {
        h.runner.wakeSoon();
        await Bun.sleep(300);
      }
      await Bun.sleep(500);
    });
    expect(unhandled.map(String)).toEqual([]);
    expect(h.logLines.some((l) => l.includes("could not look at the queue; the next wake retries"))).toBe(true);

    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
  }, 60_000);

  test("the WAL archiver's, the retention sweep's and the notification sender's background passes log the failure and carry on", async () => {
    const lines: string[] = [];
    const logger = createLogger("debug", {}, (line) => lines.push(line));
    const secrets = new SecretBox(h.master);
    const archiver = createWalArchiver({ db: h.store.db, config: h.config, secrets, storage: h.storage, logger, targetOf: (row) => targetOf(row, secrets), intervals: { syncIntervalMs: 100 } });
    let stopSweep: (() => void) | null = null;
    await h.notifications.sender.start();
    try {
      await outage(async () => {
        archiver.start();
        stopSweep = startRetentionSweep({ db: h.store.db, storage: h.storage, logger }, 100);
        await Bun.sleep(1500); // the notification sender polls every second
      });
      expect(unhandled.map(String)).toEqual([]);
      expect(lines.some((l) => l.includes("could not read the physical attachments"))).toBe(true);
      expect(lines.some((l) => l.includes("retention sweep failed"))).toBe(true);
      expect(h.logLines.some((l) => l.includes("could not look for due notifications"))).toBe(true);
    } finally {
      (stopSweep as (() => void) | null)?.();
      await archiver.stop();
      await h.notifications.stop();
    }
  }, 60_000);

  /**
   * A PostgreSQL source on a database of its own on the store's server (which stays up), and a
   * lock on its table: pg_dump waits while it is held, so the job is reliably running.
   */
  let lockable: Promise<{ id: string }> | null = null;
  function lockableSource(token: string): Promise<{ id: string }> {
    lockable ??= (async () => {
      const pg = await storeServer();
      pg.psql(`CREATE DATABASE outage_src OWNER ${pg.user};`);
      pg.psql(`SET ROLE ${pg.user}; CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);`, "outage_src");
      const managed = await managedDestination(h, token);
      const policy = await createPolicy(h, token, managed.id);
      const source = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "outage_src" }, { username: pg.user, password: pg.password });
      await attach(h, token, source.id, policy.id);
      return source;
    })();
    return lockable;
  }
  const lockTable = async () => holdTableLock(await storeServer(), "outage_src", "t", "ACCESS EXCLUSIVE");

  test("a backup running through the outage misses progress writes, then finishes", async () => {
    const token = await h.token("org_outage");
    const source = await lockableSource(token);
    const release = await lockTable();
    try {
      const queued = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
      await waitForStatus(h, token, `/backup-jobs/${queued.id}`, ["running"]);
      await outage(() => Bun.sleep(2500)); // the runner flushes progress every second
      await release();
      const done = await waitForStatus(h, token, `/backup-jobs/${queued.id}`);
      expect(done.status).toBe("succeeded");
      expect(unhandled.map(String)).toEqual([]);
    } finally {
      await release();
    }
  }, 60_000);

  test("a backup that ends while the store is gone: logged, its row left to its lease (then retried), the daemon goes on", async () => {
    const token = await h.token("org_outage");
    const source = await lockableSource(token);
    const release = await lockTable();
    try {
      const queued = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
      await waitForStatus(h, token, `/backup-jobs/${queued.id}`, ["running"]);
      await outage(async () => {
        await release(); // pg_dump goes on and the job ends: nothing of it can be written now
        await Bun.sleep(2000);
      });
      expect(unhandled.map(String)).toEqual([]);
      expect(h.logLines.some((l) => l.includes("could not record how a backup ended"))).toBe(true);
      const row = await must(h, token, "GET", `/backup-jobs/${queued.id}`);
      expect(row.status).toBe("running"); // until its lease runs out: then the reaper or the next start retries it
      // The runner itself goes on: another organisation's backup runs. (This one's slot,
      // runner.maxConcurrentPerOrg = 1 counted over the fleet, is held by the row until its lease ends.)
      const otherOrg = await h.token("org_outage_other");
      const other = await createSource(h, otherOrg, { engine: "sqlite", path: smallSqlite(dir.path) });
      await attach(h, otherOrg, other.id, (await createPolicy(h, otherOrg, (await managedDestination(h, otherOrg)).id)).id);
      expect((await backupNow(h, otherOrg, other.id)).status).toBe("succeeded");
    } finally {
      await release();
    }
  }, 60_000);
});
