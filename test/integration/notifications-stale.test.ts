import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, createRule, deliveries, waitForDelivery } from "../helpers/notify-flow.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { tempDir } from "../helpers/tmp.ts";
import { checkStaleness, scheduleIntervalMs } from "../../src/notify/stale.ts";

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

    expect((await checkStaleness(h.store.db, t0 + 650_000))).toBe(0); // 2 × 300 s + 60 s = 660 s
    expect((await checkStaleness(h.store.db, t0 + 670_000))).toBe(1);
    expect((await checkStaleness(h.store.db, t0 + 900_000))).toBe(0); // announced once
    expect((await checkStaleness(h.store.db, t0 + 86_400_000))).toBe(0);
    const [stale] = await deliveries(h, token, "event=backup.stale");
    expect(stale).toMatchObject({ ruleId: rule.id, status: "pending" });
    expect(stale.data).toEqual({
      dataSourceId: source.id,
      dataSourceName: source.name,
      policyId: policy.id,
      policyName: policy.name,
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
    expect((await checkStaleness(h.store.db, t1 + 650_000))).toBe(0);
    expect((await checkStaleness(h.store.db, t1 + 670_000))).toBe(1);
    expect(await events(token)).toEqual(["backup.stale", "backup.recovered", "backup.stale"]);
  });

  test("without any success the clock starts at the attachment; disabled attachments and other orgs are not watched", async () => {
    const token = await h.token("org_fresh");
    const { attachment } = await scheduledSource(token, { scheduleCron: "0 * * * *", timeoutSeconds: 600 });
    const { attachment: off } = await scheduledSource(token, { scheduleCron: "* * * * *", timeoutSeconds: 60 });
    await must(h, token, "PATCH", `/attachments/${off.id}`, { enabled: false });
    const ch = await createChannel(h, token, "webhook", { url: hook.url, secret: SECRET });
    await createRule(h, token, { channelId: ch.id, events: ["backup.stale"] });
    const created = Date.parse(attachment.createdAt);
    const threshold = (2 * 3600 + 600) * 1000;
    const before = (await deliveries(h, token)).length;
    expect((await checkStaleness(h.store.db, created + threshold - 1000))).toBe(0);
    expect((await checkStaleness(h.store.db, created + threshold + 1000))).toBeGreaterThanOrEqual(1);
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
      expect(receiver.received.map((x) => JSON.parse(x.body).event)).toEqual(["backup.stale", "backup.recovered"]);
    } finally {
      await h.notifications.stop();
      receiver.stop();
    }
  }, 30_000);
});
