import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { and, eq } from "drizzle-orm";
import { attachments, auditEvents, backupJobs, backupPolicies } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Scheduler } from "../../src/scheduler/scheduler.ts";
import type { QueuedJob } from "../../src/scheduler/types.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createAttachmentVia, createPolicyVia, seedDataSource } from "../helpers/policies-seed.ts";
import { storeRun } from "../helpers/store-sql.ts";
import { testStore } from "../helpers/store-matrix.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

const jobsOf = async (dataSourceId: string) => await h.store.db.select().from(backupJobs).where(eq(backupJobs.dataSourceId, dataSourceId));
const auditOf = async (action: string, targetId?: string) =>
  await h.store.db
    .select()
    .from(auditEvents)
    .where(targetId ? and(eq(auditEvents.action, action), eq(auditEvents.targetId, targetId)) : eq(auditEvents.action, action));
const attRow = async (id: string) => (await h.store.db.select().from(attachments).where(eq(attachments.id, id)))[0]!;
const setStatus = async (jobId: string, status: "running" | "succeeded" | "failed") => await h.store.db.update(backupJobs).set({ status }).where(eq(backupJobs.id, jobId));

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await Bun.sleep(25);
  }
  return await check();
}

describe("scheduler: one firing", () => {
  test("queues a job in one transaction with its audit event and last_scheduled_at", () => {
    return (async () => {
      const org = "org_fire";
      const policy = await createPolicyVia(h, org);
      const att = await createAttachmentVia(h, org, policy.id);
      const clock = Date.UTC(2026, 10, 27, 2, 15, 5);
      const s = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "none", now: () => clock });
      const woken: QueuedJob[] = [];
      s.onJobQueued((job) => woken.push(job));
      const scheduledAt = Date.UTC(2026, 10, 27, 2, 15);
      const result = await s.fire(att.id, scheduledAt);
      expect(result.outcome).toBe("queued");
      const [job] = await jobsOf(att.dataSourceId);
      expect(job).toMatchObject({
        orgId: org,
        dataSourceId: att.dataSourceId,
        policyId: policy.id,
        attachmentId: att.id,
        destinationId: policy.destinationId,
        trigger: "schedule",
        status: "queued",
        attempt: 1,
        queuedAt: clock,
      });
      expect(woken).toEqual([{ id: job!.id, orgId: org, dataSourceId: att.dataSourceId, attachmentId: att.id, policyId: policy.id }]);
      const [event] = await auditOf("backup_job.queued", job!.id);
      expect(event).toMatchObject({ orgId: org, actorType: "system", actorId: "scheduler", targetType: "backup_job" });
      expect(event!.metadata).toMatchObject({ trigger: "schedule", attachmentId: att.id, scheduledAt: new Date(scheduledAt).toISOString() });
      expect((await attRow(att.id)).lastScheduledAt).toBe(scheduledAt);
      // The same scheduled time twice (catch-up and timer, say) acts once.
      expect((await s.fire(att.id, scheduledAt)).outcome).toBe("duplicate");

      // The API shows it as the attachment's last job.
      const got = await h.call("GET", `/attachments/${att.id}`, { token: await h.token(org) });
      expect(got.body.lastJob.id).toBe(job!.id);
      expect(got.body.lastScheduledAt).toBe(new Date(scheduledAt).toISOString());
    })();
  });

  test("a source with a queued or running job gets a skipped run, never a second job", async () => {
    const org = "org_busy";
    const p1 = await createPolicyVia(h, org);
    const p2 = await createPolicyVia(h, org);
    const ds = await seedDataSource(h, org);
    const a1 = await createAttachmentVia(h, org, p1.id, ds);
    const a2 = await createAttachmentVia(h, org, p2.id, ds);
    const s = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "none" });
    const t0 = Date.UTC(2026, 0, 1, 0, 0);
    expect((await s.fire(a1.id, t0)).outcome).toBe("queued");
    const first = (await jobsOf(ds))[0]!;
    // Another policy on the same source, same minute: skipped while the first is queued…
    const skipped = await s.fire(a2.id, t0);
    expect(skipped).toEqual({ outcome: "skipped", reason: "source_busy", busyJobId: first.id });
    // …and while it runs.
    await setStatus(first.id, "running");
    expect((await s.fire(a1.id, t0 + 60_000)).outcome).toBe("skipped");
    expect(await jobsOf(ds)).toHaveLength(1);
    const events = await auditOf("attachment.run_skipped");
    expect(events.filter((e) => e.targetId === a2.id)[0]!.metadata).toMatchObject({ reason: "source_busy", busyJobId: first.id, busyJobStatus: "queued" });
    expect(events.filter((e) => e.targetId === a1.id)[0]!.metadata).toMatchObject({ reason: "source_busy", busyJobStatus: "running" });
    expect((await attRow(a1.id)).lastScheduledAt).toBe(t0 + 60_000); // a skipped run is still a run acted on
    // Once it is done, the next run queues again.
    await setStatus(first.id, "succeeded");
    expect((await s.fire(a2.id, t0 + 120_000)).outcome).toBe("queued");
    expect(await jobsOf(ds)).toHaveLength(2);
  });

  test("a disabled or deleted attachment fires nothing and loses its timer", async () => {
    const org = "org_gone";
    const policy = await createPolicyVia(h, org);
    const att = await createAttachmentVia(h, org, policy.id, undefined, false);
    const s = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "none" });
    expect((await s.fire(att.id, Date.now())).outcome).toBe("gone");
    expect((await s.fire("att_missing", Date.now())).outcome).toBe("gone");
    expect(await jobsOf(att.dataSourceId)).toHaveLength(0);
  });
});

