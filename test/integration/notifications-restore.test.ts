import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, createRule } from "../helpers/notify-flow.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * restore.succeeded and restore.failed from real SQLite restores: a rule on the target
 * data source and a rule on the source the backup was taken of both match; a rule of
 * an unrelated source does not.
 */
const dir = tempDir("snapdb-notify-restore");
let h: Harness;
let token: string;
let hook: Receiver;

beforeAll(async () => {
  h = await createHarness({ SNAPDB_PUBLIC_URL: "https://backups.example.com", SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
  await h.runner.start();
  await h.notifications.sender.start();
  token = await h.token("org_restore");
  hook = startReceiver();
});
afterAll(async () => {
  await h.runner.stop(1000);
  await h.notifications.stop();
  hook.stop();
  h.close();
  dir.cleanup();
});

test("a restore that succeeds and one that fails (corrupt file) are announced to the rules of their sources", async () => {
  const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(dir.path) });
  const target = await createSource(h, token, { engine: "sqlite", path: join(dir.path, "restored.db") });
  const unrelated = await createSource(h, token, { engine: "sqlite", path: smallSqlite(dir.path) });
  const policy = await createPolicy(h, token, (await managedDestination(h, token)).id);
  await attach(h, token, source.id, policy.id);
  const channel = await createChannel(h, token, "webhook", { url: hook.url, secret: "whsec-restore-0123456789" });
  const onTarget = await createRule(h, token, { channelId: channel.id, events: ["restore.succeeded", "restore.failed"], dataSourceId: target.id });
  const onSource = await createRule(h, token, { channelId: channel.id, events: ["restore.failed"], dataSourceId: source.id });
  await createRule(h, token, { channelId: channel.id, events: ["restore.succeeded", "restore.failed"], dataSourceId: unrelated.id });
  const job = await backupNow(h, token, source.id);

  const ok = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: target.id }, 202);
  expect((await waitForStatus(h, token, `/restores/${ok.id}`)).status).toBe("succeeded");
  const [first] = await hook.waitFor(1);
  expect(JSON.parse(first!.body)).toMatchObject({
    event: "restore.succeeded",
    data: { id: ok.id, status: "succeeded", backupJobId: job.id, targetDataSourceId: target.id, targetDataSourceName: target.name, sourceDataSourceName: source.name },
  });

  const file = join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", job.objectKey);
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1]! ^= 0x01;
  writeFileSync(file, bytes);
  const bad = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: target.id, clean: true }, 202);
  const failed = await waitForStatus(h, token, `/restores/${bad.id}`);
  expect(failed.error.code).toBe("CHECKSUM_MISMATCH");
  const later = (await hook.waitFor(3)).slice(1).map((r) => JSON.parse(r.body));
  expect(later.map((b) => b.event)).toEqual(["restore.failed", "restore.failed"]);
  expect(later.map((b) => b.data.id)).toEqual([bad.id, bad.id]);
  expect(new Set(later.map((b) => b.id)).size).toBe(2);
  const ruleIds = (await must(h, token, "GET", "/notification-deliveries?event=restore.failed")).items.map((d: any) => d.ruleId).sort();
  expect(ruleIds).toEqual([onTarget.id, onSource.id].sort());
  await Bun.sleep(1000);
  expect(hook.received).toHaveLength(3);
}, 60_000);
