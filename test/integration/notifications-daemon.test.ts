import { afterAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { freePort, startDaemon, type Daemon } from "../helpers/daemon.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { startReceiver, type Receiver } from "../helpers/receiver.ts";
import { daemonStoreAtRest } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";
import { verifySnapdbSignature } from "../helpers/verify-signature.ts";

/**
 * The real daemon process: a delivery whose receiver is down survives a restart and is
 * delivered after it with the same id; a data source that went stale while the daemon was
 * down is announced at start, once, also across another restart; and no secret (webhook
 * secret, Slack URL, ntfy token, SMTP password) is in a log line, an answer, the audit log
 * or the store's bytes (database file and WAL).
 */
const WEBHOOK_SECRET = "whsec-daemon-7f3a9c1e5b2d4086";
const SLACK_PATH = "/services/T0DAEMON/B0DAEMON/slackSecretPathXyz";
const NTFY_TOKEN = "tk_daemon_ntfy_0c2b4e6a";
const SMTP_PASSWORD = "smtp-daemon-pw-4d8e2a";
const SECRETS = [WEBHOOK_SECRET, SLACK_PATH, "slackSecretPathXyz", NTFY_TOKEN, SMTP_PASSWORD];

const scratch = tempDir("snapdb-notify-daemon");
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  scratch.cleanup();
});

function env(extra: Record<string, string> = {}) {
  return {
    SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "1",
    SNAPDB_SMTP_HOST: "127.0.0.1",
    SNAPDB_SMTP_USERNAME: "relay",
    SNAPDB_SMTP_PASSWORD: SMTP_PASSWORD,
    SNAPDB_SMTP_FROM: "snapdb@example.com",
    SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path,
    SNAPDB_LOG_LEVEL: "debug",
    ...extra,
  };
}

async function daemonOn(dataDir: string, extra: Record<string, string> = {}): Promise<Daemon> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const d = await startDaemon({ dataDir, env: env(extra) });
  cleanups.push(() => d.stop());
  return d;
}

/** The daemon's store as bytes: its SQLite file and WAL, or (PostgreSQL leg) a dump and the data files of its database. */
async function storeBytes(dataDir: string): Promise<string> {
  return (await daemonStoreAtRest(dataDir)).map(([, bytes]) => bytes.toString("latin1")).join("\n");
}

const leaked = (text: string) => SECRETS.filter((s) => text.includes(s));