describe("scheduler: timers follow the API without a restart", () => {
  test("create, disable, enable, re-schedule, delete, cascade", async () => {
    const org = "org_sync";
    const token = await h.token(org);
    await h.scheduler.start();
    try {
      const policy = await createPolicyVia(h, org, { scheduleCron: "0 3 * * *", timezone: "UTC" });
      const att = await createAttachmentVia(h, org, policy.id);
      expect(h.scheduler.hasTimer(att.id)).toBe(true);
      const fire = h.scheduler.nextFireOf(att.id)!;
      expect(new Date(fire).getUTCHours()).toBe(3);
      expect(new Date(att.nextRunAt).getTime()).toBe(fire);

      await h.call("PATCH", `/attachments/${att.id}`, { token, body: { enabled: false } });
      expect(h.scheduler.hasTimer(att.id)).toBe(false);
      await h.call("PATCH", `/attachments/${att.id}`, { token, body: { enabled: true } });
      expect(h.scheduler.hasTimer(att.id)).toBe(true);

      await h.call("PATCH", `/backup-policies/${policy.id}`, { token, body: { scheduleCron: "45 4 * * *", timezone: "Asia/Tokyo" } });
      const moved = new Date(h.scheduler.nextFireOf(att.id)!);
      expect([moved.getUTCHours(), moved.getUTCMinutes()]).toEqual([19, 45]); // 04:45 in Tokyo (UTC+9)

      const second = await createAttachmentVia(h, org, policy.id);
      expect(h.scheduler.hasTimer(second.id)).toBe(true);
      await h.call("DELETE", `/attachments/${second.id}`, { token });
      expect(h.scheduler.hasTimer(second.id)).toBe(false);

      await h.call("DELETE", `/backup-policies/${policy.id}?cascade=true`, { token });
      expect(h.scheduler.hasTimer(att.id)).toBe(false);
    } finally {
      h.scheduler.stop();
    }
  });
});

describe("scheduler: reconcile", () => {
  test("rows changed behind the scheduler's back (a data source cascade) are picked up by reconcile", async () => {
    const org = "org_reconcile";
    await h.scheduler.start();
    try {
      const policy = await createPolicyVia(h, org);
      const att = await createAttachmentVia(h, org, policy.id);
      expect(h.scheduler.hasTimer(att.id)).toBe(true);
      await h.store.db.delete(attachments).where(eq(attachments.id, att.id));
      const added = await createAttachmentVia(h, org, policy.id);
      await h.store.db.update(attachments).set({ enabled: false }).where(eq(attachments.id, added.id));
      await h.scheduler.reconcile();
      expect(h.scheduler.hasTimer(att.id)).toBe(false);
      expect(h.scheduler.hasTimer(added.id)).toBe(false);
    } finally {
      h.scheduler.stop();
    }
  });
});

