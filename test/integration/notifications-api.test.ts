import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, createRule } from "../helpers/notify-flow.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { storeGet } from "../helpers/store-sql.ts";
import { tempDir } from "../helpers/tmp.ts";
import { pruneDeliveries } from "../../src/notify/outbox.ts";

/**
 * The notification API over the real app: channels of every type (config checked per type,
 * secrets write-only), rules, cascading delete, the delivery log's filters and pages, scopes
 * and the audit trail. Sending is covered by the other notifications-*.test.ts files.
 */
const dir = tempDir("snapdb-notify-api");
let h: Harness;
let token: string;
const SLACK = "https://hooks.slack.com/services/T000/B000/slack-secret-path";
const SECRET = "whsec-api-0123456789abcdef";

beforeAll(async () => {
  h = await createHarness({ SNAPDB_SMTP_HOST: "127.0.0.1", SNAPDB_SMTP_FROM: "snapdb@example.com", SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
  token = await h.token("org_api");
});
afterAll(() => {
  h.close();
  dir.cleanup();
});

const post = (body: unknown, t = token) => h.call("POST", "/notification-channels", { token: t, body });
const pathOf = (res: { body: any }) => res.body?.details?.[0]?.path;

describe("channels", () => {
  test("each type is created with its config; secrets are never answered", async () => {
    const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ["webhook", { url: "https://example.com/hook", secret: SECRET }, { url: "https://example.com/hook", hasSecret: true }],
      ["slack", { webhookUrl: SLACK }, { webhookHost: "hooks.slack.com", hasWebhookUrl: true }],
      ["discord", { webhookUrl: "https://discord.com/api/webhooks/1/discord-secret" }, { webhookHost: "discord.com", hasWebhookUrl: true }],
      ["teams", { webhookUrl: "https://acme.webhook.office.com/webhookb2/teams-secret" }, { webhookHost: "acme.webhook.office.com", hasWebhookUrl: true }],
      ["ntfy", { url: "https://ntfy.sh/", topic: "snapdb-alerts", token: "tk_ntfy_secret" }, { url: "https://ntfy.sh", topic: "snapdb-alerts", hasToken: true }],
      ["email", { to: ["ops@example.com"], subjectPrefix: "[db]" }, { to: ["ops@example.com"], subjectPrefix: "[db]" }],
    ];
    for (const [type, config, shown] of cases) {
      const res = await post({ name: `${type}-1`, type, config });
      expect({ type, status: res.status }).toEqual({ type, status: 201 });
      expect(res.body).toEqual({ id: expect.stringMatching(/^nch_/), name: `${type}-1`, type, config: shown, createdAt: expect.any(String), updatedAt: expect.any(String) });
      const got = await must(h, token, "GET", `/notification-channels/${res.body.id}`);
      expect(got).toEqual(res.body);
      for (const secret of [SECRET, SLACK, "slack-secret-path", "discord-secret", "teams-secret", "tk_ntfy_secret"]) expect(res.text).not.toContain(secret);
    }
    const list = await must(h, token, "GET", "/notification-channels?type=slack");
    expect(list.items.map((c: any) => c.type)).toEqual(["slack"]);
  });

  test("config is checked per type, with the offending field's path", async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ name: "a", type: "webhook", config: { url: "https://example.com" } }, "/config/secret"],
      [{ name: "a", type: "webhook", config: { url: "ftp://example.com/x", secret: SECRET } }, "/config/url"],
      [{ name: "a", type: "webhook", config: { url: "file:///etc/passwd", secret: SECRET } }, "/config/url"],
      [{ name: "a", type: "webhook", config: { url: "not a url", secret: SECRET } }, "/config/url"],
      [{ name: "a", type: "webhook", config: { url: "https://user:pw@example.com/", secret: SECRET } }, "/config/url"],
      [{ name: "a", type: "webhook", config: { url: "http://169.254.169.254/latest/meta-data", secret: SECRET } }, "/config/url"],
      [{ name: "a", type: "webhook", config: { url: "https://example.com", secret: "short" } }, "/config/secret"],
      [{ name: "a", type: "webhook", config: { url: "https://example.com", secret: SECRET, topic: "x" } }, "/config/topic"],
      [{ name: "a", type: "slack", config: {} }, "/config/webhookUrl"],
      [{ name: "a", type: "slack", config: { webhookUrl: "javascript:alert(1)" } }, "/config/webhookUrl"],
      [{ name: "a", type: "ntfy", config: { url: "https://ntfy.sh" } }, "/config/topic"],
      [{ name: "a", type: "ntfy", config: { url: "https://ntfy.sh", topic: "bad topic/../" } }, "/config/topic"],
      [{ name: "a", type: "email", config: { to: ["not-an-address"] } }, "/config/to/0"],
      [{ name: "a", type: "email", config: { to: [] } }, "/config/to"],
      [{ name: "a", type: "email", config: { to: ["a@example.com"], from: "x\r\nBcc: evil@example.com" } }, "/config/from"],
      [{ name: "a", type: "email", config: { to: ["a@example.com"], subjectPrefix: "a\r\nBcc: b@example.com" } }, "/config/subjectPrefix"],
      [{ name: "a", type: "pager", config: {} }, "/type"],
      [{ name: "a", type: "webhook", config: { url: "https://example.com", secret: SECRET }, extra: 1 }, "/extra"],
      [{ name: " ", type: "webhook", config: { url: "https://example.com", secret: SECRET } }, "/name"],
    ];
    for (const [body, path] of bad) {
      const res = await post(body);
      expect({ body, status: res.status, code: res.body.code, path: pathOf(res) }).toEqual({ body, status: 400, code: "INVALID_INPUT", path });
    }
    expect((await must(h, token, "GET", "/notification-channels?limit=200")).items.some((c: any) => c.name === "a")).toBe(false);
  });

  test("e-mail channels need the operator's SMTP relay", async () => {
    const bare = await createHarness();
    try {
      const res = await bare.call("POST", "/notification-channels", { token: await bare.token("org_x"), body: { name: "mail", type: "email", config: { to: ["a@example.com"] } } });
      expect(res.status).toBe(400);
      expect(res.body.message).toContain("notify.smtp.host");
    } finally {
      bare.close();
    }
  });

  test("a duplicate name is 409; PATCH keeps secrets it is not given, replaces those it is", async () => {
    const ch = await createChannel(h, token, "webhook", { url: "https://example.com/a", secret: SECRET }, "dup");
    expect((await post({ name: "dup", type: "webhook", config: { url: "https://example.com/b", secret: SECRET } })).status).toBe(409);
    const renamed = await must(h, token, "PATCH", `/notification-channels/${ch.id}`, { name: "renamed", config: { url: "https://example.com/c" } });
    expect(renamed.config).toEqual({ url: "https://example.com/c", hasSecret: true });
    const secretOf = async () => (await storeGet<{ secret_ciphertext: string }>(h.store, "SELECT secret_ciphertext FROM notification_channels WHERE id = ?", [ch.id]))!;
    const row = await secretOf();
    expect(row.secret_ciphertext).toBeString();
    await must(h, token, "PATCH", `/notification-channels/${ch.id}`, { config: { secret: "a-brand-new-secret-value" } });
    const after = await secretOf();
    expect(after.secret_ciphertext).not.toBe(row.secret_ciphertext);
    expect((await h.call("PATCH", `/notification-channels/${ch.id}`, { token, body: { config: { webhookUrl: SLACK } } })).body.details[0].path).toBe("/config/webhookUrl");
    expect((await h.call("PATCH", `/notification-channels/${ch.id}`, { token, body: { type: "slack" } })).status).toBe(400);
    const ntfy = await createChannel(h, token, "ntfy", { url: "https://ntfy.sh", topic: "t1", token: "tk_1" });
    expect((await must(h, token, "PATCH", `/notification-channels/${ntfy.id}`, { config: { token: null } })).config).toEqual({ url: "https://ntfy.sh", topic: "t1", hasToken: false });
  });

  test("delete cascades its rules; pending deliveries end failed; another org sees nothing", async () => {
    const ch = await createChannel(h, token, "webhook", { url: "http://127.0.0.1:9/x", secret: SECRET });
    const rule = await createRule(h, token, { channelId: ch.id, events: ["backup.failed"] });
    const { deliveryId } = await must(h, token, "POST", `/notification-channels/${ch.id}/test`, undefined, 202);
    const other = await h.token("org_other");
    expect((await h.call("GET", `/notification-channels/${ch.id}`, { token: other })).status).toBe(404);
    expect((await h.call("DELETE", `/notification-channels/${ch.id}`, { token: other })).status).toBe(404);
    expect((await h.call("POST", `/notification-channels/${ch.id}/test`, { token: other })).status).toBe(404);
    expect((await must(h, other, "GET", "/notification-deliveries")).items).toEqual([]);
    expect((await h.call("DELETE", `/notification-channels/${ch.id}`, { token })).status).toBe(204);
    expect((await h.call("GET", `/notification-rules/${rule.id}`, { token })).status).toBe(404);
    const d = (await must(h, token, "GET", `/notification-deliveries?channelId=${ch.id}`)).items;
    expect(d).toEqual([expect.objectContaining({ id: deliveryId, status: "failed", lastError: "the channel was deleted" })]);
  });
});

