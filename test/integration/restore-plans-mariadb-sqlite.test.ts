import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { backupJobs } from "../../src/db/schema.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { actionsOf, createPlan, runPlan } from "../helpers/plan-flow.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Restore drills and refreshes of MariaDB (through the mysql client) and SQLite (scratch
 * file in the daemon's data dir), with real servers and files: a good backup passes; a
 * stored file altered after the fact, a table the backup should hold that the restore lacks,
 * and a failing check each fail it with the reason; the scratch goes either way; and a
 * refresh replaces the target and leaves production untouched.
 */
let h: Harness;
let maria: MariaDbServer;
let token: string;
let policyId: string;
const scratch = tempDir("snapdb-plans-files");
const ORG = "org_plans_my";

beforeAll(async () => {
  maria = await startMariaDb();
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path });
  await h.runner.start();
  token = await h.token(ORG);
  const managed = await managedDestination(h, token);
  policyId = (await createPolicy(h, token, managed.id, { fingerprint: true })).id;
}, 120_000);

/** Flips one byte in the middle of a job's stored file while `body` runs, then puts it back. */
async function withFlippedByte(objectKey: string, body: () => Promise<void>): Promise<void> {
  const file = join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", objectKey);
  const bytes = readFileSync(file);
  const i = Math.floor(bytes.length / 2);
  bytes[i] = bytes[i]! ^ 0x01;
  writeFileSync(file, bytes);
  try {
    await body();
  } finally {
    bytes[i] = bytes[i]! ^ 0x01;
    writeFileSync(file, bytes);
  }
}

/**
 * Runs `body` while the job's stored fingerprint names one table more (`ledger`, 42 rows)
 * and one count off by one: what a drill sees when the archive lacks a table the database had.
 */
async function withAlteredFingerprint(jobId: string, offByOne: string, body: () => Promise<void>): Promise<void> {
  const fingerprint = (await h.store.db.select({ f: backupJobs.fingerprint }).from(backupJobs).where(eq(backupJobs.id, jobId)))[0]!.f!;
  const altered = { ...fingerprint, tables: { ...fingerprint.tables, ledger: 42, [offByOne]: fingerprint.tables[offByOne]! + 1 } };
  await h.store.db.update(backupJobs).set({ fingerprint: altered }).where(eq(backupJobs.id, jobId));
  try {
    await body();
  } finally {
    await h.store.db.update(backupJobs).set({ fingerprint }).where(eq(backupJobs.id, jobId));
  }
}

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await maria?.stop();
  scratch.cleanup();
});

