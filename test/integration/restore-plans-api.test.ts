import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import { auditEvents, restores } from "../../src/db/schema.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createPlan } from "../helpers/plan-flow.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The restore plans API without database servers: validation (400 with the field), org
 * isolation, scopes, updates, deletes, run-now, the scheduler's firing of a plan, the data
 * source delete that plans hold up, and a real every-minute schedule that fires on time.
 */
const files = tempDir("snapdb-plans-api");
let h: Harness;
let token: string;
let a: any;
let b: any;
const ORG = "org_plans_api";

async function sqliteSource(name: string, rows = 3) {
  const path = join(files.path, `${name}.db`);
  const db = new Database(path);
  db.run("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)");
  for (let i = 0; i < rows; i++) db.run("INSERT INTO t DEFAULT VALUES");
  db.close();
  return createSource(h, token, { engine: "sqlite", path });
}

const post = (body: Record<string, unknown>) => h.call("POST", "/restore-plans", { token, body });
const valid = () => ({ name: `p-${crypto.randomUUID().slice(0, 8)}`, dataSourceId: a.id, mode: "drill", scheduleCron: "30 4 * * *", target: { dataSourceId: a.id } });

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: files.path });
  token = await h.token(ORG);
  a = await sqliteSource("a");
  b = await sqliteSource("b");
});

afterAll(() => {
  h.close();
  files.cleanup();
});

describe("validation", () => {
  test("a valid plan → 201 with the shape of the API; defaults filled in", async () => {
    const res = await post({ ...valid(), scheduleCron: " 30  4 * * * ", checks: [{ name: "rows", sql: "SELECT count(*) FROM t", expect: "3" }] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ mode: "drill", scheduleCron: "30 4 * * *", timezone: "UTC", enabled: true, target: { dataSourceId: a.id, database: null }, lastRun: null, lastScheduledAt: null });
    expect(res.body.id).toMatch(/^rpl_[0-9A-Z]{26}$/);
    expect(Date.parse(res.body.nextRunAt)).toBeGreaterThan(Date.now());
    expect(res.body.checks).toEqual([{ name: "rows", sql: "SELECT count(*) FROM t", expect: "3" }]);
  });

  test.each([
    ["a 6-field cron", { scheduleCron: "0 30 4 * * *" }, "/scheduleCron"],
    ["a cron that never fires", { scheduleCron: "0 3 31 2 *" }, "/scheduleCron"],
    ["a zone that is not one", { timezone: "Mars/Olympus" }, "/timezone"],
    ["an unknown data source", { dataSourceId: "ds_nope" }, "/dataSourceId"],
    ["an unknown target", { target: { dataSourceId: "ds_nope" } }, "/target/dataSourceId"],
    ["a drill naming a database", { target: { dataSourceId: "SELF", database: "x" } }, "/target/database"],
    [
      "two checks of one name",
      {
        checks: [
          { name: "x", sql: "SELECT 1", expect: "1" },
          { name: "x", sql: "SELECT 2", expect: "2" },
        ],
      },
      "/checks/1/name",
    ],
    ["an unknown mode", { mode: "rehearsal" }, "/mode"],
    ["an unknown field", { retries: 3 }, null],
  ])("%s → 400", async (_, patch, path) => {
    const body: any = { ...valid(), ...patch };
    if (body.target.dataSourceId === "SELF") body.target.dataSourceId = a.id;
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_INPUT");
    if (path) expect(res.body.details.map((d: any) => d.path)).toContain(path);
  });

  test("another engine family as target → 400", async () => {
    const pgSource = await createSource(h, token, { engine: "postgres", host: "127.0.0.1", port: 5432, database: "x" });
    const res = await post({ ...valid(), target: { dataSourceId: pgSource.id } });
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe("/target/dataSourceId");
    // A refresh of a network target needs a database to name.
    const noDb = await createSource(h, token, { engine: "postgres", host: "127.0.0.1", port: 5432, database: "y" });
    const pgPlan = await h.call("POST", "/restore-plans", {
      token,
      body: { name: "pg-refresh", dataSourceId: pgSource.id, mode: "refresh", scheduleCron: "0 4 * * *", target: { dataSourceId: noDb.id, database: "bad name;" } },
    });
    expect(pgPlan.status).toBe(400);
    expect(pgPlan.body.details[0].path).toBe("/target/database");
  });

  test("the same name twice → 409; another org's data source → 400, its plans → 404", async () => {
    const first = await post(valid());
    const again = await post({ ...valid(), name: first.body.name });
    expect(again.status).toBe(409);
    const other = await h.token("org_plans_other");
    const theirs = await h.call("POST", "/restore-plans", { token: other, body: valid() });
    expect(theirs.status).toBe(400);
    expect(theirs.body.details[0].path).toBe("/dataSourceId");
    for (const [method, path] of [
      ["GET", ""],
      ["PATCH", ""],
      ["DELETE", ""],
      ["POST", "/run-now"],
    ] as const) {
      const res = await h.call(method, `/restore-plans/${first.body.id}${path}`, { token: other, body: method === "PATCH" ? { enabled: false } : undefined });
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 404 });
    }
    expect((await h.call("GET", "/restore-plans", { token: other })).body.items).toEqual([]);
  });

  test("scopes: backup.read reads, backup.restore writes and runs", async () => {
    const reader = await h.token(ORG, { scopes: ["backup.read"] });
    const plan = await createPlan(h, token, { dataSourceId: a.id, mode: "drill", target: { dataSourceId: a.id } });
    expect((await h.call("GET", `/restore-plans/${plan.id}`, { token: reader })).status).toBe(200);
    expect((await h.call("POST", "/restore-plans", { token: reader, body: valid() })).status).toBe(403);
    expect((await h.call("POST", `/restore-plans/${plan.id}/run-now`, { token: reader })).status).toBe(403);
    const operator = await h.token(ORG, { scopes: ["backup.read", "backup.write", "backup.operate"] });
    expect((await h.call("PATCH", `/restore-plans/${plan.id}`, { token: operator, body: { enabled: true } })).status).toBe(403);
  });
});

