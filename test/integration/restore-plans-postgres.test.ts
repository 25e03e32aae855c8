import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { eq } from "drizzle-orm";
import { backupJobs, orgKeys, restores } from "../../src/db/schema.ts";
import { scratchNameOf } from "../../src/engines/scratch-db.ts";
import { newId } from "../../src/lib/ids.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { actionsOf, createPlan, runPlan } from "../helpers/plan-flow.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";

/**
 * Restore drills and refreshes against a real PostgreSQL: a drill of a good backup passes
 * and proves every row; a tampered file, a table the archive lacks (the archive rebuilt
 * without it) and a failing check each fail it with the reason; the scratch database is gone after every run; a refresh replaces
 * staging and leaves production alone; the fingerprint is the dump's own snapshot even
 * while rows are being written.
 */
let h: Harness;
let pg: PgServer;
let token: string;
let source: any;
let policy: any;
let job: any;
const ORG = "org_plans_pg";

const scratchDatabases = () => pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'snapdb\\_drill\\_%' ORDER BY 1;").trim();
const managedFile = (key: string) => join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", key);
const creds = () => ({ username: pg.user, password: pg.password });

beforeAll(async () => {
  // REPLICATION: one source also has a physical policy (pg_basebackup), whose base backups a plan never restores.
  pg = await startPostgres({ replication: true });
  h = await createHarness();
  await h.runner.start();
  token = await h.token(ORG);
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB; CREATE DATABASE staging OWNER ${pg.user};`);
  pg.psql(
    `SET ROLE ${pg.user};
    CREATE SCHEMA billing;
    CREATE TABLE people (id bigserial PRIMARY KEY, name text NOT NULL, born date);
    INSERT INTO people (name, born) SELECT 'nom ' || g, date '1990-01-01' + g FROM generate_series(1, 3000) g;
    CREATE TABLE notes (id int PRIMARY KEY, person bigint REFERENCES people(id), body text);
    INSERT INTO notes SELECT g, g, 'note ' || g FROM generate_series(1, 500) g;
    CREATE TABLE billing.invoices (id int PRIMARY KEY, amount numeric(12,2));
    INSERT INTO billing.invoices SELECT g, g * 1.5 FROM generate_series(1, 120) g;
    CREATE TABLE empty_one (id int);`,
    pg.database,
  );
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE stale (id int); INSERT INTO stale VALUES (1);`, "staging");
  const managed = await managedDestination(h, token);
  policy = await createPolicy(h, token, managed.id, { fingerprint: true });
  source = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, creds());
  await attach(h, token, source.id, policy.id);
  job = await backupNow(h, token, source.id);
  expect(job.status).toBe("succeeded");
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await pg?.stop();
});

describe("fingerprint on the backup job", () => {
  test("policy fingerprint: true records every table's rows in the dump's snapshot", async () => {
    expect(policy.fingerprint).toBe(true);
    expect(job.fingerprint.tables).toEqual({ "billing.invoices": 120, "public.empty_one": 0, "public.notes": 500, "public.people": 3000 });
    expect(Date.parse(job.fingerprint.takenAt)).toBeGreaterThanOrEqual(Date.parse(job.startedAt));
    expect((await must(h, token, "GET", `/backup-jobs/${job.id}`)).fingerprint).toEqual(job.fingerprint);
  });

  test("a policy without it records none", async () => {
    const plain = await createPolicy(h, token, policy.destinationId);
    expect(plain.fingerprint).toBe(false);
    const other = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, creds());
    await attach(h, token, other.id, plain.id);
    const done = await backupNow(h, token, other.id);
    expect(done.status).toBe("succeeded");
    expect(done.fingerprint).toBeNull();
  });

  test("rows written while the backup runs: the counts are those of the dump's snapshot, and a drill proves it", async () => {
    pg.psql(`SET ROLE ${pg.user}; CREATE TABLE busy (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp());`, pg.database);
    const busySource = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, creds());
    await attach(h, token, busySource.id, policy.id);
    const writer = new SQL({ adapter: "postgres", hostname: pg.host, port: pg.port, database: pg.database, username: pg.user, password: pg.password, max: 1 });
    let writing = true;
    let written = 0;
    const loop = (async () => {
      while (writing) {
        await writer`INSERT INTO busy DEFAULT VALUES`;
        written++;
      }
    })();
    try {
      await Bun.sleep(200);
      const busyJob = await backupNow(h, token, busySource.id);
      await Bun.sleep(200);
      writing = false;
      await loop;
      expect(busyJob.status).toBe("succeeded");
      const counted = busyJob.fingerprint.tables["public.busy"];
      expect(counted).toBeGreaterThan(0);
      expect(written).toBeGreaterThan(counted);
      const plan = await createPlan(h, token, { dataSourceId: busySource.id, mode: "drill", target: { dataSourceId: busySource.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.backupJobId).toBe(busyJob.id);
      expect(run.verification.mismatches).toEqual([]);
      expect(run.status).toBe("succeeded");
    } finally {
      writing = false;
      await loop.catch(() => {});
      await writer.close();
      pg.psql("DROP TABLE busy;", pg.database);
    }
  }, 60_000);
});

