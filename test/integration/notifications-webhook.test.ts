import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, createRule, deliveries, waitForDelivery } from "../helpers/notify-flow.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { tempDir } from "../helpers/tmp.ts";
import { verifySnapdbSignature } from "../helpers/verify-signature.ts";
import { Database } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/daemon.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { NotificationSender } from "../../src/notify/sender.ts";
import { storeSuperuserSql, testStore } from "../helpers/store-matrix.ts";

/**
 * Webhook deliveries against real HTTP receivers on loopback: signed, the same delivery id
 * on every retry, retried on 5xx and 429 (Retry-After honoured), final on other 4xx, and a
 * receiver that never answers delays neither other channels nor the runner.
 */
const SECRET = "whsec-test-0123456789abcdef";
const dir = tempDir("snapdb-notify-webhook");
let h: Harness;
let token: string;
const receivers: Receiver[] = [];
const receiver = () => {
  const r = startReceiver();
  receivers.push(r);
  return r;
};

beforeAll(async () => {
  h = await createHarness({ SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
  await h.notifications.sender.start();
  token = await h.token("org_hooks");
});
afterAll(async () => {
  await h.runner.stop(1000);
  await h.notifications.stop();
  for (const r of receivers) r.stop();
  h.close();
  dir.cleanup();
});

test("the README shows exactly the verification code these receivers use", () => {
  const helper = readFileSync(join(import.meta.dir, "../helpers/verify-signature.ts"), "utf8");
  const snippet = helper.split("// README snippet start\n")[1]!.split("// README snippet end")[0]!;
  expect(snippet.split("\n").length).toBeGreaterThan(8);
  expect(readFileSync(join(REPO_ROOT, "README.md"), "utf8")).toContain("```ts\n" + snippet + "```");
});

describe("a webhook channel", () => {
  test("the test event is a signed POST that the README's verification code accepts", async () => {
    const r = receiver();
    const channel = await createChannel(h, token, "webhook", { url: `${r.url}/hook`, secret: SECRET });
    const { deliveryId } = await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
    expect(deliveryId).toMatch(/^ndl_/);
    const [req] = await r.waitFor(1);
    expect(req!.path).toBe("/hook");
    expect(req!.headers["x-snapdb-event"]).toBe("notification.test");
    expect(req!.headers["x-snapdb-delivery"]).toBe(deliveryId);
    expect(req!.headers["content-type"]).toBe("application/json");
    expect(verifySnapdbSignature(SECRET, req!.headers["x-snapdb-signature"]!, req!.body)).toBe(true);
    expect(verifySnapdbSignature("another-secret-0123456789", req!.headers["x-snapdb-signature"]!, req!.body)).toBe(false);
    expect(verifySnapdbSignature(SECRET, req!.headers["x-snapdb-signature"]!, req!.body.replace("notification.test", "notification.tesT"))).toBe(false);
    const body = JSON.parse(req!.body);
    expect(body).toEqual({
      id: deliveryId,
      event: "notification.test",
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      orgId: "org_hooks",
      data: expect.objectContaining({ channelId: channel.id }),
    });
    const d = await waitForDelivery(h, token, deliveryId);
    expect(d).toMatchObject({ status: "delivered", attempts: 1, lastError: null, nextAttemptAt: null, channelId: channel.id, channelType: "webhook", ruleId: null });
  });

  test("500 then 200: retried after a backoff with the same delivery id; a receiver deduplicating by id acts once", async () => {
    const r = receiver();
    const seen = new Set<string>();
    let acted = 0;
    r.respond = (req, n) => {
      if (n === 1) return new Response("busy", { status: 500 });
      if (!seen.has(req.headers["x-snapdb-delivery"]!)) acted++;
      seen.add(req.headers["x-snapdb-delivery"]!);
      return new Response("ok");
    };
    const channel = await createChannel(h, token, "webhook", { url: `${r.url}/flaky`, secret: SECRET });
    const { deliveryId } = await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
    const pending = await waitForDelivery(h, token, deliveryId, (d) => d.attempts === 1);
    expect(pending).toMatchObject({ status: "pending", lastError: expect.stringContaining("HTTP 500") });
    expect(Date.parse(pending.nextAttemptAt)).toBeGreaterThan(Date.parse(pending.lastAttemptAt));
    const done = await waitForDelivery(h, token, deliveryId);
    expect(done).toMatchObject({ status: "delivered", attempts: 2 });
    expect(r.received.map((x) => x.headers["x-snapdb-delivery"])).toEqual([deliveryId, deliveryId]);
    expect(r.received.map((x) => JSON.parse(x.body).id)).toEqual([deliveryId, deliveryId]);
    expect(r.received[1]!.at - r.received[0]!.at).toBeGreaterThanOrEqual(900);
    for (const x of r.received) expect(verifySnapdbSignature(SECRET, x.headers["x-snapdb-signature"]!, x.body)).toBe(true);
    expect(acted).toBe(1);
  });

  test("429 with Retry-After: the next attempt waits that long", async () => {
    const r = receiver();
    r.respond = (_req, n) => (n === 1 ? new Response("slow down", { status: 429, headers: { "retry-after": "3" } }) : new Response("ok"));
    const channel = await createChannel(h, token, "webhook", { url: r.url, secret: SECRET });
    const { deliveryId } = await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
    await r.waitFor(2);
    expect(r.received[1]!.at - r.received[0]!.at).toBeGreaterThanOrEqual(2900);
    expect(await waitForDelivery(h, token, deliveryId)).toMatchObject({ status: "delivered", attempts: 2 });
  });

  test("429 with Retry-After: 0 or a date in the past: never sooner than the backoff (no tight loop)", async () => {
    const zero = receiver();
    const past = receiver();
    zero.respond = () => new Response("slow down", { status: 429, headers: { "retry-after": "0" } });
    past.respond = () => new Response("slow down", { status: 429, headers: { "retry-after": new Date(Date.now() - 60_000).toUTCString() } });
    const channels = [await createChannel(h, token, "webhook", { url: zero.url, secret: SECRET }), await createChannel(h, token, "webhook", { url: past.url, secret: SECRET })];
    for (const c of channels) await must(h, token, "POST", `/notification-channels/${c.id}/test`, undefined, 202);
    await Promise.all([zero.waitFor(2), past.waitFor(2)]);
    await Bun.sleep(1500);
    for (const c of channels) await must(h, token, "DELETE", `/notification-channels/${c.id}`, undefined, 204);
    for (const r of [zero, past]) {
      // Attempts 1 s (the retry base) then 2 s apart: at most three requests in this time.
      expect(r.received[1]!.at - r.received[0]!.at).toBeGreaterThanOrEqual(900);
      expect(r.received.length).toBeLessThanOrEqual(3);
    }
  });

  test("a 4xx other than 429 fails the delivery at once, with no retry", async () => {
    const r = receiver();
    r.respond = () => new Response("no such hook", { status: 410 });
    const channel = await createChannel(h, token, "webhook", { url: r.url, secret: SECRET });
    const { deliveryId } = await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
    const d = await waitForDelivery(h, token, deliveryId);
    expect(d).toMatchObject({ status: "failed", attempts: 1, nextAttemptAt: null, lastError: `127.0.0.1:${r.port} answered HTTP 410: no such hook` });
    await Bun.sleep(2500);
    expect(r.received.length).toBe(1);
    expect(await deliveries(h, token, `channelId=${channel.id}&status=failed`)).toHaveLength(1);
  });

  test("a receiver's answer with control characters and NUL is kept as one clean line (a PostgreSQL store cannot hold NUL)", async () => {
    const r = receiver();
    r.respond = () => new Response("gone\u0000\u0007 for\r\ngood", { status: 410 });
    const channel = await createChannel(h, token, "webhook", { url: r.url, secret: SECRET });
    const { deliveryId } = await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
    const d = await waitForDelivery(h, token, deliveryId);
    expect(d).toMatchObject({ status: "failed", attempts: 1, lastError: `127.0.0.1:${r.port} answered HTTP 410: gone for good` });
  });

  test("a receiver that never answers delays neither another channel nor the runner's next job", async () => {
    const stuck = receiver();
    stuck.respond = () => new Promise<Response>(() => {}); // holds every request open
    const fast = receiver();
    const slowChannel = await createChannel(h, token, "webhook", { url: stuck.url, secret: SECRET });
    const fastChannel = await createChannel(h, token, "webhook", { url: fast.url, secret: SECRET });
    const managed = await managedDestination(h, token);
    const policy = await createPolicy(h, token, managed.id, { retries: 0 });
    const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(dir.path) });
    await attach(h, token, source.id, policy.id);
    for (const channel of [slowChannel, fastChannel]) await createRule(h, token, { channelId: channel.id, events: ["backup.succeeded"], dataSourceId: source.id });
    await h.runner.start();

    const first = await backupNow(h, token, source.id);
    expect(first.status).toBe("succeeded");
    await fast.waitFor(1, 5000);
    await stuck.waitFor(1, 5000); // the stuck receiver holds the first delivery now
    const started = Date.now();
    const second = await backupNow(h, token, source.id);
    expect(second.status).toBe("succeeded");
    expect(Date.now() - started).toBeLessThan(5000);
    const [, again] = await fast.waitFor(2, 5000);
    expect(JSON.parse(again!.body).data.id).toBe(second.id);
    expect(stuck.received).toHaveLength(1);
    // The held attempt ends at the per-attempt timeout (10 s) and is retried later.
    const held = (await deliveries(h, token, `channelId=${slowChannel.id}`)).find((d) => d.data.id === first.id);
    const timedOut = await waitForDelivery(h, token, held.id, (d) => d.attempts >= 1, 20_000);
    expect(timedOut).toMatchObject({ status: "pending", lastError: `127.0.0.1: no answer within 10 s` });
  }, 60_000);
});

