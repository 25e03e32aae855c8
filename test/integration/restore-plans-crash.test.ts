import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { ulid } from "../../src/lib/ids.ts";

/**
 * A real daemon killed with SIGKILL in the middle of a drill (its scratch database restored
 * and a check running) leaves the scratch database behind; the next start drops it, fails
 * the run INTERRUPTED and reports it as a failed drill. A scratch-looking database that is
 * not one of this daemon's drills is left alone. The same for MariaDB (the scratch database
 * dropped) and SQLite (the scratch file under the data dir removed).
 */
let pg: PgServer;
let maria: MariaDbServer;
let daemon: Daemon | null = null;
const dataDir = tempDir("snapdb-plans-crash");
const mariaDataDir = tempDir("snapdb-plans-crash-my");
const sqliteDataDir = tempDir("snapdb-plans-crash-lite");
const sqliteFiles = tempDir("snapdb-plans-crash-files");
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
  [pg, maria] = await Promise.all([startPostgres(), startMariaDb()]);
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB;`);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 1000);`, pg.database);
  maria.sql(`GRANT ALL ON \`snapdb\\_drill\\_%\`.* TO '${maria.user}'@'127.0.0.1'; FLUSH PRIVILEGES;`);
  maria.sql("CREATE TABLE items (id INT PRIMARY KEY); INSERT INTO items SELECT seq FROM seq_1_to_1000;", maria.database);
}, 120_000);

afterAll(async () => {
  await daemon?.stop("SIGKILL");
  await Promise.all([pg?.stop(), maria?.stop()]);
  for (const dir of [dataDir, mariaDataDir, sqliteDataDir, sqliteFiles]) dir.cleanup();
});