describe("drills", () => {
  test("a good backup: restored into a scratch database, every row proven, checks pass, scratch dropped", async () => {
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [
        { name: "people", sql: "SELECT count(*) FROM people", expect: "3000" },
        { name: "invoice total", sql: "SELECT sum(amount)::text FROM billing.invoices", expect: "10890.00" },
        { name: "a date", sql: "SELECT born FROM people WHERE id = 1", expect: "1990-01-02T00:00:00.000Z" },
      ],
    });
    expect(plan).toMatchObject({ mode: "drill", target: { dataSourceId: source.id, database: null }, enabled: false, nextRunAt: null, lastRun: null });
    const run = await runPlan(h, token, plan.id);
    expect(run.error).toBeNull();
    expect(run).toMatchObject({ status: "succeeded", planId: plan.id, mode: "drill", trigger: "manual", backupJobId: job.id, sourceDataSourceId: source.id, targetDataSourceId: source.id });
    expect(run.targetDatabase).toMatch(/^snapdb_drill_[0-9a-z]{26}$/);
    expect(run.verification).toMatchObject({ status: "passed", fingerprint: true, tables: 4, rowsCompared: 3620, mismatches: [] });
    expect(run.verification.checks).toEqual([
      { name: "people", ok: true, found: "3000" },
      { name: "invoice total", ok: true, found: "10890.00" },
      { name: "a date", ok: true, found: "1990-01-02T00:00:00.000Z" },
    ]);
    expect(run.verification.durationMs).toBeGreaterThan(0);
    expect(scratchDatabases()).toBe("");
    expect(await actionsOf(h, token, run.id)).toEqual(["restore.queued", "restore.started", "restore.completed"]);
    expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.succeeded"]);
    const again = await must(h, token, "GET", `/restore-plans/${plan.id}`);
    expect(again.lastRun.id).toBe(run.id);
    expect((await must(h, token, "GET", `/restores?planId=${plan.id}`)).items.map((r: any) => r.id)).toEqual([run.id]);
    const metrics = await (await h.app.handle(new Request("http://localhost/metrics"))).text();
    expect(metrics).toMatch(new RegExp(`snapdb_restore_drill_last_success_timestamp_seconds\\{data_source_id="${source.id}"\\} \\d+`));
    expect(metrics).toMatch(/snapdb_restore_duration_seconds_count \d+/);
  });

  test("the stored file altered after the fact → CHECKSUM_MISMATCH, drill failed, scratch dropped", async () => {
    const file = managedFile(job.objectKey);
    const bytes = readFileSync(file);
    const i = Math.floor(bytes.length / 2);
    bytes[i] = bytes[i]! ^ 0x01;
    writeFileSync(file, bytes);
    try {
      const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.status).toBe("failed");
      expect(run.error.code).toBe("CHECKSUM_MISMATCH");
      expect(run.error.message).toContain("scratch database");
      expect(run.verification).toMatchObject({ status: "failed", tables: 0, rowsCompared: 0 });
      expect(scratchDatabases()).toBe("");
      expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
    } finally {
      bytes[i] = bytes[i]! ^ 0x01;
      writeFileSync(file, bytes);
    }
  });

  test("the fingerprint names a table the restore lacks, and a count that differs → VERIFICATION_FAILED naming them", async () => {
    const fingerprint = (await h.store.db.select({ f: backupJobs.fingerprint }).from(backupJobs).where(eq(backupJobs.id, job.id)))[0]!.f!;
    const altered = { ...fingerprint, tables: { ...fingerprint.tables, "public.ledger": 42, "public.notes": 501 } };
    await h.store.db.update(backupJobs).set({ fingerprint: altered }).where(eq(backupJobs.id, job.id));
    try {
      const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.status).toBe("failed");
      expect(run.error.code).toBe("VERIFICATION_FAILED");
      expect(run.error.message).toContain("public.ledger is missing (42 rows expected)");
      expect(run.error.message).toContain("public.notes has 500 rows, the backup 501");
      expect(run.verification.status).toBe("failed");
      expect(run.verification.tables).toBe(5);
      expect(run.verification.mismatches).toEqual([
        { table: "public.ledger", expected: 42, found: null },
        { table: "public.notes", expected: 501, found: 500 },
      ]);
      expect(scratchDatabases()).toBe("");
    } finally {
      await h.store.db.update(backupJobs).set({ fingerprint }).where(eq(backupJobs.id, job.id));
    }
  });

  test("a table really dropped from the archive (rebuilt without it, the backup's fingerprint kept) → VERIFICATION_FAILED naming it", async () => {
    const file = managedFile(job.objectKey);
    const original = readFileSync(file);
    const recorded = (await h.store.db.select({ sha256: backupJobs.sha256, storedBytes: backupJobs.storedBytes }).from(backupJobs).where(eq(backupJobs.id, job.id)))[0]!;
    // The backup restored elsewhere, one table dropped, dumped again as the runner stores it: pg_dump -Fc | zstd | age.
    const restored = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDatabase: "rebuilt_without_notes" }, 202);
    expect((await waitForStatus(h, token, `/restores/${restored.id}`)).status).toBe("succeeded");
    pg.psql("DROP TABLE notes;", "rebuilt_without_notes");
    const recipient = (await h.store.db.select({ r: orgKeys.recipient }).from(orgKeys).where(eq(orgKeys.orgId, ORG)))[0]!.r;
    const rebuilt = Bun.spawnSync(["bash", "-c", 'set -o pipefail; "$PG_DUMP" -Fc -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d rebuilt_without_notes | zstd -q -c | age -r "$RECIPIENT"'], {
      env: { ...process.env, PG_DUMP: join(pg.binDir, "pg_dump"), PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user, PGPASSWORD: pg.password, RECIPIENT: recipient },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(rebuilt.stderr.toString()).toBe("");
    expect(rebuilt.exitCode).toBe(0);
    const bytes = rebuilt.stdout;
    writeFileSync(file, bytes);
    await h.store.db
      .update(backupJobs)
      .set({ sha256: createHash("sha256").update(bytes).digest("hex"), storedBytes: bytes.byteLength })
      .where(eq(backupJobs.id, job.id));
    try {
      const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.backupJobId).toBe(job.id);
      expect(run.status).toBe("failed");
      expect(run.error.code).toBe("VERIFICATION_FAILED");
      expect(run.error.message).toContain("public.notes is missing (500 rows expected)");
      expect(run.verification).toMatchObject({ status: "failed", fingerprint: true, tables: 4 });
      expect(run.verification.mismatches).toEqual([{ table: "public.notes", expected: 500, found: null }]);
      expect(scratchDatabases()).toBe("");
      expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
    } finally {
      writeFileSync(file, original);
      await h.store.db.update(backupJobs).set(recorded).where(eq(backupJobs.id, job.id));
      pg.psql("DROP DATABASE rebuilt_without_notes;");
    }
  });

  test("a check that does not return its expectation fails the drill; checks are read-only, one statement each", async () => {
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [
        { name: "people", sql: "SELECT count(*) FROM people", expect: "2999" },
        { name: "writes", sql: "DELETE FROM notes RETURNING id", expect: "1" },
        { name: "two statements", sql: "SELECT 1; DROP TABLE notes", expect: "1" },
        { name: "no such table", sql: "SELECT count(*) FROM nothing_here", expect: "0" },
        { name: "after all that", sql: "SELECT count(*) FROM notes", expect: "500" },
      ],
    });
    const run = await runPlan(h, token, plan.id);
    expect(run.status).toBe("failed");
    expect(run.error.code).toBe("VERIFICATION_FAILED");
    expect(run.error.message).toContain('people: expected "2999", found "3000"');
    expect(run.verification.mismatches).toEqual([]);
    const [people, writes, two, missing, after] = run.verification.checks;
    expect(people).toEqual({ name: "people", ok: false, found: "3000" });
    expect(writes.ok).toBe(false);
    expect(writes.error).toContain("read-only transaction");
    expect(two.ok).toBe(false);
    expect(two.error).toContain("multiple commands");
    expect(missing.ok).toBe(false);
    expect(missing.error).toContain("nothing_here");
    expect(after).toEqual({ name: "after all that", ok: true, found: "500" });
    expect(scratchDatabases()).toBe("");
  });

  test("a drill canceled mid-check: canceled, its scratch database dropped all the same", async () => {
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "drill",
      target: { dataSourceId: source.id },
      checks: [{ name: "slow", sql: "SELECT pg_sleep(60)::text", expect: "" }],
    });
    const queued = await must(h, token, "POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
    for (let i = 0; i < 300 && pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid();").trim() !== "1"; i++) await Bun.sleep(50);
    expect(scratchDatabases()).toBe(queued.targetDatabase);
    await must(h, token, "POST", `/restores/${queued.id}/cancel`, undefined, 202);
    const run = await waitForStatus(h, token, `/restores/${queued.id}`);
    expect(run.status).toBe("canceled");
    expect(run.error.code).toBe("CANCELED");
    expect(run.error.message).toContain("was removed");
    expect(scratchDatabases()).toBe("");
    expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
  });

  test("no successful backup → the run fails NO_BACKUP and is reported", async () => {
    const fresh = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, creds());
    const plan = await createPlan(h, token, { dataSourceId: fresh.id, mode: "drill", target: { dataSourceId: fresh.id } });
    const run = await runPlan(h, token, plan.id);
    expect(run.backupJobId).toBeNull();
    expect(run.status).toBe("failed");
    expect(run.error.code).toBe("NO_BACKUP");
    expect(run.verification.status).toBe("failed");
    expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
  });

  test("a target that does not answer → CONNECTION_REFUSED, reported", async () => {
    const dead = await createSource(h, token, { engine: "postgres", host: "127.0.0.1", port: 1, database: "nothing" }, creds());
    const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: dead.id } });
    const run = await runPlan(h, token, plan.id);
    expect(run.status).toBe("failed");
    expect(run.error.code).toBe("CONNECTION_REFUSED");
    expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
  });
});