test("a receiver down across a restart gets the delivery afterwards, with the same id; no secret leaks anywhere", async () => {
  const dataDir = join(scratch.path, "restart");
  const port = await freePort();
  let d = await daemonOn(dataDir);
  const api = new DaemonApi(d.baseUrl, await d.token("org_restart"));
  const hook = await api.must("POST", "/notification-channels", { name: "hook", type: "webhook", config: { url: `http://127.0.0.1:${port}/hook`, secret: WEBHOOK_SECRET } }, 201);
  const slack = await api.must("POST", "/notification-channels", { name: "slack", type: "slack", config: { webhookUrl: `http://127.0.0.1:${port}${SLACK_PATH}` } }, 201);
  await api.must("POST", "/notification-channels", { name: "ntfy", type: "ntfy", config: { url: `http://127.0.0.1:${port}`, topic: "t", token: NTFY_TOKEN } }, 201);
  await api.must("POST", "/notification-channels", { name: "mail", type: "email", config: { to: ["ops@example.com"] } }, 201);
  await api.must("PATCH", `/notification-channels/${hook.id}`, { config: { secret: WEBHOOK_SECRET } });
  const { deliveryId } = await api.must("POST", `/notification-channels/${hook.id}/test`, undefined, 202);
  const slackTest = (await api.must("POST", `/notification-channels/${slack.id}/test`, undefined, 202)).deliveryId;
  // Nothing listens yet: connection refused, both deliveries stay pending with their error
  // (each tried once before the restart: the sender's pass may take them one at a time).
  const deadline = Date.now() + 15_000;
  let pending: any;
  while (Date.now() < deadline) {
    const items = (await api.must("GET", "/notification-deliveries")).items;
    pending = items.find((x: any) => x.id === deliveryId);
    if (pending.attempts >= 1 && items.find((x: any) => x.id === slackTest).attempts >= 1) break;
    await Bun.sleep(100);
  }
  expect(pending).toMatchObject({ status: "pending", lastError: expect.stringContaining("connection refused") });
  expect(leaked(await storeBytes(dataDir))).toEqual([]); // while running: the WAL holds the latest writes
  expect(await d.stop()).toBe(0);
  const logs1 = d.logs();

  const receiver: Receiver = startReceiver(port);
  cleanups.push(() => receiver.stop());
  d = await daemonOn(dataDir);
  const api2 = new DaemonApi(d.baseUrl, await d.token("org_restart"));
  await receiver.waitFor(2, 20_000);
  const hookReq = receiver.received.find((x) => x.path === "/hook")!;
  expect(hookReq.headers["x-snapdb-delivery"]).toBe(deliveryId);
  expect(verifySnapdbSignature(WEBHOOK_SECRET, hookReq.headers["x-snapdb-signature"]!, hookReq.body)).toBe(true);
  expect(receiver.received.find((x) => x.path === SLACK_PATH)).toBeDefined();
  let done: any;
  for (const until = Date.now() + 10_000; Date.now() < until; await Bun.sleep(100)) {
    done = (await api2.must("GET", "/notification-deliveries")).items.filter((x: any) => [deliveryId, slackTest].includes(x.id));
    if (done.every((x: any) => x.status === "delivered")) break;
  }
  expect(done.map((x: any) => x.status)).toEqual(["delivered", "delivered"]);
  expect(done.every((x: any) => x.attempts >= 2)).toBe(true);

  const answers = [
    (await api2.call("GET", "/notification-channels")).text,
    (await api2.call("GET", `/notification-channels/${hook.id}`)).text,
    (await api2.call("GET", "/notification-deliveries")).text,
    (await api2.call("GET", "/audit-log?limit=200")).text,
  ].join("\n");
  expect(answers).toContain("notification_channel.created");
  expect(leaked(answers)).toEqual([]);
  expect(leaked(await storeBytes(dataDir))).toEqual([]);
  const printed = await d.run(["serve", "--print-config", "--config", d.configFile, "--data-dir", dataDir]);
  expect(leaked(printed.stdout)).toEqual([]);
  expect(await d.stop()).toBe(0);
  expect(leaked(await storeBytes(dataDir))).toEqual([]); // after the WAL was folded into the file
  expect(leaked(logs1 + d.logs())).toEqual([]);
  expect(logs1 + d.logs()).toContain("notification delivered");
}, 90_000);

test("a source that went stale while the daemon was down is announced at start, once", async () => {
  const dataDir = join(scratch.path, "stale");
  const receiver = startReceiver();
  cleanups.push(() => receiver.stop());
  const slowChecks = { SNAPDB_NOTIFY_STALE_CHECK_SECONDS: "3600" }; // only the check at start can see it
  let d = await daemonOn(dataDir, slowChecks);
  const api = new DaemonApi(d.baseUrl, await d.token("org_down"));
  const managed = await api.managedDestination();
  const policy = await api.createPolicy(managed.id, { retries: 0 });
  const source = await api.createSource({ engine: "sqlite", path: smallSqlite(scratch.path) });
  await api.attach(source.id, policy.id);
  const channel = await api.must("POST", "/notification-channels", { name: "hook", type: "webhook", config: { url: receiver.url, secret: WEBHOOK_SECRET } }, 201);
  await api.must("POST", "/notification-rules", { channelId: channel.id, events: ["backup.stale", "backup.recovered"], dataSourceId: source.id, staleAfterSeconds: 2 }, 201);
  expect((await api.backupNow(source.id)).status).toBe("succeeded");
  expect(await d.stop()).toBe(0);
  await Bun.sleep(3000); // longer than staleAfterSeconds, while no daemon runs

  d = await daemonOn(dataDir, slowChecks);
  const [stale] = await receiver.waitFor(1, 15_000);
  expect(JSON.parse(stale!.body)).toMatchObject({ event: "backup.stale", data: { dataSourceId: source.id, staleAfterSeconds: 2 } });
  expect(await d.stop()).toBe(0);
  d = await daemonOn(dataDir, slowChecks); // the mark is in the store: not announced again
  await Bun.sleep(2000);
  expect(receiver.received).toHaveLength(1);
  const api3 = new DaemonApi(d.baseUrl, await d.token("org_down"));
  expect((await api3.backupNow(source.id)).status).toBe("succeeded");
  const [, recovered] = await receiver.waitFor(2, 15_000);
  expect(JSON.parse(recovered!.body)).toMatchObject({ event: "backup.recovered", data: { recoveredFrom: "stale" } });
}, 90_000);