describe("updates, deletes, runs", () => {
  test("PATCH changes what is given, checks the whole, and is audited", async () => {
    const plan = await createPlan(h, token, { dataSourceId: a.id, mode: "drill", target: { dataSourceId: a.id } });
    expect(plan.nextRunAt).toBeNull();
    const patched = await must(h, token, "PATCH", `/restore-plans/${plan.id}`, {
      enabled: true,
      scheduleCron: "15 3 * * 1",
      timezone: "Europe/Berlin",
      checks: [{ name: "c", sql: "SELECT 1", expect: "1" }],
    });
    expect(patched).toMatchObject({ enabled: true, scheduleCron: "15 3 * * 1", timezone: "Europe/Berlin", mode: "drill" });
    expect(new Date(patched.nextRunAt).getUTCDay()).toBeOneOf([0, 1]);
    const refresh = await must(h, token, "PATCH", `/restore-plans/${plan.id}`, { mode: "refresh", target: { dataSourceId: b.id } });
    expect(refresh).toMatchObject({ mode: "refresh", target: { dataSourceId: b.id, database: null } });
    const bad = await h.call("PATCH", `/restore-plans/${plan.id}`, { token, body: { target: { dataSourceId: a.id } } });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].path).toBe("/target");
    const events = (
      await h.store.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.targetId, plan.id)))
    ).map((e) => e.action);
    expect(events).toEqual(["restore_plan.created", "restore_plan.updated", "restore_plan.updated"]);
  });

  test("run-now queues a run (202, the restore); a second while it is queued → 409; delete cancels it", async () => {
    const plan = await createPlan(h, token, { dataSourceId: a.id, mode: "drill", target: { dataSourceId: a.id } });
    const run = await must(h, token, "POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
    expect(run).toMatchObject({ status: "queued", planId: plan.id, mode: "drill", trigger: "manual", backupJobId: null, verification: null, sourceDataSourceId: a.id });
    const second = await h.call("POST", `/restore-plans/${plan.id}/run-now`, { token });
    expect(second.status).toBe(409);
    expect((await must(h, token, "GET", `/restore-plans/${plan.id}`)).lastRun.id).toBe(run.id);
    expect((await h.call("DELETE", `/restore-plans/${plan.id}`, { token })).status).toBe(204);
    expect((await h.call("GET", `/restore-plans/${plan.id}`, { token })).status).toBe(404);
    const canceled = await must(h, token, "GET", `/restores/${run.id}`);
    expect(canceled.status).toBe("canceled");
    expect(canceled.error.message).toContain("plan was deleted");
  });

  test("a data source with plans: delete → 409, with cascade the plans go too", async () => {
    const c = await sqliteSource("c");
    const plan = await createPlan(h, token, { dataSourceId: a.id, mode: "refresh", target: { dataSourceId: c.id } });
    const refused = await h.call("DELETE", `/data-sources/${c.id}`, { token });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toContain("1 restore plan(s)");
    expect((await h.call("DELETE", `/data-sources/${c.id}?cascade=true`, { token })).status).toBe(204);
    expect((await h.call("GET", `/restore-plans/${plan.id}`, { token })).status).toBe(404);
  });

  test("the scheduler's firing queues a scheduled run once per minute, skips while one is queued, and drops a disabled plan", async () => {
    const plan = await createPlan(h, token, { dataSourceId: b.id, mode: "drill", target: { dataSourceId: b.id }, enabled: true });
    await h.scheduler.plans.start();
    try {
      expect(h.scheduler.plans.hasTimer(plan.id)).toBe(true);
      const at = Date.UTC(2026, 0, 1, 4, 30);
      const fired = await h.scheduler.plans.fire(plan.id, at);
      expect(fired.outcome).toBe("queued");
      const row = (await h.store.db.select().from(restores).where(eq(restores.planId, plan.id)))[0]!;
      expect(row).toMatchObject({ trigger: "schedule", mode: "drill", status: "queued" });
      expect((await h.scheduler.plans.fire(plan.id, at)).outcome).toBe("duplicate");
      expect((await h.scheduler.plans.fire(plan.id, at + 60_000)).outcome).toBe("skipped");
      const skipped = await h.store.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.targetId, plan.id), eq(auditEvents.action, "restore_plan.run_skipped")));
      expect(skipped).toHaveLength(1);
      expect(skipped[0]!.metadata).toMatchObject({ busyRestoreId: row.id, reason: "previous_run_busy" });
      await must(h, token, "PATCH", `/restore-plans/${plan.id}`, { enabled: false });
      expect(h.scheduler.plans.hasTimer(plan.id)).toBe(false);
      expect((await h.scheduler.plans.fire(plan.id, at + 120_000)).outcome).toBe("gone");
    } finally {
      h.scheduler.plans.stop();
    }
  });
});