describe("which backups a plan restores: logical backups of one database", () => {
  test("newest backup a base backup of a physical policy: the drill restores the newest logical backup", async () => {
    const mixed = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, creds());
    const physical = await createPolicy(h, token, policy.destinationId, { method: "physical", fastCheckpoint: true });
    await attach(h, token, mixed.id, policy.id);
    await attach(h, token, mixed.id, physical.id);
    try {
      const logical = await backupNow(h, token, mixed.id, policy.id);
      expect(logical.status).toBe("succeeded");
      const base = await backupNow(h, token, mixed.id, physical.id);
      expect(base.status).toBe("succeeded");
      expect(base.physical).not.toBeNull();
      expect(Date.parse(base.finishedAt)).toBeGreaterThanOrEqual(Date.parse(logical.finishedAt));
      const plan = await createPlan(h, token, { dataSourceId: mixed.id, mode: "drill", target: { dataSourceId: mixed.id } });
      const run = await runPlan(h, token, plan.id);
      expect(run.error).toBeNull();
      expect(run).toMatchObject({ status: "succeeded", backupJobId: logical.id });
      expect(run.verification).toMatchObject({ status: "passed", fingerprint: true, tables: 4, rowsCompared: 3620, mismatches: [] });
      expect(scratchDatabases()).toBe("");

      // Only base backups: nothing a plan can restore, NO_BACKUP saying what it looked for.
      const onlyBase = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, creds());
      await attach(h, token, onlyBase.id, physical.id);
      expect((await backupNow(h, token, onlyBase.id, physical.id)).status).toBe("succeeded");
      const none = await runPlan(h, token, (await createPlan(h, token, { dataSourceId: onlyBase.id, mode: "drill", target: { dataSourceId: onlyBase.id } })).id);
      expect(none).toMatchObject({ status: "failed", backupJobId: null });
      expect(none.error.code).toBe("NO_BACKUP");
      expect(none.error.message).toContain("logical");
    } finally {
      pg.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active;");
    }
  }, 120_000);

  test('a whole-server source (database "*") → 400 at /dataSourceId, on create and on update', async () => {
    const whole = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "*" }, creds());
    for (const mode of ["drill", "refresh"]) {
      const res = await h.call("POST", "/restore-plans", {
        token,
        body: { name: `whole-${mode}`, dataSourceId: whole.id, mode, scheduleCron: "0 4 * * *", target: { dataSourceId: source.id, ...(mode === "refresh" ? { database: "staging" } : {}) } },
      });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("INVALID_INPUT");
      expect(res.body.details[0].path).toBe("/dataSourceId");
      expect(res.body.message).toContain("whole server");
    }
    const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
    const patched = await h.call("PATCH", `/restore-plans/${plan.id}`, { token, body: { dataSourceId: whole.id } });
    expect(patched.status).toBe(400);
    expect(patched.body.details[0].path).toBe("/dataSourceId");
    expect((await must(h, token, "GET", `/restore-plans/${plan.id}`)).dataSourceId).toBe(source.id);
  });

  test("a run that reaches a whole-server backup anyway (queued before plans refused them) fails UNSUPPORTED_BACKUP, scratch dropped", async () => {
    const whole = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "*", excludeDatabases: ["postgres", "staging*", "snapdb_*"] }, creds());
    await attach(h, token, whole.id, policy.id);
    const wholeJob = await backupNow(h, token, whole.id, policy.id);
    expect(wholeJob.status).toBe("succeeded");
    expect(wholeJob.parts.length).toBeGreaterThan(1);
    const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
    const id = newId("rst");
    await h.store.db.insert(restores).values({
      id,
      orgId: ORG,
      backupJobId: wholeJob.id,
      sourceDataSourceId: whole.id,
      targetDataSourceId: source.id,
      targetDatabase: scratchNameOf(id),
      clean: false,
      status: "queued",
      queuedAt: Date.now(),
      planId: plan.id,
      mode: "drill",
      trigger: "schedule",
    });
    await h.runner.wake();
    const run = await waitForStatus(h, token, `/restores/${id}`);
    expect(run.status).toBe("failed");
    expect(run.error.code).toBe("UNSUPPORTED_BACKUP");
    expect(run.error.message).toContain("whole-server");
    expect(scratchDatabases()).toBe("");
    expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "drill.failed"]);
  }, 120_000);
});

