import { afterAll, beforeAll, expect, test } from "bun:test";
import { renameSync } from "node:fs";
import { attach, backupNow, createPolicy, createSource, managedDestination } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, createRule } from "../helpers/notify-flow.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Slack, Discord, Teams and ntfy receive readable messages about real backups: a failure
 * (the SQLite file is gone), then a success, which is also `backup.recovered`. Each message
 * names the data source and policy, the status, size, duration, the error code and message,
 * and links to the job under http.publicUrl. The receivers are real HTTP servers on loopback.
 */
const dir = tempDir("snapdb-notify-chat");
const PUBLIC = "https://backups.example.com";
let h: Harness;
let token: string;
const r: Record<string, Receiver> = {};

beforeAll(async () => {
  h = await createHarness({ SNAPDB_PUBLIC_URL: PUBLIC, SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
  await h.notifications.sender.start();
  await h.runner.start();
  token = await h.token("org_chat");
  for (const type of ["slack", "discord", "teams", "ntfy"]) r[type] = startReceiver();
});
afterAll(async () => {
  await h.runner.stop(1000);
  await h.notifications.stop();
  for (const x of Object.values(r)) x.stop();
  h.close();
  dir.cleanup();
});

test("a failed, then a succeeded and recovered backup, as each chat shows them", async () => {
  const file = smallSqlite(dir.path, 500);
  const source = await createSource(h, token, { engine: "sqlite", path: file, name: "orders <prod> & @everyone" });
  const managed = await managedDestination(h, token);
  const policy = await createPolicy(h, token, managed.id, { name: "nightly", retries: 0 });
  await attach(h, token, source.id, policy.id);
  const channels = {
    slack: await createChannel(h, token, "slack", { webhookUrl: `${r.slack!.url}/services/T0/B0/xyz` }),
    discord: await createChannel(h, token, "discord", { webhookUrl: `${r.discord!.url}/api/webhooks/1/abc` }),
    teams: await createChannel(h, token, "teams", { webhookUrl: `${r.teams!.url}/webhookb2/def` }),
    ntfy: await createChannel(h, token, "ntfy", { url: r.ntfy!.url, topic: "backups", token: "tk_chat_token" }),
  };
  for (const ch of Object.values(channels)) await createRule(h, token, { channelId: ch.id, events: ["backup.failed", "backup.succeeded", "backup.recovered"], dataSourceId: source.id });

  renameSync(file, `${file}.away`);
  const failed = await backupNow(h, token, source.id);
  expect(failed.status).toBe("failed");
  const link = `${PUBLIC}/backup-jobs/${failed.id}`;
  const [slack] = await r.slack!.waitFor(1);
  const text = JSON.parse(slack!.body).text as string;
  expect(text).toContain("Backup failed: orders &lt;prod&gt; &amp; @everyone");
  expect(text).toContain(`*Policy:* nightly (${policy.id})`);
  expect(text).toContain("*Status:* failed");
  expect(text).toContain(`*Error:* ${failed.error.code}`);
  expect(text).toContain(failed.error.message.slice(0, 40).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;"));
  expect(text).toContain(`<${link}|Open in snapdb>`);
  expect(slack!.path).toBe("/services/T0/B0/xyz");

  const [discord] = await r.discord!.waitFor(1);
  const d = JSON.parse(discord!.body);
  expect(d.allowed_mentions).toEqual({ parse: [] });
  expect(d.embeds[0]).toMatchObject({ title: "Backup failed: orders <prod> & @everyone", url: link, description: failed.error.message });
  expect(d.embeds[0].fields).toEqual(expect.arrayContaining([{ name: "Error", value: failed.error.code, inline: true }, expect.objectContaining({ name: "Policy", value: `nightly (${policy.id})` })]));

  const [teams] = await r.teams!.waitFor(1);
  const card = JSON.parse(teams!.body).attachments[0];
  expect(card.contentType).toBe("application/vnd.microsoft.card.adaptive");
  expect(card.content.body[0].text).toBe("Backup failed: orders <prod> & @everyone");
  expect(card.content.body[1].facts).toEqual(
    expect.arrayContaining([
      { title: "Status", value: "failed" },
      { title: "Error", value: failed.error.code },
    ]),
  );
  expect(card.content.actions).toEqual([{ type: "Action.OpenUrl", title: "Open in snapdb", url: link }]);

  const [ntfy] = await r.ntfy!.waitFor(1);
  expect(ntfy!.headers.authorization).toBe("Bearer tk_chat_token");
  expect(JSON.parse(ntfy!.body)).toMatchObject({ topic: "backups", title: "Backup failed: orders <prod> & @everyone", priority: 5, click: link });
  expect(JSON.parse(ntfy!.body).message).toContain(`Error: ${failed.error.code}`);

  renameSync(`${file}.away`, file);
  const ok = await backupNow(h, token, source.id);
  expect(ok.status).toBe("succeeded");
  const bodies = await r.slack!.waitFor(3);
  const texts = bodies.slice(1).map((b) => JSON.parse(b.body).text as string);
  const succeeded = texts.find((t) => t.includes("Backup succeeded"))!;
  expect(succeeded).toContain("*Status:* succeeded");
  expect(succeeded).toMatch(/\*Size:\* [\d.]+ (B|KiB|MiB)/);
  expect(succeeded).toMatch(/\*Duration:\* \d+ s/);
  expect(succeeded).toContain(`${PUBLIC}/backup-jobs/${ok.id}`);
  const recovered = texts.find((t) => t.includes("Backups recovered"))!;
  expect(recovered).toContain("*Recovered from:* failed");
  for (const x of ["discord", "teams", "ntfy"]) expect((await r[x]!.waitFor(3)).length).toBe(3);
  // Nothing more: one message per event and rule.
  await Bun.sleep(1500);
  expect(Object.values(r).map((x) => x.received.length)).toEqual([3, 3, 3, 3]);
}, 60_000);