/** A daemon on `dir` with a source's fingerprinted backup taken, and a drill plan of it whose one check runs for minutes. */
async function drillReadyToKill(dir: string, env: Record<string, string>, source: Record<string, unknown>, credentials: { username: string; password: string } | undefined, slowCheck: string) {
  daemon = await startDaemon({ dataDir: dir, env });
  const api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  const managed = await api.managedDestination();
  const policy = await api.createPolicy(managed.id, { fingerprint: true });
  const created = await api.createSource(source, credentials);
  await api.attach(created.id, policy.id);
  expect((await api.backupNow(created.id)).status).toBe("succeeded");
  const plan = await api.must(
    "POST",
    "/restore-plans",
    {
      name: "slow drill",
      dataSourceId: created.id,
      mode: "drill",
      scheduleCron: "0 4 1 1 *",
      enabled: false,
      target: { dataSourceId: created.id },
      checks: [{ name: "slow", sql: slowCheck, expect: "" }],
    },
    201,
  );
  const run = await api.must("POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
  return { plan, run };
}

/** After the restart: the run failed INTERRUPTED, reported as a failed drill, and the plan runs again normally. */
async function expectInterruptedThenRunsAgain(api: DaemonApi, plan: { id: string }, runId: string, rowsCheck: string) {
  const failed = await api.must("GET", `/restores/${runId}`);
  expect(failed.status).toBe("failed");
  expect(failed.error.code).toBe("INTERRUPTED");
  expect(failed.verification.status).toBe("failed");
  const events = (await api.must("GET", `/audit-log?targetId=${plan.id}`)).items.map((e: any) => e.action);
  expect(events).toContain("drill.failed");
  await api.must("PATCH", `/restore-plans/${plan.id}`, { checks: [{ name: "rows", sql: rowsCheck, expect: "1000" }] });
  const next = await api.must("POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
  const done = await api.waitForStatus(`/restores/${next.id}`);
  expect(done.error).toBeNull();
  expect(done.verification.status).toBe("passed");
}

test("PostgreSQL: kill -9 mid-drill: the next start drops the scratch database and reports the drill failed", async () => {
  const env = { SNAPDB_LOG_LEVEL: "warn" };
  // A check that takes a minute keeps the drill reliably in progress, its scratch database restored.
  const { plan, run } = await drillReadyToKill(
    dataDir.path,
    env,
    { engine: "postgres", host: pg.host, port: pg.port, database: pg.database },
    { username: pg.user, password: pg.password },
    "SELECT pg_sleep(60)::text",
  );
  await until("the drill's check to run", () => pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid();").trim() === "1");
  expect(scratchDatabases()).toEqual([run.targetDatabase]);
  await daemon!.stop("SIGKILL");
  daemon = null;
  expect(scratchDatabases()).toEqual([run.targetDatabase]);

  // Another snapdb's drill on the same server: not ours to drop.
  const foreign = `snapdb_drill_${ulid().toLowerCase()}`;
  pg.psql(`CREATE DATABASE ${foreign};`);

  daemon = await startDaemon({ dataDir: dataDir.path, env });
  const again = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  await until("the scratch database to be dropped", () => !scratchDatabases().includes(run.targetDatabase));
  expect(scratchDatabases()).toEqual([foreign]);
  await expectInterruptedThenRunsAgain(again, plan, run.id, "SELECT count(*) FROM items");
  expect(scratchDatabases()).toEqual([foreign]);
  await daemon.stop("SIGKILL");
  daemon = null;
}, 120_000);

test("MariaDB: kill -9 mid-drill: the next start drops the scratch database and reports the drill failed", async () => {
  const scratchDatabases = () => maria.sql("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'snapdb\\_drill\\_%' ORDER BY 1;").trim().split("\n").filter(Boolean);
  const env = { SNAPDB_LOG_LEVEL: "warn" };
  const { plan, run } = await drillReadyToKill(
    mariaDataDir.path,
    env,
    { engine: "mariadb", host: maria.host, port: maria.port, database: maria.database },
    { username: maria.user, password: maria.password },
    "SELECT SLEEP(60)",
  );
  await until("the drill's check to run", () => maria.sql("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE '%SLEEP(60)%' AND id <> CONNECTION_ID();").trim() === "1");
  expect(scratchDatabases()).toEqual([run.targetDatabase]);
  await daemon!.stop("SIGKILL");
  daemon = null;
  expect(scratchDatabases()).toEqual([run.targetDatabase]);
  const foreign = `snapdb_drill_${ulid().toLowerCase()}`;
  maria.sql(`CREATE DATABASE ${foreign};`);

  daemon = await startDaemon({ dataDir: mariaDataDir.path, env });
  const again = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  await until("the scratch database to be dropped", () => !scratchDatabases().includes(run.targetDatabase));
  expect(scratchDatabases()).toEqual([foreign]);
  await expectInterruptedThenRunsAgain(again, plan, run.id, "SELECT COUNT(*) FROM items");
  expect(scratchDatabases()).toEqual([foreign]);
  await daemon.stop("SIGKILL");
  daemon = null;
}, 120_000);

test("SQLite: kill -9 mid-drill: the next start removes the scratch file under the data dir and reports the drill failed", async () => {
  const file = join(sqliteFiles.path, "app.db");
  const db = new Database(file);
  db.run("CREATE TABLE items (id INTEGER PRIMARY KEY)");
  db.run("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000) INSERT INTO items SELECT n FROM g");
  db.close();
  const scratchDir = join(sqliteDataDir.path, "tmp");
  const drillFiles = () => (existsSync(scratchDir) ? readdirSync(scratchDir).filter((n) => n.includes("snapdb_drill_")) : []);
  const env = { SNAPDB_LOG_LEVEL: "warn", SNAPDB_ALLOWED_SQLITE_ROOTS: sqliteFiles.path };
  // A check that counts for minutes (in its own child process) keeps the restored scratch file in place.
  const { plan, run } = await drillReadyToKill(
    sqliteDataDir.path,
    env,
    { engine: "sqlite", path: file },
    undefined,
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 20000000000) SELECT count(*) FROM c",
  );
  const scratchFile = `snapdb_drill_${run.id.replace(/^rst_/, "").toLowerCase()}.sqlite`;
  await until("the drill's scratch file to be restored", () => drillFiles().includes(scratchFile));
  await Bun.sleep(300);
  expect(drillFiles()).toEqual([scratchFile]);
  await daemon!.stop("SIGKILL");
  daemon = null;
  expect(drillFiles()).toEqual([scratchFile]);

  daemon = await startDaemon({ dataDir: sqliteDataDir.path, env });
  expect(drillFiles()).toEqual([]);
  const again = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  await expectInterruptedThenRunsAgain(again, plan, run.id, "SELECT count(*) FROM items");
  expect(drillFiles()).toEqual([]);
  expect(new Database(file, { readonly: true }).query("SELECT count(*) AS n FROM items").get()).toEqual({ n: 1000 });
}, 120_000);