describe("refresh", () => {
  test("replaces staging with the newest backup; production untouched", async () => {
    const staging = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "staging" }, creds());
    pg.psql("UPDATE people SET name = 'changed in production' WHERE id = 1;", pg.database);
    const productionBefore = pg.psql("SELECT md5(string_agg(name, ',' ORDER BY id)) FROM people;", pg.database);
    const plan = await createPlan(h, token, {
      dataSourceId: source.id,
      mode: "refresh",
      target: { dataSourceId: staging.id },
      checks: [{ name: "people", sql: "SELECT count(*) FROM people", expect: "3000" }],
    });
    expect(plan.target).toEqual({ dataSourceId: staging.id, database: "staging" });
    const run = await runPlan(h, token, plan.id);
    expect(run.error).toBeNull();
    expect(run).toMatchObject({ status: "succeeded", mode: "refresh", clean: true, targetDatabase: "staging" });
    expect(run.verification).toMatchObject({ status: "passed", tables: 4, rowsCompared: 3620 });
    expect(pg.psql("SELECT name FROM people WHERE id = 1;", "staging").trim()).toBe("nom 1");
    expect(pg.psql("SELECT count(*) FROM billing.invoices;", "staging").trim()).toBe("120");
    expect(pg.psql("SELECT md5(string_agg(name, ',' ORDER BY id)) FROM people;", pg.database)).toBe(productionBefore);
    expect(pg.psql("SELECT name FROM people WHERE id = 1;", pg.database).trim()).toBe("changed in production");
    expect(await actionsOf(h, token, plan.id)).toEqual(["restore_plan.created", "refresh.succeeded"]);
    // clean on PostgreSQL drops and recreates what the archive holds, nothing else: a table
    // only staging has stays, rows and all (MariaDB drops every table, SQLite replaces the file).
    expect(pg.psql("SELECT count(*) FROM stale;", "staging").trim()).toBe("1");

    // ... so a staging-only object that depends on one of the archive's tables stops the
    // refresh: pg_restore cannot drop that table, and its one transaction leaves staging as it was.
    pg.psql(`SET ROLE ${pg.user}; UPDATE people SET name = 'edited in staging' WHERE id = 1; CREATE TABLE staging_only (person bigint REFERENCES people(id));`, "staging");
    const blocked = await runPlan(h, token, plan.id);
    expect(blocked.status).toBe("failed");
    expect(blocked.error.code).toBe("RESTORE_FAILED");
    expect(blocked.error.message).toContain("depend");
    expect(pg.psql("SELECT name FROM people WHERE id = 1;", "staging").trim()).toBe("edited in staging");
    expect(pg.psql("SELECT count(*) FROM stale;", "staging").trim()).toBe("1");
    pg.psql("DROP TABLE staging_only;", "staging");
    pg.psql("UPDATE people SET name = 'nom 1' WHERE id = 1;", pg.database);
  });

  test("never into the source itself: same data source, or another naming the same server and database → 400", async () => {
    const same = await h.call("POST", "/restore-plans", {
      token,
      body: { name: "self", dataSourceId: source.id, mode: "refresh", scheduleCron: "0 4 * * *", target: { dataSourceId: source.id } },
    });
    expect(same.status).toBe(400);
    expect(same.body.details[0].path).toBe("/target");
    const alias = await createSource(h, token, { engine: "postgres", host: "127.0.0.1", port: pg.port, database: pg.database }, creds());
    const viaAlias = await h.call("POST", "/restore-plans", {
      token,
      body: { name: "alias", dataSourceId: source.id, mode: "refresh", scheduleCron: "0 4 * * *", target: { dataSourceId: alias.id } },
    });
    expect(viaAlias.status).toBe(400);
    expect(viaAlias.body.details[0].path).toBe("/target");
    // Another host name for the same server (localhost for 127.0.0.1) passes the API's check,
    // but not the run's: the resolved address is the source's, so nothing is written.
    const viaName = await createSource(h, token, { engine: "postgres", host: "localhost", port: pg.port, database: pg.database }, creds());
    const sneaky = await createPlan(h, token, { dataSourceId: source.id, mode: "refresh", target: { dataSourceId: viaName.id } });
    const before = pg.psql("SELECT md5(string_agg(name, ',' ORDER BY id)) FROM people;", pg.database);
    pg.psql("UPDATE people SET name = 'changed since the backup' WHERE id = 2;", pg.database);
    const refused = await runPlan(h, token, sneaky.id);
    expect(refused.status).toBe("failed");
    expect(refused.error.code).toBe("INVALID_TARGET");
    expect(pg.psql("SELECT name FROM people WHERE id = 2;", pg.database).trim()).toBe("changed since the backup");
    pg.psql("UPDATE people SET name = 'nom 2' WHERE id = 2;", pg.database);
    expect(pg.psql("SELECT md5(string_agg(name, ',' ORDER BY id)) FROM people;", pg.database)).toBe(before);
    const explicit = await h.call("POST", "/restore-plans", {
      token,
      body: { name: "explicit", dataSourceId: source.id, mode: "refresh", scheduleCron: "0 4 * * *", target: { dataSourceId: source.id, database: pg.database } },
    });
    expect(explicit.status).toBe(400);
    // Another database on the same server is fine; so is an update that keeps away from the source.
    const ok = await createPlan(h, token, { dataSourceId: source.id, mode: "refresh", target: { dataSourceId: source.id, database: "staging_two" } });
    const patched = await h.call("PATCH", `/restore-plans/${ok.id}`, { token, body: { target: { dataSourceId: alias.id } } });
    expect(patched.status).toBe(400);
    expect((await must(h, token, "GET", `/restore-plans/${ok.id}`)).target).toEqual({ dataSourceId: source.id, database: "staging_two" });
  });
});
