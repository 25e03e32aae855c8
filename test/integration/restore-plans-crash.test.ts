import { afterAll, beforeAll, expect, test } from "bun:test";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { ulid } from "../../src/lib/ids.ts";

/**
 * A real daemon killed with SIGKILL in the middle of a drill (its scratch database restored
 * and a check running) leaves the scratch database behind; the next start drops it, fails
 * the run INTERRUPTED and reports it as a failed drill. A scratch-looking database that is
 * not one of this daemon's drills is left alone.
 */
let pg: PgServer;
let daemon: Daemon | null = null;
const dataDir = tempDir("snapdb-plans-crash");
const ORG = "org_plans_crash";

const scratchDatabases = () => pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'snapdb\\_drill\\_%' ORDER BY 1;").trim().split("\n").filter(Boolean);

async function until<T>(what: string, probe: () => Promise<T | null> | T | null, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await probe();
    if (found !== null && found !== undefined && found !== false) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB;`);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 1000);`, pg.database);
}, 60_000);

afterAll(async () => {
  await daemon?.stop("SIGKILL");
  await pg?.stop();
  dataDir.cleanup();
});

test("kill -9 mid-drill: the next start drops the scratch database and reports the drill failed", async () => {
  const env = { SNAPDB_LOG_LEVEL: "warn" };
  daemon = await startDaemon({ dataDir: dataDir.path, env });
  const api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  const managed = await api.managedDestination();
  const policy = await api.createPolicy(managed.id, { fingerprint: true });
  const source = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
  await api.attach(source.id, policy.id);
  expect((await api.backupNow(source.id)).status).toBe("succeeded");
  // A check that takes a minute keeps the drill reliably in progress, its scratch database restored.
  const plan = await api.must("POST", "/restore-plans", {
    name: "slow drill",
    dataSourceId: source.id,
    mode: "drill",
    scheduleCron: "0 4 1 1 *",
    enabled: false,
    target: { dataSourceId: source.id },
    checks: [{ name: "slow", sql: "SELECT pg_sleep(60)::text", expect: "" }],
  }, 201);
  const run = await api.must("POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
  await until("the drill's check to run", () => pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid();").trim() === "1");
  expect(scratchDatabases()).toEqual([run.targetDatabase]);
  await daemon.stop("SIGKILL");
  daemon = null;
  expect(scratchDatabases()).toEqual([run.targetDatabase]);

  // Another snapdb's drill on the same server: not ours to drop.
  const foreign = `snapdb_drill_${ulid().toLowerCase()}`;
  pg.psql(`CREATE DATABASE ${foreign};`);

  daemon = await startDaemon({ dataDir: dataDir.path, env });
  const again = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  await until("the scratch database to be dropped", () => !scratchDatabases().includes(run.targetDatabase));
  expect(scratchDatabases()).toEqual([foreign]);
  const failed = await again.must("GET", `/restores/${run.id}`);
  expect(failed.status).toBe("failed");
  expect(failed.error.code).toBe("INTERRUPTED");
  expect(failed.verification.status).toBe("failed");
  const events = (await again.must("GET", `/audit-log?targetId=${plan.id}`)).items.map((e: any) => e.action);
  expect(events).toContain("drill.failed");
  // And the plan runs again normally afterwards.
  await again.must("PATCH", `/restore-plans/${plan.id}`, { checks: [{ name: "rows", sql: "SELECT count(*) FROM items", expect: "1000" }] });
  const next = await again.must("POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
  const done = await again.waitForStatus(`/restores/${next.id}`);
  expect(done.error).toBeNull();
  expect(done.verification.status).toBe("passed");
  expect(scratchDatabases()).toEqual([foreign]);
}, 120_000);
