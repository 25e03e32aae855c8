import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, createRule, deliveries, waitForDelivery } from "../helpers/notify-flow.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { tempDir } from "../helpers/tmp.ts";
import { checkStaleness, ORPHAN_FALLBACK_MS, scheduleIntervalMs } from "../../src/notify/stale.ts";

/**
 * backup.stale and backup.recovered. The threshold comes from the schedules (twice the most
 * frequent attached policy's interval plus its timeout) or the rule's staleAfterSeconds;
 * `checkStaleness(db, now)` is the daemon's periodic check, called here with a later `now`
 * to stand for time passing (the store, the jobs and the rules are real).
 */
const dir = tempDir("snapdb-notify-stale");
const SECRET = "whsec-stale-0123456789abcdef";
let h: Harness;
let hook: Receiver;

beforeAll(async () => {
  h = await createHarness({ SNAPDB_NOTIFY_STALE_CHECK_SECONDS: "1", SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
  await h.runner.start();
  hook = startReceiver();
});
afterAll(async () => {
  await h.runner.stop(1000);
  await h.notifications.stop();
  hook.stop();
  h.close();
  dir.cleanup();
});

async function scheduledSource(token: string, policyExtra: Record<string, unknown>) {
  const managed = await managedDestination(h, token);
  const policy = await createPolicy(h, token, managed.id, { retries: 0, ...policyExtra });
  const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(dir.path) });
  const attachment = await attach(h, token, source.id, policy.id);
  return { policy, source, attachment };
}

const events = async (token: string) => (await deliveries(h, token)).map((d) => d.event).reverse();

describe("the expected cadence", () => {
  test("a schedule's interval is the gap between its next two runs", () => {
    const at = Date.parse("2026-03-01T10:02:00Z");
    expect(scheduleIntervalMs("*/5 * * * *", "UTC", at)).toBe(300_000);
    expect(scheduleIntervalMs("15 2 * * *", "Europe/Berlin", at)).toBe(86_400_000);
    expect(scheduleIntervalMs("0 3 * * 1", "UTC", at)).toBe(7 * 86_400_000);
  });

  test("stale after twice the most frequent policy's interval plus its timeout; once; recovered by the next success", async () => {
    const token = await h.token("org_cadence");
    const { source, policy } = await scheduledSource(token, { scheduleCron: "*/5 * * * *", timeoutSeconds: 60 });
    // A second, rarer policy on the same source does not loosen the threshold.
    const managed = await managedDestination(h, token);
    const weekly = await createPolicy(h, token, managed.id, { scheduleCron: "0 3 * * 1", timeoutSeconds: 3600 });
    await attach(h, token, source.id, weekly.id);
    const ch = await createChannel(h, token, "webhook", { url: hook.url, secret: SECRET });
    const rule = await createRule(h, token, { channelId: ch.id, events: ["backup.stale", "backup.recovered"], dataSourceId: source.id });
    const ok = await backupNow(h, token, source.id, policy.id);
    const t0 = Date.parse(ok.finishedAt);

    expect(await checkStaleness(h.store.db, t0 + 650_000)).toBe(0); // 2 × 300 s + 60 s = 660 s
    expect(await checkStaleness(h.store.db, t0 + 670_000)).toBe(1);
    expect(await checkStaleness(h.store.db, t0 + 900_000)).toBe(0); // announced once
    expect(await checkStaleness(h.store.db, t0 + 86_400_000)).toBe(0);
    const [stale] = await deliveries(h, token, "event=backup.stale");
    expect(stale).toMatchObject({ ruleId: rule.id, status: "pending" });
    expect(stale.data).toEqual({
      dataSourceId: source.id,
      dataSourceName: source.name,
      policyId: policy.id,
      policyName: policy.name,
      attachment: "enabled",
      lastSuccessAt: ok.finishedAt,
      expectedEverySeconds: 300,
      staleAfterSeconds: 660,
      staleSince: new Date(t0 + 660_000).toISOString(),
    });

    const next = await backupNow(h, token, source.id, policy.id);
    const [recovered] = await deliveries(h, token, "event=backup.recovered");
    expect(recovered.data).toMatchObject({ id: next.id, status: "succeeded", recoveredFrom: "stale", dataSourceName: source.name });
    // The mark is gone: a later silence is announced again, counted from the new success.
    const t1 = Date.parse(next.finishedAt);
    expect(await checkStaleness(h.store.db, t1 + 650_000)).toBe(0);
    expect(await checkStaleness(h.store.db, t1 + 670_000)).toBe(1);
    expect(await events(token)).toEqual(["backup.stale", "backup.recovered", "backup.stale"]);
  });

  test("without any success the clock starts at the attachment; a disabled attachment that never backed up and other orgs are not watched", async () => {
    const token = await h.token("org_fresh");
    const { attachment } = await scheduledSource(token, { scheduleCron: "0 * * * *", timeoutSeconds: 600 });
    const { attachment: off } = await scheduledSource(token, { scheduleCron: "* * * * *", timeoutSeconds: 60 });
    await must(h, token, "PATCH", `/attachments/${off.id}`, { enabled: false });
    const ch = await createChannel(h, token, "webhook", { url: hook.url, secret: SECRET });
    await createRule(h, token, { channelId: ch.id, events: ["backup.stale"] });
    const created = Date.parse(attachment.createdAt);
    const threshold = (2 * 3600 + 600) * 1000;
    const before = (await deliveries(h, token)).length;
    expect(await checkStaleness(h.store.db, created + threshold - 1000)).toBe(0);
    expect(await checkStaleness(h.store.db, created + threshold + 1000)).toBeGreaterThanOrEqual(1);
    const mine = (await deliveries(h, token, "event=backup.stale")).slice(0, (await deliveries(h, token)).length - before);
    expect(mine.map((d) => [d.data.dataSourceId, d.data.lastSuccessAt])).toEqual([[attachment.dataSourceId, null]]);
    expect((await must(h, await h.token("org_nobody"), "GET", "/notification-deliveries")).items).toEqual([]);
  });

  test("a failure, then a success: backup.recovered (from failed) to the rules that want it", async () => {
    const token = await h.token("org_flap");
    const { source } = await scheduledSource(token, {});
    const ch = await createChannel(h, token, "webhook", { url: hook.url, secret: SECRET });
    await createRule(h, token, { channelId: ch.id, events: ["backup.recovered"], dataSourceId: source.id });
    await createRule(h, token, { channelId: ch.id, events: ["backup.succeeded"] });
    const ok1 = await backupNow(h, token, source.id);
    expect(ok1.status).toBe("succeeded");
    await h.call("PATCH", `/data-sources/${source.id}`, { token, body: { path: `${dir.path}/gone.db` } });
    expect((await backupNow(h, token, source.id)).status).toBe("failed");
    await h.call("PATCH", `/data-sources/${source.id}`, { token, body: { path: source.path } });
    const ok2 = await backupNow(h, token, source.id);
    const ok3 = await backupNow(h, token, source.id);
    expect([ok2.status, ok3.status]).toEqual(["succeeded", "succeeded"]);
    expect(await events(token)).toEqual(["backup.succeeded", "backup.succeeded", "backup.recovered", "backup.succeeded"]);
    const [recovered] = await deliveries(h, token, "event=backup.recovered");
    expect(recovered.data).toMatchObject({ id: ok2.id, recoveredFrom: "failed" });
  });
});