describe("rules", () => {
  test("create, read, patch and delete; references must be the org's own", async () => {
    const ch = await createChannel(h, token, "webhook", { url: "https://example.com/r", secret: SECRET });
    const managed = await managedDestination(h, token);
    const policy = await createPolicy(h, token, managed.id);
    const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(dir.path) });
    const rule = await createRule(h, token, { channelId: ch.id, events: ["backup.failed", "backup.stale", "drill.failed"], dataSourceId: source.id, staleAfterSeconds: 3600 });
    expect(rule).toEqual({
      id: expect.stringMatching(/^nru_/),
      channelId: ch.id,
      events: ["backup.failed", "backup.stale", "drill.failed"],
      dataSourceId: source.id,
      policyId: null,
      staleAfterSeconds: 3600,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const patched = await must(h, token, "PATCH", `/notification-rules/${rule.id}`, { dataSourceId: null, policyId: policy.id, staleAfterSeconds: null });
    expect(patched).toMatchObject({ dataSourceId: null, policyId: policy.id, staleAfterSeconds: null });
    expect((await must(h, token, "GET", `/notification-rules?channelId=${ch.id}`)).items.map((r: any) => r.id)).toEqual([rule.id]);

    const otherOrg = await h.token("org_other");
    const foreign = await createChannel(h, otherOrg, "webhook", { url: "https://example.com/f", secret: SECRET });
    const refused: [Record<string, unknown>, number, string][] = [
      [{ channelId: foreign.id, events: ["backup.failed"] }, 404, "/channelId"],
      [{ channelId: ch.id, events: ["backup.failed"], dataSourceId: "ds_missing" }, 404, "/dataSourceId"],
      [{ channelId: ch.id, events: ["backup.failed"], policyId: "pol_missing" }, 404, "/policyId"],
      [{ channelId: ch.id, events: [] }, 400, "/events"],
      [{ channelId: ch.id, events: ["backup.exploded"] }, 400, "/events/0"],
      [{ channelId: ch.id, events: ["notification.test"] }, 400, "/events/0"],
      [{ channelId: ch.id, events: ["backup.failed"], staleAfterSeconds: 0 }, 400, "/staleAfterSeconds"],
    ];
    for (const [body, status, path] of refused) {
      const res = await h.call("POST", "/notification-rules", { token, body });
      expect({ body, status: res.status, path: pathOf(res) }).toEqual({ body, status, path });
    }
    expect((await h.call("DELETE", `/notification-rules/${rule.id}`, { token })).status).toBe(204);
    expect((await h.call("GET", `/notification-rules/${rule.id}`, { token })).status).toBe(404);
  });
});