describe("MariaDB", () => {
  let source: any;
  let job: any;
  const creds = () => ({ username: maria.user, password: maria.password });
  const scratchDatabases = () => maria.sql("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'snapdb\\_drill\\_%';").trim();

  beforeAll(async () => {
    // The drill's scratch database is created and dropped with the target's own user.
    maria.sql(`GRANT ALL ON \`snapdb\\_drill\\_%\`.* TO '${maria.user}'@'127.0.0.1'; GRANT ALL ON staging.* TO '${maria.user}'@'127.0.0.1'; FLUSH PRIVILEGES; CREATE DATABASE staging;`);
    maria.sql(
      `CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(100), price DECIMAL(10,2)) ENGINE=InnoDB;
       INSERT INTO items (label, price) SELECT CONCAT('item ', seq), seq * 0.5 FROM seq_1_to_2000;
       CREATE TABLE tags (item INT, tag VARCHAR(20), PRIMARY KEY (item, tag));
       INSERT INTO tags SELECT seq, 'x' FROM seq_1_to_300;
       CREATE DEFINER = '${maria.user}'@'127.0.0.1' VIEW cheap AS SELECT id FROM items WHERE price < 10;`,
      maria.database,
    );
    maria.sql("CREATE TABLE old_stuff (id INT); INSERT INTO old_stuff VALUES (1);", "staging");
    source = await createSource(h, token, { engine: "mariadb", host: maria.host, port: maria.port, database: maria.database }, creds());
    await attach(h, token, source.id, policyId);
    job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
  }, 60_000);

  test("the job's fingerprint counts base tables (not views)", () => {
    expect(job.fingerprint.tables).toEqual({ items: 2000, tags: 300 });
  });

  test("a drill of a good backup passes, scratch dropped", async () => {
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [
        { name: "total", sql: "SELECT SUM(price) FROM items", expect: "1000500.00" },
        { name: "view", sql: "SELECT COUNT(*) FROM cheap", expect: "19" },
      ],
    });
    const run = await runPlan(h, token, plan.id);
    expect(run.error).toBeNull();
    expect(run.status).toBe("succeeded");
    expect(run.targetDatabase).toMatch(/^snapdb_drill_/);
    expect(run.verification).toMatchObject({ status: "passed", fingerprint: true, tables: 2, rowsCompared: 2300, mismatches: [] });
    expect(run.verification.checks.every((c: any) => c.ok)).toBe(true);
    expect(scratchDatabases()).toBe("");
    expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.succeeded"]);
  });

  test("the stored file altered after the fact → CHECKSUM_MISMATCH, drill failed, scratch dropped", async () => {
    await withFlippedByte(job.objectKey, async () => {
      const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.status).toBe("failed");
      expect(run.error.code).toBe("CHECKSUM_MISMATCH");
      expect(run.error.message).toContain(`the scratch database ${run.targetDatabase} was removed`);
      expect(run.verification).toMatchObject({ status: "failed", tables: 0, rowsCompared: 0 });
      expect(scratchDatabases()).toBe("");
      expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
    });
  });

  test("a table the backup should hold is missing, and a count differs → VERIFICATION_FAILED naming them, scratch dropped", async () => {
    await withAlteredFingerprint(job.id, "tags", async () => {
      const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.status).toBe("failed");
      expect(run.error.code).toBe("VERIFICATION_FAILED");
      expect(run.error.message).toContain("ledger is missing (42 rows expected)");
      expect(run.error.message).toContain("tags has 300 rows, the backup 301");
      expect(run.verification.mismatches).toEqual([
        { table: "ledger", expected: 42, found: null },
        { table: "tags", expected: 301, found: 300 },
      ]);
      expect(scratchDatabases()).toBe("");
      expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
    });
  });

  test("a failing check fails the drill; checks cannot write or run a second statement; scratch dropped", async () => {
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [
        { name: "count", sql: "SELECT COUNT(*) FROM items", expect: "1999" },
        { name: "drop", sql: "DROP TABLE tags", expect: "" },
        { name: "two", sql: "SELECT 1; DELETE FROM items", expect: "1" },
        { name: "still there", sql: "SELECT COUNT(*) FROM tags", expect: "300" },
      ],
    });
    const run = await runPlan(h, token, plan.id);
    expect(run.status).toBe("failed");
    expect(run.error.code).toBe("VERIFICATION_FAILED");
    const [count, drop, two, still] = run.verification.checks;
    expect(count).toEqual({ name: "count", ok: false, found: "2000" });
    expect(drop.ok).toBe(false);
    expect(drop.error).toContain("READ ONLY");
    expect(two.ok).toBe(false);
    expect(still).toEqual({ name: "still there", ok: true, found: "300" });
    expect(scratchDatabases()).toBe("");
  });

  test("a refresh replaces staging, production untouched", async () => {
    const staging = await createSource(h, token, { engine: "mysql", host: maria.host, port: maria.port, database: "staging" }, creds());
    maria.sql("UPDATE items SET label = 'prod change' WHERE id = 1;", maria.database);
    const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "refresh", target: { dataSourceId: staging.id } });
    const run = await runPlan(h, token, plan.id);
    expect(run.error).toBeNull();
    expect(run.verification.status).toBe("passed");
    // clean on MySQL/MariaDB drops every table and view of the target first: old_stuff, which the backup lacks, is gone.
    expect(maria.sql("SHOW TABLES;", "staging").trim().split("\n").sort()).toEqual(["cheap", "items", "tags"]);
    expect(maria.sql("SELECT label FROM items WHERE id = 1;", "staging").trim()).toBe("item 1");
    expect(maria.sql("SELECT label FROM items WHERE id = 1;", maria.database).trim()).toBe("prod change");
    expect(maria.sql("SELECT COUNT(*) FROM items;", maria.database).trim()).toBe("2000");
  });
});