describe("a source left without an enabled attachment (detached or disabled)", () => {
  // Its schedule is gone, so no job will ever fail: only the stale check can tell anyone.
  async function backedUpThenUnscheduled(org: string, unschedule: (token: string, attachmentId: string) => Promise<unknown>) {
    const token = await h.token(org);
    const { source, policy, attachment } = await scheduledSource(token, { scheduleCron: "*/5 * * * *", timeoutSeconds: 60 });
    const ch = await createChannel(h, token, "webhook", { url: hook.url, secret: SECRET });
    await createRule(h, token, { channelId: ch.id, events: ["backup.stale", "backup.recovered"] });
    const ok = await backupNow(h, token, source.id, policy.id);
    expect(ok.status).toBe("succeeded");
    await unschedule(token, attachment.id);
    return { token, source, policy, t0: Date.parse(ok.finishedAt) };
  }

  for (const [how, org, unschedule] of [
    ["detached", "org_detached", (token: string, id: string) => must(h, token, "DELETE", `/attachments/${id}`, undefined, 204)],
    ["disabled", "org_disabled", (token: string, id: string) => must(h, token, "PATCH", `/attachments/${id}`, { enabled: false })],
  ] as const) {
    test(`${how}: stale after the threshold of its last success's policy, once, recovered by the next success`, async () => {
      const { token, source, policy, t0 } = await backedUpThenUnscheduled(org, unschedule);
      // checkStaleness counts every org's deliveries (earlier tests' sources too): count this org's.
      const staleOnes = () => deliveries(h, token, "event=backup.stale");
      await checkStaleness(h.store.db, t0 + 650_000); // 2 × 300 s + 60 s = 660 s
      expect(await staleOnes()).toEqual([]);
      await checkStaleness(h.store.db, t0 + 670_000);
      expect(await staleOnes()).toHaveLength(1);
      await checkStaleness(h.store.db, t0 + 86_400_000);
      const stale = await staleOnes();
      expect(stale).toHaveLength(1); // once
      expect(stale[0].data).toMatchObject({
        dataSourceId: source.id,
        policyId: policy.id,
        policyName: policy.name,
        attachment: how,
        expectedEverySeconds: 300,
        staleAfterSeconds: 660,
        staleSince: new Date(t0 + 660_000).toISOString(),
      });
      // A success (on demand, with the policy no longer scheduling it) ends the stale period.
      await backupNow(h, token, source.id, policy.id);
      expect((await deliveries(h, token, "event=backup.recovered")).map((d) => d.data.recoveredFrom)).toEqual(["stale"]);
    });
  }

  test("its policy deleted too: the rule's staleAfterSeconds, else twice a day", async () => {
    const { token, source, policy, t0 } = await backedUpThenUnscheduled("org_orphan", (token, id) => must(h, token, "DELETE", `/attachments/${id}`, undefined, 204));
    await must(h, token, "DELETE", `/backup-policies/${policy.id}`, undefined, 204);
    const ch = await createChannel(h, token, "webhook", { url: hook.url, secret: SECRET });
    const quick = await createRule(h, token, { channelId: ch.id, events: ["backup.stale"], dataSourceId: source.id, staleAfterSeconds: 120 });
    await checkStaleness(h.store.db, t0 + 130_000);
    expect((await deliveries(h, token, "event=backup.stale")).map((d) => [d.ruleId, d.data.staleAfterSeconds, d.data.policyId])).toEqual([[quick.id, 120, policy.id]]);
    await checkStaleness(h.store.db, t0 + ORPHAN_FALLBACK_MS - 1000);
    expect(await deliveries(h, token, "event=backup.stale")).toHaveLength(1);
    await checkStaleness(h.store.db, t0 + ORPHAN_FALLBACK_MS + 1000);
    const [late] = await deliveries(h, token, "event=backup.stale");
    expect(late.data).toMatchObject({ policyId: policy.id, policyName: null, attachment: "detached", expectedEverySeconds: null, staleAfterSeconds: 172_800 });
  });

  test("a source backed up on demand with a policy it was never attached to is not watched", async () => {
    const token = await h.token("org_adhoc");
    const managed = await managedDestination(h, token);
    const policy = await createPolicy(h, token, managed.id, { scheduleCron: "* * * * *", timeoutSeconds: 60 });
    const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(dir.path) });
    const ch = await createChannel(h, token, "webhook", { url: hook.url, secret: SECRET });
    await createRule(h, token, { channelId: ch.id, events: ["backup.stale"] });
    const ok = await backupNow(h, token, source.id, policy.id);
    await checkStaleness(h.store.db, Date.parse(ok.finishedAt) + 10 * ORPHAN_FALLBACK_MS);
    expect(await deliveries(h, token, "event=backup.stale")).toEqual([]);
  });
});

