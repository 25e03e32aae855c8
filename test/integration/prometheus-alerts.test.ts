import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { REPO_ROOT } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, waitForDelivery } from "../helpers/notify-flow.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * contrib/prometheus/snapdb-alerts.yml: valid for promtool, its unit tests pass, and every
 * series it selects is one that snapdb's /metrics really serves (after a succeeded and a
 * failed backup and a failed notification), so a renamed metric fails here, not in production.
 */
const DIR = join(REPO_ROOT, "contrib/prometheus");
const RULES = join(DIR, "snapdb-alerts.yml");

function promtool(args: string[]) {
  const res = Bun.spawnSync(["promtool", ...args], { cwd: DIR, stdout: "pipe", stderr: "pipe" });
  return { code: res.exitCode, out: res.stdout.toString() + res.stderr.toString() };
}

test("promtool check rules accepts the file", () => {
  const r = promtool(["check", "rules", RULES]);
  expect(r).toEqual({ code: 0, out: expect.stringContaining("SUCCESS: 6 rules found") });
});

test("promtool test rules: each alert fires when it should and not before", () => {
  const r = promtool(["test", "rules", "snapdb-alerts.test.yml"]);
  expect(r).toEqual({ code: 0, out: expect.stringContaining("SUCCESS") });
});

describe("the metrics the rules use", () => {
  const dir = tempDir("snapdb-alerts-metrics");
  let h: Harness;
  let receiver: Receiver;
  beforeAll(async () => {
    h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: dir.path });
    await h.runner.start();
    await h.notifications.sender.start();
    receiver = startReceiver();
    receiver.respond = () => new Response("gone", { status: 410 });
  });
  afterAll(async () => {
    await h.runner.stop(1000);
    await h.notifications.stop();
    receiver.stop();
    h.close();
    dir.cleanup();
  });

  test("every series the rules select is served by /metrics", async () => {
    const token = await h.token("org_metrics");
    const file = smallSqlite(dir.path);
    const source = await createSource(h, token, { engine: "sqlite", path: file });
    const policy = await createPolicy(h, token, (await managedDestination(h, token)).id, { retries: 0 });
    await attach(h, token, source.id, policy.id);
    expect((await backupNow(h, token, source.id)).status).toBe("succeeded");
    renameSync(file, `${file}.away`);
    expect((await backupNow(h, token, source.id)).status).toBe("failed");
    const channel = await createChannel(h, token, "webhook", { url: receiver.url, secret: "whsec-metrics-0123456789" });
    await waitForDelivery(h, token, (await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202)).deliveryId);
    await h.notifications.stop();
    await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202); // stays pending: the sender is stopped

    const metrics = (await h.call("GET", "/metrics")).text;
    const rules = readFileSync(RULES, "utf8");
    // Each `snapdb_…` selector of the rules, with the label matchers it names.
    const selectors = [...rules.matchAll(/(snapdb_[a-z_]+)(\{([^}]*)\})?/g)].map((m) => ({ name: m[1]!, matchers: [...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => `${x[1]}="${x[2]}"`) }));
    expect(selectors.length).toBeGreaterThanOrEqual(6);
    for (const s of selectors) {
      const served = metrics.split("\n").filter((l) => l.startsWith(`${s.name}{`) || l.startsWith(`${s.name} `));
      expect({ selector: s, served: served.some((l) => s.matchers.every((m) => l.includes(m))) }).toEqual({ selector: s, served: true });
    }
    // The labels the rules group by and print are there too.
    expect(metrics).toMatch(/^snapdb_backup_jobs_finished_total\{code="[A-Z_]+",status="failed"\} 1$/m);
    expect(metrics).toMatch(new RegExp(`^snapdb_backup_last_success_timestamp_seconds\\{data_source_id="${source.id}"\\} \\d+$`, "m"));
    expect(metrics).toMatch(/^snapdb_notification_deliveries_finished_total\{channel_type="webhook",status="failed"\} 1$/m);
    expect(metrics).toMatch(/^snapdb_notification_deliveries\{channel_type="webhook",status="pending"\} 1$/m);
  });
});