describe("a real schedule", () => {
  test("an every-minute drill fires at the minute and passes", async () => {
    const own = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: files.path });
    try {
      await own.runner.start();
      const t = await own.token("org_plans_timer");
      const path = join(files.path, "timer.db");
      const db = new Database(path);
      db.run("CREATE TABLE t (id INTEGER PRIMARY KEY)");
      db.run("INSERT INTO t DEFAULT VALUES");
      db.close();
      const source = await createSource(own, t, { engine: "sqlite", path });
      const policy = await createPolicy(own, t, (await managedDestination(own, t)).id, { fingerprint: true });
      await attach(own, t, source.id, policy.id);
      expect((await backupNow(own, t, source.id)).status).toBe("succeeded");
      const plan = await createPlan(own, t, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id }, scheduleCron: "* * * * *", enabled: true });
      await own.scheduler.start();
      const due = Date.parse((await must(own, t, "GET", `/restore-plans/${plan.id}`)).nextRunAt);
      let run: any = null;
      const deadline = Date.now() + 65_000;
      while (!run && Date.now() < deadline) {
        run = (await must(own, t, "GET", `/restores?planId=${plan.id}`)).items[0] ?? null;
        if (!run) await Bun.sleep(200);
      }
      expect(run).not.toBeNull();
      expect(run.trigger).toBe("schedule");
      // Queued within a few seconds of the minute it was due.
      expect(Math.abs(Date.parse(run.queuedAt) - due)).toBeLessThan(5_000);
      const done = await waitForStatus(own, t, `/restores/${run.id}`);
      expect(done.error).toBeNull();
      expect(done.verification).toMatchObject({ status: "passed", rowsCompared: 1 });
    } finally {
      own.scheduler.stop();
      await own.runner.stop(1000);
      own.close();
    }
  }, 90_000);
});
