import { afterAll, beforeAll, expect, test } from "bun:test";
import { attach, backupNow, createPolicy, createSource, managedDestination } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, createRule, deliveries, waitForDelivery } from "../helpers/notify-flow.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { verifySnapdbSignature } from "../helpers/verify-signature.ts";

/**
 * A backup of a real PostgreSQL with a wrong password fails: exactly one `backup.failed`
 * delivery per matching rule (org-wide, the source's, the policy's), none for rules of
 * another source, another policy or another event. A failure that is retried (connection
 * refused) gives one `backup.failed` at its end, not one per attempt.
 */
const SECRET = "whsec-failed-0123456789abcdef";
let h: Harness;
let pg: PgServer;
let token: string;
let w1: Receiver;
let w2: Receiver;

beforeAll(async () => {
  pg = await startPostgres();
  h = await createHarness({ SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1", SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "1" });
  await h.runner.start();
  await h.notifications.sender.start();
  token = await h.token("org_failed");
  w1 = startReceiver();
  w2 = startReceiver();
}, 60_000);
afterAll(async () => {
  await h.runner.stop(1000);
  await h.notifications.stop();
  w1.stop();
  w2.stop();
  h.close();
  await pg.stop();
});

test("a failing backup (wrong password) gives one backup.failed delivery per matching rule", async () => {
  const target = { engine: "postgres", host: pg.host, port: pg.port, database: pg.database };
  const source = await createSource(h, token, target, { username: pg.user, password: "definitely-wrong" });
  const otherSource = await createSource(h, token, target, { username: pg.user, password: pg.password });
  const managed = await managedDestination(h, token);
  const policy = await createPolicy(h, token, managed.id, { retries: 2 });
  const otherPolicy = await createPolicy(h, token, managed.id);
  await attach(h, token, source.id, policy.id);
  const a = await createChannel(h, token, "webhook", { url: `${w1.url}/a`, secret: SECRET });
  const b = await createChannel(h, token, "webhook", { url: `${w2.url}/b`, secret: SECRET });
  const matching = [
    await createRule(h, token, { channelId: a.id, events: ["backup.failed"] }),
    await createRule(h, token, { channelId: a.id, events: ["backup.failed", "backup.succeeded"], dataSourceId: source.id }),
    await createRule(h, token, { channelId: b.id, events: ["backup.failed"], policyId: policy.id }),
  ];
  await createRule(h, token, { channelId: a.id, events: ["backup.failed"], dataSourceId: otherSource.id });
  await createRule(h, token, { channelId: a.id, events: ["backup.succeeded", "restore.failed"], dataSourceId: source.id });
  await createRule(h, token, { channelId: b.id, events: ["backup.failed"], policyId: otherPolicy.id });

  const job = await backupNow(h, token, source.id);
  expect(job.status).toBe("failed");
  const found = await deliveries(h, token, "event=backup.failed");
  expect(found.map((d) => d.ruleId).sort()).toEqual(matching.map((r) => r.id).sort());
  for (const d of found) await waitForDelivery(h, token, d.id);
  await Bun.sleep(1500);
  expect(await deliveries(h, token)).toHaveLength(3);
  expect(w1.received).toHaveLength(2);
  expect(w2.received).toHaveLength(1);
  const bodies = [...w1.received, ...w2.received].map((x) => {
    expect(verifySnapdbSignature(SECRET, x.headers["x-snapdb-signature"]!, x.body)).toBe(true);
    return JSON.parse(x.body);
  });
  expect(new Set(bodies.map((b) => b.id)).size).toBe(3);
  for (const body of bodies) {
    expect(body).toMatchObject({ event: "backup.failed", orgId: "org_failed" });
    expect(body.data).toMatchObject({ id: job.id, status: "failed", dataSourceId: source.id, dataSourceName: source.name, policyId: policy.id, error: job.error, attempt: job.attempt });
    expect(JSON.stringify(body)).not.toContain("definitely-wrong");
  }
}, 60_000);

test("a retried failure gives one backup.failed, after the last attempt", async () => {
  const t = await h.token("org_retried");
  const closed = startReceiver();
  const port = closed.port;
  closed.stop(); // nothing listens there now: connection refused, a retryable failure
  const source = await createSource(h, t, { engine: "postgres", host: "127.0.0.1", port, database: pg.database }, { username: pg.user, password: pg.password });
  const managed = await managedDestination(h, t);
  const policy = await createPolicy(h, t, managed.id, { retries: 2 });
  await attach(h, t, source.id, policy.id);
  const ch = await createChannel(h, t, "webhook", { url: `${w1.url}/retried`, secret: SECRET });
  const rule = await createRule(h, t, { channelId: ch.id, events: ["backup.failed"] });
  const before = w1.received.length;
  const job = await backupNow(h, t, source.id);
  expect({ status: job.status, attempt: job.attempt }).toEqual({ status: "failed", attempt: 3 });
  const found = await deliveries(h, t);
  expect(found.map((d) => [d.event, d.ruleId])).toEqual([["backup.failed", rule.id]]);
  await waitForDelivery(h, t, found[0].id);
  expect(w1.received.slice(before).map((x) => JSON.parse(x.body).data.attempt)).toEqual([3]);
}, 60_000);
