import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { attachments, auditEvents, backupJobs } from "../../src/db/schema.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createPolicyVia, seedDataSource } from "../helpers/policies-seed.ts";
import { storeRun } from "../helpers/store-sql.ts";
import { testStore } from "../helpers/store-matrix.ts";

let h: Harness;
let token: string;
const ORG = "org_att";

beforeAll(async () => {
  h = await createHarness();
  token = await h.token(ORG);
});
afterAll(() => h.close());

const post = (body: unknown) => h.call("POST", "/attachments", { token, body });
const actions = async (targetId: string) => (await h.store.db.select().from(auditEvents).where(eq(auditEvents.targetId, targetId))).map((e) => e.action);

async function insertJob(id: string, att: { id: string; dataSourceId: string; policyId: string }, status: string, queuedAt: number) {
  await h.store.db.insert(backupJobs).values({ id, orgId: ORG, dataSourceId: att.dataSourceId, policyId: att.policyId, attachmentId: att.id, trigger: "schedule", status: status as any, queuedAt });
}

describe("attachments", () => {
  test("create → 201 with nextRunAt from the policy's cron and zone; GET shows lastJob", async () => {
    const policy = await createPolicyVia(h, ORG, { scheduleCron: "30 2 * * *", timezone: "Europe/Berlin" });
    const ds = await seedDataSource(h, ORG);
    const res = await post({ dataSourceId: ds, policyId: policy.id });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ dataSourceId: ds, policyId: policy.id, enabled: true, lastJob: null, lastScheduledAt: null });
    const next = new Date(res.body.nextRunAt);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(25 * 3600_000);
    const berlin = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(next);
    expect(berlin).toBe("02:30");
    expect(await actions(res.body.id)).toEqual(["attachment.created"]);

    await insertJob("job_01AAAAAAAAAAAAAAAAAAAAAAAA", res.body, "failed", 1_000);
    await insertJob("job_01BBBBBBBBBBBBBBBBBBBBBBBB", res.body, "succeeded", 2_000);
    const got = await h.call("GET", `/attachments/${res.body.id}`, { token });
    expect(got.status).toBe(200);
    expect(got.body.lastJob).toMatchObject({ id: "job_01BBBBBBBBBBBBBBBBBBBBBBBB", status: "succeeded", trigger: "schedule", queuedAt: new Date(2000).toISOString(), error: null });
  });

  test("enabled: false → no nextRunAt; PATCH toggles it and audits; no-op PATCH writes nothing", async () => {
    const policy = await createPolicyVia(h, ORG);
    const res = await post({ dataSourceId: await seedDataSource(h, ORG), policyId: policy.id, enabled: false });
    expect(res.body.nextRunAt).toBeNull();
    const on = await h.call("PATCH", `/attachments/${res.body.id}`, { token, body: { enabled: true } });
    expect(on.status).toBe(200);
    expect(on.body.enabled).toBe(true);
    expect(on.body.nextRunAt).not.toBeNull();
    await h.call("PATCH", `/attachments/${res.body.id}`, { token, body: { enabled: true } });
    expect(await actions(res.body.id)).toEqual(["attachment.created", "attachment.updated"]);
    expect((await h.call("PATCH", `/attachments/${res.body.id}`, { token, body: { enabled: false, policyId: "x" } })).status).toBe(400);
    expect((await h.call("PATCH", `/attachments/${res.body.id}`, { token, body: {} })).status).toBe(400);
  });

  test("data source and policy must exist in the org", async () => {
    const policy = await createPolicyVia(h, ORG);
    const foreignDs = await seedDataSource(h, "org_elsewhere");
    const foreignPolicy = await createPolicyVia(h, "org_elsewhere");
    const a = await post({ dataSourceId: foreignDs, policyId: policy.id });
    expect([a.status, a.body.details[0].path]).toEqual([404, "/dataSourceId"]);
    const b = await post({ dataSourceId: await seedDataSource(h, ORG), policyId: foreignPolicy.id });
    expect([b.status, b.body.details[0].path]).toEqual([404, "/policyId"]);
    expect((await post({ dataSourceId: await seedDataSource(h, ORG), policyId: policy.id, extra: 1 })).status).toBe(400);
  });

  test("the same policy on the same data source twice → 409, also under concurrent requests", async () => {
    const policy = await createPolicyVia(h, ORG);
    const ds = await seedDataSource(h, ORG);
    expect((await post({ dataSourceId: ds, policyId: policy.id })).status).toBe(201);
    const again = await post({ dataSourceId: ds, policyId: policy.id });
    expect([again.status, again.body.code]).toEqual([409, "CONFLICT"]);

    const ds2 = await seedDataSource(h, ORG);
    const results = await Promise.all(Array.from({ length: 20 }, () => post({ dataSourceId: ds2, policyId: policy.id })));
    expect(results.map((r) => r.status).sort()).toEqual([201, ...Array(19).fill(409)]);
    expect(await h.store.db.select().from(attachments).where(eq(attachments.dataSourceId, ds2))).toHaveLength(1);
  });

  test("a pair inserted after the pre-check still ends as 409 (the unique index decides)", async () => {
    const policy = await createPolicyVia(h, ORG);
    const ds = await seedDataSource(h, ORG);
    // Simulates a writer that wins the race after the service's pre-check: a trigger inserts
    // the same pair just before our insert, so only the unique index can refuse it.
    const race = `race_${ds.toLowerCase()}`;
    if (testStore() === "postgres") {
      await storeRun(
        h.store,
        `CREATE FUNCTION ${race}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.data_source_id = '${ds}' AND NEW.id NOT LIKE 'att_race%' THEN
             INSERT INTO attachments (id, org_id, data_source_id, policy_id, enabled, created_at, updated_at)
               VALUES ('att_race' || NEW.id, NEW.org_id, NEW.data_source_id, NEW.policy_id, true, 0, 0);
           END IF;
           RETURN NEW;
         END $$`,
      );
      await storeRun(h.store, `CREATE TRIGGER ${race} BEFORE INSERT ON attachments FOR EACH ROW EXECUTE FUNCTION ${race}()`);
    } else {
      await storeRun(
        h.store,
        `CREATE TEMP TRIGGER ${race} BEFORE INSERT ON attachments WHEN NEW.data_source_id = '${ds}' AND NEW.id NOT LIKE 'att_race%'
         BEGIN INSERT INTO attachments (id, org_id, data_source_id, policy_id, enabled, created_at, updated_at)
               VALUES ('att_race' || NEW.id, NEW.org_id, NEW.data_source_id, NEW.policy_id, 1, 0, 0); END`,
      );
    }
    try {
      const res = await post({ dataSourceId: ds, policyId: policy.id });
      expect([res.status, res.body.code]).toEqual([409, "CONFLICT"]);
    } finally {
      await storeRun(h.store, testStore() === "postgres" ? `DROP TRIGGER ${race} ON attachments` : `DROP TRIGGER ${race}`);
    }
  });

  test("list filters by dataSourceId, policyId and enabled; pages newest first", async () => {
    const t2 = await h.token("org_list");
    const p1 = await createPolicyVia(h, "org_list");
    const p2 = await createPolicyVia(h, "org_list");
    const ds = await seedDataSource(h, "org_list");
    const mk = async (policyId: string, dataSourceId: string, enabled: boolean) => (await h.call("POST", "/attachments", { token: t2, body: { policyId, dataSourceId, enabled } })).body.id as string;
    const a = await mk(p1.id, ds, true);
    const b = await mk(p2.id, ds, false);
    const c = await mk(p1.id, await seedDataSource(h, "org_list"), true);
    const ids = async (q: string) => (await h.call("GET", `/attachments${q}`, { token: t2 })).body.items.map((x: any) => x.id);
    expect(await ids("")).toEqual([c, b, a]);
    expect(await ids(`?dataSourceId=${ds}`)).toEqual([b, a]);
    expect(await ids(`?policyId=${p1.id}`)).toEqual([c, a]);
    expect(await ids(`?enabled=false`)).toEqual([b]);
    expect(await ids(`?enabled=true&policyId=${p1.id}&dataSourceId=${ds}`)).toEqual([a]);
    const page = await h.call("GET", "/attachments?limit=2", { token: t2 });
    expect(page.body.items).toHaveLength(2);
    const rest = await h.call("GET", `/attachments?limit=2&cursor=${page.body.cursors.next}`, { token: t2 });
    expect(rest.body.items.map((x: any) => x.id)).toEqual([a]);
    expect(rest.body.cursors.next).toBeNull();
    expect((await h.call("GET", "/attachments?enabled=yes", { token: t2 })).status).toBe(400);
  });

  test("DELETE detaches → 204; jobs stay", async () => {
    const policy = await createPolicyVia(h, ORG);
    const att = (await post({ dataSourceId: await seedDataSource(h, ORG), policyId: policy.id })).body;
    await insertJob("job_01CCCCCCCCCCCCCCCCCCCCCCCC", att, "succeeded", 3_000);
    expect((await h.call("DELETE", `/attachments/${att.id}`, { token })).status).toBe(204);
    expect((await h.call("GET", `/attachments/${att.id}`, { token })).status).toBe(404);
    expect((await h.call("DELETE", `/attachments/${att.id}`, { token })).status).toBe(404);
    expect(await h.store.db.select().from(backupJobs).where(eq(backupJobs.attachmentId, att.id))).toHaveLength(1);
    expect(await actions(att.id)).toEqual(["attachment.created", "attachment.deleted"]);
    // Detached, the pair can be attached again.
    expect((await post({ dataSourceId: att.dataSourceId, policyId: policy.id })).status).toBe(201);
  });
});