describe("scheduler: real timers", () => {
  test("a croner timer fires the cron → job path for real", async () => {
    const org = "org_real";
    const policy = await createPolicyVia(h, org);
    const att = await createAttachmentVia(h, org, policy.id);
    // Test hook: every second instead of the policy's nightly pattern.
    const s = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "none", timerPattern: (a) => (a.id === att.id ? "* * * * * *" : a.scheduleCron) });
    const woken: string[] = [];
    s.onJobQueued((job) => woken.push(job.id));
    await s.start();
    try {
      expect(await until(() => woken.length > 0, 3000)).toBe(true);
      const jobs = await jobsOf(att.dataSourceId);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]).toMatchObject({ id: woken[0], trigger: "schedule", status: "queued", attachmentId: att.id });
      // Later firings while that job is still queued are skipped, not queued twice.
      expect(await until(async () => (await auditOf("attachment.run_skipped", att.id)).length > 0, 3000)).toBe(true);
      expect(await jobsOf(att.dataSourceId)).toHaveLength(1);
    } finally {
      s.stop();
    }
  });

  test("1,000 attachments firing in the same minute queue exactly 1,000 jobs", async () => {
    // Its own store, so the other tests' schedulers do not load these 1,000 timers.
    const h = await createHarness();
    const org = "org_thousand";
    const policy = await createPolicyVia(h, org, { scheduleCron: "* * * * *" });
    const now = Date.now();
    const ids: string[] = [];
    await h.store.db.transaction(async (tx) => {
      for (let i = 0; i < 1000; i++) {
        const id = newId("att");
        ids.push(id);
        const ds = await seedDataSource(h, org);
        await tx.insert(attachments).values({ id, orgId: org, dataSourceId: ds, policyId: policy.id, enabled: true, createdAt: now, updatedAt: now });
      }
    });
    // All 1,000 timers due at the same second, a couple of seconds from now.
    // (Margins are generous: on a loaded 2-core CI machine creating 1,000 timers takes a while.)
    const second = new Date(Date.now() + 4000).getSeconds();
    const s = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "none", timerPattern: (a) => (a.policyId === policy.id ? `${second} * * * * *` : a.scheduleCron) });
    let woken = 0;
    s.onJobQueued(() => woken++);
    await s.start();
    try {
      expect(s.timerCount).toBeGreaterThanOrEqual(1000);
      // One croner timer serves all of them (same pattern and zone), not one each.
      expect(s.groupCount).toBe(1);
      expect(await until(() => woken >= 1000, 25_000)).toBe(true);
      await Bun.sleep(200);
      const queued = await h.store.db
        .select()
        .from(backupJobs)
        .where(and(eq(backupJobs.orgId, org), eq(backupJobs.policyId, policy.id)));
      expect(queued).toHaveLength(1000);
      expect(new Set(queued.map((j) => j.attachmentId))).toEqual(new Set(ids));
      expect(queued.every((j) => j.status === "queued" && j.trigger === "schedule")).toBe(true);
      expect(woken).toBe(1000);
      expect(
        await h.store.db
          .select()
          .from(auditEvents)
          .where(and(eq(auditEvents.orgId, org), eq(auditEvents.action, "backup_job.queued"))),
      ).toHaveLength(1000);
    } finally {
      s.stop();
      h.close();
    }
  }, 45_000);
});