describe("the delivery log", () => {
  test("newest first, filtered, paged with signed cursors", async () => {
    const t = await h.token("org_log");
    const ch = await createChannel(h, t, "webhook", { url: "http://127.0.0.1:9/x", secret: SECRET });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await must(h, t, "POST", `/notification-channels/${ch.id}/test`, undefined, 202)).deliveryId);
    const first = await must(h, t, "GET", "/notification-deliveries?limit=2");
    const second = await must(h, t, "GET", `/notification-deliveries?limit=2&cursor=${encodeURIComponent(first.cursors.next)}`);
    const third = await must(h, t, "GET", `/notification-deliveries?limit=2&cursor=${encodeURIComponent(second.cursors.next)}`);
    expect([...first.items, ...second.items, ...third.items].map((d: any) => d.id)).toEqual([...ids].reverse());
    expect(third.cursors.next).toBeNull();
    expect(first.items[0]).toMatchObject({ event: "notification.test", status: "pending", attempts: 0, channelType: "webhook" });
    expect((await must(h, t, "GET", "/notification-deliveries?status=delivered")).items).toEqual([]);
    expect((await must(h, t, "GET", "/notification-deliveries?event=backup.failed")).items).toEqual([]);
    expect((await h.call("GET", "/notification-deliveries?status=lost", { token: t })).status).toBe(400);
    expect((await h.call("GET", `/notification-deliveries?cursor=${first.cursors.next}x`, { token: t })).body.details[0].path).toBe("/cursor");
  });

  test("finished deliveries leave the log after 30 days; pending ones stay", async () => {
    const t = await h.token("org_prune");
    const gone = await createChannel(h, t, "webhook", { url: "http://127.0.0.1:9/x", secret: SECRET });
    const kept = await createChannel(h, t, "webhook", { url: "http://127.0.0.1:9/y", secret: SECRET });
    await must(h, t, "POST", `/notification-channels/${gone.id}/test`, undefined, 202);
    const { deliveryId } = await must(h, t, "POST", `/notification-channels/${kept.id}/test`, undefined, 202);
    await must(h, t, "DELETE", `/notification-channels/${gone.id}`, undefined, 204); // its delivery ends failed
    expect(await pruneDeliveries(h.store.db, Date.now() + 29 * 86_400_000)).toBe(0);
    expect(await pruneDeliveries(h.store.db, Date.now() + 31 * 86_400_000)).toBeGreaterThanOrEqual(1);
    expect((await must(h, t, "GET", "/notification-deliveries")).items.map((d: any) => d.id)).toEqual([deliveryId]);
  });
});

