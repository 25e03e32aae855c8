import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The shipped binary backs up and restores every engine, as a user runs it: the compiled
 * dist/snapdb (not the sources), real PostgreSQL and MariaDB servers, a real SQLite file.
 * Each engine: a backup, then a restore (PostgreSQL and MariaDB into a new database, SQLite
 * over its changed file), then the rows read back.
 */
const files = tempDir("snapdb-e2e-engines");
let daemon: Daemon;
let api: DaemonApi;
let pg: PgServer;
let maria: MariaDbServer;
let policyFor: (dsId: string) => Promise<string>;

beforeAll(async () => {
  [pg, maria] = await Promise.all([startPostgres(), startMariaDb()]);
  daemon = await startDaemon({ binary: "compiled", env: { SNAPDB_ALLOWED_SQLITE_ROOTS: files.path } });
  api = new DaemonApi(daemon.baseUrl, await daemon.token("acme", { scopes: ["backup.read", "backup.write", "backup.operate", "backup.restore"] }));
  const destination = await api.managedDestination();
  const policy = await api.createPolicy(destination.id);
  policyFor = async (dsId) => {
    await api.attach(dsId, policy.id);
    return policy.id;
  };
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await Promise.all([pg?.stop(), maria?.stop()]);
  files.cleanup();
});

/** Backs up, runs `between` (a change the restore must undo), restores, and checks both ended well. */
async function backupAndRestore(dsId: string, restoreBody: Record<string, unknown>, between?: () => void) {
  const job = await api.backupNow(dsId, await policyFor(dsId));
  expect({ status: job.status, error: job.error }).toEqual({ status: "succeeded", error: null });
  expect(job.sizeBytes).toBeGreaterThan(0);
  between?.();
  const restore = await api.must("POST", "/restores", { backupJobId: job.id, ...restoreBody }, 202);
  const done = await api.waitForStatus(`/restores/${restore.id}`);
  expect({ status: done.status, error: done.error }).toEqual({ status: "succeeded", error: null });
  return job;
}

describe("the compiled binary backs up and restores every engine", () => {
  test("PostgreSQL", async () => {
    pg.psql(`ALTER ROLE ${pg.user} CREATEDB;`);
    pg.psql(`SET ROLE ${pg.user}; CREATE TABLE fruit (id int PRIMARY KEY, name text); INSERT INTO fruit SELECT g, 'f' || g FROM generate_series(1, 500) g;`, pg.database);
    const ds = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
    const job = await backupAndRestore(ds.id, { targetDatabase: "restored_pg" });
    expect(job.format).toMatchObject({ engine: "postgres", dump: "pg_custom" });
    expect(pg.psql("SELECT count(*), max(name) FROM fruit", "restored_pg").trim()).toBe("500|f99");
  }, 120_000);

  test("MariaDB", async () => {
    maria.sql("CREATE TABLE fruit (id int PRIMARY KEY, name varchar(20)); INSERT INTO fruit SELECT seq, CONCAT('f', seq) FROM seq_1_to_500;", maria.database);
    maria.sql(`GRANT ALL ON *.* TO '${maria.user}'@'127.0.0.1'; FLUSH PRIVILEGES;`);
    const ds = await api.createSource({ engine: "mariadb", host: maria.host, port: maria.port, database: maria.database }, { username: maria.user, password: maria.password });
    const job = await backupAndRestore(ds.id, { targetDatabase: "restored_maria" });
    expect(job.format).toMatchObject({ engine: "mariadb", dump: "sql" });
    expect(maria.sql("SELECT count(*), max(name) FROM fruit", "restored_maria").trim().split(/\s+/)).toEqual(["500", "f99"]);
  }, 120_000);

  test("SQLite (the snapshot worker inside the binary)", async () => {
    const path = join(files.path, "app.db");
    const db = new Database(path);
    db.run("CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT)");
    for (let i = 1; i <= 500; i++) db.run("INSERT INTO fruit VALUES (?, ?)", [i, `f${i}`]);
    db.close();
    const ds = await api.createSource({ engine: "sqlite", path });
    // The restore goes back over the same file: change it after the backup, so a restore that
    // left the file alone would be seen.
    const job = await backupAndRestore(ds.id, { clean: true }, () => {
      const changed = new Database(path);
      changed.run("DELETE FROM fruit WHERE id > 10");
      changed.run("UPDATE fruit SET name = 'changed' WHERE id = 1");
      changed.close();
    });
    expect(job.format).toMatchObject({ engine: "sqlite", dump: "sqlite" });
    const restored = new Database(path, { readonly: true });
    expect(restored.query("SELECT count(*) AS n, max(name) AS m FROM fruit").get()).toEqual({ n: 500, m: "f99" });
    expect(restored.query("SELECT name FROM fruit WHERE id IN (1, 500) ORDER BY id").all()).toEqual([{ name: "f1" }, { name: "f500" }]);
    restored.close();
  }, 120_000);
});