describe("SQLite", () => {
  let source: any;
  let job: any;
  const file = join(scratch.path, "app.db");
  const tmpDir = () => join(h.dataDir, "tmp");
  const drillFiles = () => (existsSync(tmpDir()) ? readdirSync(tmpDir()).filter((n) => n.includes("snapdb_drill_")) : []);

  beforeAll(async () => {
    const db = new Database(file);
    db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    db.run("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 700) INSERT INTO notes (body) SELECT 'note ' || n FROM g");
    db.run("CREATE TABLE empty (x)");
    db.close();
    source = await createSource(h, token, { engine: "sqlite", path: file });
    await attach(h, token, source.id, policyId);
    job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
  }, 60_000);

  test("the job's fingerprint is counted in the snapshot file", () => {
    expect(job.fingerprint.tables).toEqual({ empty: 0, notes: 700 });
  });

  test("a drill restores into a scratch file in the data dir, passes, and removes it", async () => {
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [{ name: "last", sql: "SELECT body FROM notes ORDER BY id DESC LIMIT 1", expect: "note 700" }],
    });
    const run = await runPlan(h, token, plan.id);
    expect(run.error).toBeNull();
    expect(run.targetDatabase).toBeNull();
    expect(run.verification).toMatchObject({ status: "passed", tables: 2, rowsCompared: 700, checks: [{ name: "last", ok: true, found: "note 700" }] });
    expect(drillFiles()).toEqual([]);
  });

  test("the stored file altered after the fact → CHECKSUM_MISMATCH, drill failed, scratch file removed", async () => {
    await withFlippedByte(job.objectKey, async () => {
      const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.status).toBe("failed");
      expect(run.error.code).toBe("CHECKSUM_MISMATCH");
      expect(run.error.message).toContain("the scratch file was removed");
      expect(run.verification).toMatchObject({ status: "failed", tables: 0, rowsCompared: 0 });
      expect(drillFiles()).toEqual([]);
      expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
    });
  });

  test("a table the backup should hold is missing, and a count differs → VERIFICATION_FAILED naming them, scratch file removed", async () => {
    await withAlteredFingerprint(job.id, "notes", async () => {
      const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.status).toBe("failed");
      expect(run.error.code).toBe("VERIFICATION_FAILED");
      expect(run.error.message).toContain("ledger is missing (42 rows expected)");
      expect(run.error.message).toContain("notes has 700 rows, the backup 701");
      expect(run.verification.mismatches).toEqual([
        { table: "ledger", expected: 42, found: null },
        { table: "notes", expected: 701, found: 700 },
      ]);
      expect(drillFiles()).toEqual([]);
      expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
    });
  });

  test("a failing check, a write and an ATTACH fail the drill; the scratch file is removed", async () => {
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [
        { name: "count", sql: "SELECT count(*) FROM notes", expect: "0" },
        { name: "write", sql: "DELETE FROM notes", expect: "" },
        { name: "attach", sql: `ATTACH '${join(h.dataDir, "snapdb.db")}' AS s`, expect: "" },
        { name: "attached?", sql: "SELECT count(*) FROM s.data_sources", expect: "1" },
      ],
    });
    const run = await runPlan(h, token, plan.id);
    expect(run.status).toBe("failed");
    expect(run.error.code).toBe("VERIFICATION_FAILED");
    const [count, write, , attached] = run.verification.checks;
    expect(count).toEqual({ name: "count", ok: false, found: "700" });
    expect(write.ok).toBe(false);
    expect(write.error).toMatch(/readonly|read-only/i);
    expect(attached.ok).toBe(false);
    expect(attached.error).toContain("no such table");
    expect(drillFiles()).toEqual([]);
    expect(new Database(file, { readonly: true }).query("SELECT count(*) AS n FROM notes").get()).toEqual({ n: 700 });
  });

  test("each drill's outcome is one drill.succeeded or drill.failed notification, written with its result", async () => {
    const channel = await h.call("POST", "/notification-channels", {
      token,
      body: { name: "drills", type: "webhook", config: { url: "http://127.0.0.1:9/drills", secret: "d".repeat(32) } },
    });
    expect(channel.status).toBe(201);
    const rule = await h.call("POST", "/notification-rules", { token, body: { channelId: channel.body.id, events: ["drill.succeeded", "drill.failed"], dataSourceId: source.id } });
    expect(rule.status).toBe(201);
    const passing = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
    const failing = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [{ name: "count", sql: "SELECT count(*) FROM notes", expect: "1" }],
    });
    const ok = await runPlan(h, token, passing.id);
    const bad = await runPlan(h, token, failing.id);
    expect([ok.status, bad.status]).toEqual(["succeeded", "failed"]);
    const deliveries = async (event: string) => (await h.call("GET", `/notification-deliveries?event=${event}&channelId=${channel.body.id}`, { token })).body.items;
    const [succeeded, failed] = [await deliveries("drill.succeeded"), await deliveries("drill.failed")];
    expect(succeeded.map((d: any) => d.data?.id ?? d.dataId ?? null).length).toBe(1);
    expect(failed.length).toBe(1);
    expect(JSON.stringify(succeeded[0])).toContain(ok.id);
    expect(JSON.stringify(failed[0])).toContain(bad.id);
  });

  test("a refresh replaces another SQLite file; the source is untouched; the source itself is refused", async () => {
    const stagingFile = join(scratch.path, "staging.db");
    const s = new Database(stagingFile);
    s.run("CREATE TABLE junk (x)");
    s.close();
    const staging = await createSource(h, token, { engine: "sqlite", path: stagingFile });
    const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "refresh", target: { dataSourceId: staging.id } });
    const run = await runPlan(h, token, plan.id);
    expect(run.error).toBeNull();
    expect(run.verification.status).toBe("passed");
    const names = (new Database(stagingFile, { readonly: true }).query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    expect(names).toEqual(["empty", "notes"]);
    const self = await h.call("POST", "/restore-plans", {
      token,
      body: { name: "self-sqlite", dataSourceId: source.id, mode: "refresh", scheduleCron: "0 4 * * *", target: { dataSourceId: source.id } },
    });
    expect(self.status).toBe(400);
    const sameFile = await createSource(h, token, { engine: "sqlite", path: file });
    const alias = await h.call("POST", "/restore-plans", {
      token,
      body: { name: "alias-sqlite", dataSourceId: source.id, mode: "refresh", scheduleCron: "0 4 * * *", target: { dataSourceId: sameFile.id } },
    });
    expect(alias.status).toBe(400);
    expect(alias.body.details[0].path).toBe("/target");
    expect((await must(h, token, "GET", `/restores/${run.id}`)).mode).toBe("refresh");
  });
});