describe("the retry schedule (a sender with short delays: 200 ms doubling, at most 800 ms, given up after 4 s)", () => {
  test("against an always-503 receiver: growing gaps, then the cap, then failed with 'gave up'", async () => {
    // A harness of its own whose built-in sender never starts: only this sender sends.
    const own = await createHarness();
    const r = receiver();
    r.respond = () => new Response("down", { status: 503 });
    const sender = new NotificationSender(
      { db: own.store.db, secrets: new SecretBox(own.master), config: own.config, logger: createLogger("error", {}, () => {}), policy: null },
      { retryBaseMs: 200, maxRetryDelayMs: 800, giveUpAfterMs: 4000, pollMs: 20 },
    );
    try {
      const t = await own.token("org_backoff");
      const channel = await createChannel(own, t, "webhook", { url: r.url, secret: SECRET });
      const { deliveryId } = await must(own, t, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
      await sender.start();
      const d = await waitForDelivery(own, t, deliveryId, undefined, 15_000);
      const gaps = r.received.slice(1).map((x, i) => x.at - r.received[i]!.at);
      // Each gap is at least its delay (a poll of 20 ms and the attempt itself may add a little).
      const wanted = [200, 400, 800, 800, 800, 800];
      expect(gaps.length).toBeGreaterThanOrEqual(4);
      gaps.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(wanted[i]! - 10);
        expect(gap).toBeLessThan(wanted[i]! + 400); // capped: never 1600 ms or more
      });
      expect(d).toMatchObject({ status: "failed", attempts: r.received.length, nextAttemptAt: null });
      expect(d.lastError).toStartWith(`127.0.0.1:${r.port} answered HTTP 503: down (gave up: still failing`);
      // Given up at the first failure whose next delay (800 ms) would end past the 4 s; the
      // last attempt was due within them (and ran a poll or an answer later).
      const lastAt = Date.parse(d.lastAttemptAt) - Date.parse(d.occurredAt);
      expect(lastAt + 800).toBeGreaterThan(4000);
      expect(lastAt).toBeLessThanOrEqual(4000 + 300);
      await Bun.sleep(1000);
      expect(r.received.length).toBe(d.attempts); // nothing after giving up
    } finally {
      await sender.stop();
      own.close();
    }
  }, 30_000);
});

