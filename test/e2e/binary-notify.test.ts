import { afterAll, beforeAll, expect, test } from "bun:test";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startSmtp, type SmtpServer } from "../helpers/smtp.ts";

/**
 * The compiled binary sends notifications: an e-mail channel's test delivery reaches a real
 * SMTP server (with AUTH). The mail library is loaded on first use, so this proves it is
 * inside dist/snapdb and found there, not only when run from source.
 */
const PASSWORD = `relay-${crypto.randomUUID()}`;
let smtp: SmtpServer;
let daemon: Daemon;

beforeAll(async () => {
  smtp = await startSmtp("snapdb-relay", PASSWORD);
  daemon = await startDaemon({
    binary: "compiled",
    env: {
      SNAPDB_SMTP_HOST: smtp.host,
      SNAPDB_SMTP_PORT: String(smtp.port),
      SNAPDB_SMTP_SECURE: "false",
      SNAPDB_SMTP_USERNAME: "snapdb-relay",
      SNAPDB_SMTP_PASSWORD: PASSWORD,
      SNAPDB_SMTP_FROM: "snapdb <backups@example.com>",
    },
  });
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  smtp?.stop();
});

test("an e-mail channel's test delivery arrives, sent by the compiled binary", async () => {
  const token = await daemon.token("acme", { scopes: ["backup.read", "notify.write"] });
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const channel = (await (
    await fetch(`${daemon.baseUrl}/notification-channels`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "dba", type: "email", config: { to: ["dba@example.com"] } }),
    })
  ).json()) as { id: string };
  const sent = (await (await fetch(`${daemon.baseUrl}/notification-channels/${channel.id}/test`, { method: "POST", headers })).json()) as { deliveryId: string };
  const deadline = Date.now() + 30_000;
  while (!smtp.messages().some((m) => m.includes(sent.deliveryId)) && Date.now() < deadline) await Bun.sleep(100);
  const mail = smtp.messages().find((m) => m.includes(sent.deliveryId));
  expect(mail).toContain("dba@example.com");
  const log = (await (await fetch(`${daemon.baseUrl}/notification-deliveries?channelId=${channel.id}`, { headers })).json()) as { items: { id: string; status: string }[] };
  expect(log.items.find((d) => d.id === sent.deliveryId)?.status).toBe("delivered");
  expect(daemon.logs()).not.toContain(PASSWORD);
}, 60_000);