describe("the daemon's periodic check (notify.staleCheckSeconds)", () => {
  test("backups that stop: backup.stale once (staleAfterSeconds), backup.recovered after the next success", async () => {
    const token = await h.token("org_periodic");
    const { source } = await scheduledSource(token, {});
    const receiver = startReceiver();
    try {
      const ch = await createChannel(h, token, "webhook", { url: receiver.url, secret: SECRET });
      await createRule(h, token, { channelId: ch.id, events: ["backup.stale", "backup.recovered"], dataSourceId: source.id, staleAfterSeconds: 2 });
      await backupNow(h, token, source.id);
      await h.notifications.start(); // sender + a stale check every second
      const [stale] = await receiver.waitFor(1, 10_000);
      expect(JSON.parse(stale!.body)).toMatchObject({ event: "backup.stale", data: { dataSourceId: source.id, staleAfterSeconds: 2 } });
      await Bun.sleep(3000); // three more checks: nothing new
      expect(receiver.received).toHaveLength(1);
      const ok = await backupNow(h, token, source.id);
      const [, recovered] = await receiver.waitFor(2, 10_000);
      expect(JSON.parse(recovered!.body)).toMatchObject({ event: "backup.recovered", data: { id: ok.id, recoveredFrom: "stale" } });
      const all = await deliveries(h, token);
      for (const d of all) await waitForDelivery(h, token, d.id);
      // The new success starts a new 2 s period: on a slow store the next backup.stale may already be in.
      const got = receiver.received.map((x) => JSON.parse(x.body).event);
      expect(got.slice(0, 2)).toEqual(["backup.stale", "backup.recovered"]);
      expect([[], ["backup.stale"]]).toContainEqual(got.slice(2));
    } finally {
      await h.notifications.stop();
      receiver.stop();
    }
  }, 30_000);
});
