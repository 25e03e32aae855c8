import { afterAll, beforeAll, expect, test } from "bun:test";
import { must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, waitForDelivery } from "../helpers/notify-flow.ts";
import { startSmtp, type SmtpServer } from "../helpers/smtp.ts";

/**
 * `email` channels over a real SMTP server (aiosmtpd) that requires AUTH with the
 * operator's notify.smtp username and password: the message arrives with the channel's
 * recipients, subject prefix and the delivery id; the password is never logged.
 */
const PASSWORD = "smtp-pa55word-never-logged";
let smtp: SmtpServer;
let h: Harness;
let token: string;

beforeAll(async () => {
  smtp = await startSmtp("snapdb-relay", PASSWORD);
  h = await createHarness({
    SNAPDB_SMTP_HOST: smtp.host,
    SNAPDB_SMTP_PORT: String(smtp.port),
    SNAPDB_SMTP_SECURE: "false",
    SNAPDB_SMTP_USERNAME: "snapdb-relay",
    SNAPDB_SMTP_PASSWORD: PASSWORD,
    SNAPDB_SMTP_FROM: "snapdb <backups@example.com>",
  });
  await h.notifications.sender.start();
  token = await h.token("org_mail");
}, 30_000);
afterAll(async () => {
  await h.notifications.stop();
  h.close();
  smtp.stop();
});

test("a test notification arrives at the SMTP server, authenticated, with recipients, subject and delivery id", async () => {
  const channel = await createChannel(h, token, "email", { to: ["ops@example.com", "dba@example.com"], subjectPrefix: "[prod]" });
  const { deliveryId } = await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
  const d = await waitForDelivery(h, token, deliveryId);
  expect(d).toMatchObject({ status: "delivered", attempts: 1, channelType: "email" });
  const [mail] = smtp.messages();
  expect(mail).toBeDefined();
  const [head, ...rest] = mail!.split(/\r?\n\r?\n/);
  const body = rest.join("\n\n");
  expect(head).toMatch(/^From: snapdb <backups@example\.com>$/m);
  expect(head).toMatch(/^To: ops@example\.com, dba@example\.com$/m);
  expect(head).toMatch(/^Subject: \[prod\] Test notification$/m);
  expect(head).toMatch(new RegExp(`^X-Snapdb-Delivery: ${deliveryId}$`, "m"));
  expect(head).toMatch(/^X-Snapdb-Event: notification\.test$/m);
  expect(head).toMatch(new RegExp(`^Message-ID: <${deliveryId}@snapdb>$`, "m"));
  expect(head).toMatch(/^X-RcptTo: ops@example\.com, dba@example\.com$/m);
  expect(body).toContain(`Channel: ${channel.name} (${channel.id})`);
  expect(body).toContain("This channel works");
  expect(h.logLines.join("\n")).not.toContain(PASSWORD);
  expect(h.logLines.some((l) => l.includes("notification delivered") && l.includes(deliveryId))).toBe(true);
});

test("a channel's own sender replaces notify.smtp.from", async () => {
  const channel = await createChannel(h, token, "email", { to: ["team@example.com"], from: "db-alerts@example.com" });
  const { deliveryId } = await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
  await waitForDelivery(h, token, deliveryId);
  const mail = smtp.messages().find((m) => m.includes(deliveryId))!;
  expect(mail).toMatch(/^From: db-alerts@example\.com$/m);
  expect(mail).toMatch(/^Subject: \[snapdb\] Test notification$/m);
});