describe("scheduler: a group's firings in one transaction", () => {
  test("one firing that fails is rolled back alone; the others' jobs are announced after they commit", async () => {
    // Its own store: the module's helpers (jobsOf, auditOf, attRow) read the shared one.
    const own = await createHarness();
    const jobs = async (dataSourceId: string) => await own.store.db.select().from(backupJobs).where(eq(backupJobs.dataSourceId, dataSourceId));
    const org = "org_slice";
    const policy = await createPolicyVia(own, org, { scheduleCron: "* * * * *" });
    const atts = [];
    for (let i = 0; i < 5; i++) atts.push(await createAttachmentVia(own, org, policy.id));
    // The store itself refuses the third source's job (as a full disk or a constraint would).
    const failing = atts[2]!;
    if (testStore() === "postgres") {
      await storeRun(
        own.store,
        `CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.data_source_id = '${failing.dataSourceId}' THEN RAISE EXCEPTION 'refused'; END IF;
           RETURN NEW;
         END $$`,
      );
      await storeRun(own.store, "CREATE TRIGGER refuse_job BEFORE INSERT ON backup_jobs FOR EACH ROW EXECUTE FUNCTION refuse_job()");
    } else {
      await storeRun(own.store, `CREATE TRIGGER refuse_job BEFORE INSERT ON backup_jobs WHEN NEW.data_source_id = '${failing.dataSourceId}' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    }
    const second = new Date(Date.now() + 2000).getSeconds();
    const s = new Scheduler({ db: own.store.db, logger: silentLogger, catchUp: "none", timerPattern: (a) => (a.policyId === policy.id ? `${second} * * * * *` : a.scheduleCron) });
    const announced: { id: string; inTransaction: boolean; committed: boolean }[] = [];
    s.onJobQueued(async (job) => {
      // A listener (the runner) must find the job committed: no transaction is open around it.
      // On PostgreSQL `jobs` reads through another pooled connection, which sees committed rows only.
      const inTransaction = testStore() === "sqlite" && own.store.sqlite.inTransaction;
      announced.push({ id: job.id, inTransaction, committed: (await jobs(job.dataSourceId)).length === 1 });
    });
    await s.start();
    try {
      expect(await until(() => announced.length >= 4, 10_000)).toBe(true);
      await Bun.sleep(200);
      expect(announced).toHaveLength(4);
      expect(announced.every((a) => !a.inTransaction && a.committed)).toBe(true);
      for (const att of atts) {
        const found = await jobs(att.dataSourceId);
        const row = (await own.store.db.select().from(attachments).where(eq(attachments.id, att.id)))[0]!;
        if (att === failing) {
          expect(found).toHaveLength(0);
          // Rolled back with its savepoint: not even the scheduled time was recorded.
          expect(row.lastScheduledAt).toBeNull();
        } else {
          expect(found).toHaveLength(1);
          expect(row.lastScheduledAt).not.toBeNull();
          expect(announced.map((a) => a.id)).toContain(found[0]!.id);
          const events = await own.store.db
            .select()
            .from(auditEvents)
            .where(and(eq(auditEvents.action, "backup_job.queued"), eq(auditEvents.targetId, found[0]!.id)));
          expect(events).toHaveLength(1);
        }
      }
    } finally {
      s.stop();
      own.close();
    }
  }, 20_000);
});

describe("scheduler: catch-up at start", () => {
  const HOUR = 3600_000;
  async function missedSetup(org: string) {
    const policy = await createPolicyVia(h, org, { scheduleCron: "0 * * * *" });
    const att = await createAttachmentVia(h, org, policy.id);
    // Created and last run well before "now": the daemon was down for hours.
    const longAgo = Date.now() - 10 * HOUR;
    await h.store.db.update(attachments).set({ createdAt: longAgo, updatedAt: longAgo, lastScheduledAt: longAgo }).where(eq(attachments.id, att.id));
    await h.store.db.update(backupPolicies).set({ updatedAt: longAgo }).where(eq(backupPolicies.id, policy.id));
    return att;
  }

  test(`catchUp = "one": one run for an attachment that missed several`, async () => {
    const att = await missedSetup("org_catch");
    const clock = Date.now();
    const s = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "one", now: () => clock });
    try {
      const started = await s.start();
      expect(started.catchUps).toBeGreaterThanOrEqual(1);
      const jobs = await jobsOf(att.dataSourceId);
      expect(jobs).toHaveLength(1);
      const lastHour = Math.floor(clock / HOUR) * HOUR;
      expect((await attRow(att.id)).lastScheduledAt).toBe(lastHour);
      expect((await auditOf("backup_job.queued", jobs[0]!.id))[0]!.metadata).toMatchObject({ catchUp: true, scheduledAt: new Date(lastHour).toISOString() });
    } finally {
      s.stop();
    }
    // A second start (nothing missed since) does not catch up again.
    const again = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "one", now: () => clock + 60_000 });
    await again.start();
    again.stop();
    expect(await jobsOf(att.dataSourceId)).toHaveLength(1);
  });

  test(`catchUp = "none" and never-due attachments do not run at start`, async () => {
    const att = await missedSetup("org_nocatch");
    const s = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "none" });
    await s.start();
    s.stop();
    expect(await jobsOf(att.dataSourceId)).toHaveLength(0);
    // Created after the last scheduled time: nothing was missed.
    const fresh = await createAttachmentVia(h, "org_nocatch", (await createPolicyVia(h, "org_nocatch", { scheduleCron: "0 0 1 1 *" })).id);
    const one = new Scheduler({ db: h.store.db, logger: silentLogger, catchUp: "one" });
    await one.start();
    one.stop();
    expect(await jobsOf(fresh.dataSourceId)).toHaveLength(0);
  });
});
