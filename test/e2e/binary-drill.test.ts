import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The compiled binary runs a SQLite restore drill end to end: the row counts at backup time
 * and the checks are read by a child process that is the binary itself (BUN_BE_BUN=1), which
 * only the shipped executable can show works.
 */
const files = tempDir("snapdb-e2e-drill");
let daemon: Daemon;

beforeAll(async () => {
  daemon = await startDaemon({ binary: "compiled", env: { SNAPDB_ALLOWED_SQLITE_ROOTS: files.path } });
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  files.cleanup();
});

test("a SQLite drill with a fingerprint and a check passes under the compiled binary", async () => {
  const api = new DaemonApi(daemon.baseUrl, await daemon.token("acme"));
  const path = join(files.path, "app.db");
  const db = new Database(path);
  db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  for (let i = 0; i < 25; i++) db.run("INSERT INTO t (v) VALUES (?)", [`v${i}`]);
  db.close();
  const source = await api.createSource({ engine: "sqlite", path });
  const policy = await api.createPolicy((await api.managedDestination()).id, { fingerprint: true });
  await api.attach(source.id, policy.id);
  const job = await api.backupNow(source.id);
  expect(job.fingerprint?.tables).toEqual({ t: 25 });
  const plan = await api.must(
    "POST",
    "/restore-plans",
    {
      name: "drill",
      dataSourceId: source.id,
      mode: "drill",
      scheduleCron: "0 4 * * *",
      target: { dataSourceId: source.id },
      checks: [{ name: "last", sql: "SELECT v FROM t ORDER BY id DESC LIMIT 1", expect: "v24" }],
    },
    201,
  );
  const run = await api.must("POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
  const done = await api.waitForStatus(`/restores/${run.id}`);
  expect(done.error).toBeNull();
  expect(done.verification).toMatchObject({ status: "passed", rowsCompared: 25, checks: [{ name: "last", ok: true, found: "v24" }] });
}, 120_000);