test("the outbox is the job's end transaction: when its commit fails, neither the final status nor a delivery is kept, nor sent", async () => {
  const own = await createHarness({ SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
  const r = receiver();
  try {
    const t = await own.token("org_outbox");
    const policy = await createPolicy(own, t, (await managedDestination(own, t)).id, { retries: 0 });
    const source = await createSource(own, t, { engine: "sqlite", path: smallSqlite(dir.path) });
    await attach(own, t, source.id, policy.id);
    await createRule(own, t, { channelId: (await createChannel(own, t, "webhook", { url: r.url, secret: SECRET })).id, events: ["backup.succeeded", "backup.failed"] });
    // A delivery row written makes its transaction fail at COMMIT, after everything else in it ran.
    if (testStore() === "postgres") {
      await storeSuperuserSql(
        own,
        `CREATE FUNCTION outbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'outbox guard'; END $$;
        CREATE CONSTRAINT TRIGGER outbox_guard AFTER INSERT ON notification_deliveries DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION outbox_guard();`,
      );
    } else {
      const db = new Database(join(own.dataDir, "snapdb.db"));
      db.run("CREATE TABLE guard_parent (id TEXT PRIMARY KEY)");
      db.run("CREATE TABLE guard (parent TEXT REFERENCES guard_parent (id) DEFERRABLE INITIALLY DEFERRED)");
      db.run("CREATE TRIGGER outbox_guard AFTER INSERT ON notification_deliveries BEGIN INSERT INTO guard VALUES ('none'); END");
      db.close();
    }
    await own.runner.start();
    await own.notifications.sender.start();
    const job = await must(own, t, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
    for (const until = Date.now() + 20_000; !own.logLines.some((l) => l.includes("could not record how a backup ended")); await Bun.sleep(50)) {
      if (Date.now() > until) throw new Error("the job's end was recorded");
    }
    await Bun.sleep(1500); // the sender's poll (1 s) has looked since
    expect((await must(own, t, "GET", `/backup-jobs/${job.id}`)).status).toBe("running"); // its lease will hand it to the reaper
    expect(await deliveries(own, t)).toEqual([]);
    expect(r.received).toEqual([]);
  } finally {
    await own.runner.stop(1000);
    await own.notifications.stop();
    own.close();
  }
}, 60_000);