describe("scopes and audit", () => {
  test("writes need notify.write, reads backup.read; every change is audited without secrets", async () => {
    const reader = await h.token("org_audit", { scopes: ["backup.read", "audit.read"] });
    const writer = await h.token("org_audit", { scopes: ["notify.write", "backup.read", "audit.read"] });
    expect((await post({ name: "x", type: "webhook", config: { url: "https://example.com", secret: SECRET } }, reader)).status).toBe(403);
    const ch = await createChannel(h, writer, "slack", { webhookUrl: SLACK });
    expect((await h.call("GET", "/notification-channels", { token: reader })).status).toBe(200);
    expect((await h.call("GET", "/notification-deliveries", { token: reader })).status).toBe(200);
    const rule = await createRule(h, writer, { channelId: ch.id, events: ["backup.failed"] });
    await must(h, writer, "PATCH", `/notification-rules/${rule.id}`, { events: ["backup.succeeded"] });
    await must(h, writer, "POST", `/notification-channels/${ch.id}/test`, undefined, 202);
    await must(h, writer, "PATCH", `/notification-channels/${ch.id}`, { config: { webhookUrl: `${SLACK}-rotated` } });
    await must(h, writer, "DELETE", `/notification-rules/${rule.id}`, undefined, 204);
    await must(h, writer, "DELETE", `/notification-channels/${ch.id}`, undefined, 204);
    const audit = await h.call("GET", "/audit-log?limit=200", { token: writer });
    expect(audit.body.items.map((e: any) => e.action).reverse()).toEqual([
      "notification_channel.created",
      "notification_rule.created",
      "notification_rule.updated",
      "notification_channel.tested",
      "notification_channel.updated",
      "notification_rule.deleted",
      "notification_channel.deleted",
    ]);
    expect(audit.text).not.toContain("slack-secret-path");
    expect(audit.body.items[0].metadata).toMatchObject({ name: ch.name, type: "slack", config: { webhookHost: "hooks.slack.com" } });
  });
});
