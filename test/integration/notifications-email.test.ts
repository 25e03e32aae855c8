import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { must } from "../helpers/api-flow.ts";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel, waitForDelivery } from "../helpers/notify-flow.ts";
import { startSmtp, type SmtpMode, type SmtpServer } from "../helpers/smtp.ts";

/**
 * `email` channels over a real SMTP server (aiosmtpd) that requires AUTH with the
 * operator's notify.smtp username and password: the message arrives with the channel's
 * recipients, subject prefix and the delivery id; the password is never logged. Over TLS
 * (STARTTLS and TLS from the first byte, a self-signed certificate the daemon trusts through
 * NODE_EXTRA_CA_CERTS, read at process start: hence a daemon process, not the harness), and
 * with notify.smtp.requireTLS against a relay without TLS: no mail, no password sent.
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

describe("over TLS (a daemon process that trusts the relay's certificate through NODE_EXTRA_CA_CERTS)", () => {
  const TLS_PASSWORD = "smtp-tls-pa55word-4e1f9c";
  // The password as it would cross the wire: AUTH PLAIN and AUTH LOGIN send it in base64.
  const onWire = [TLS_PASSWORD, btoa(`\u0000snapdb-relay\u0000${TLS_PASSWORD}`), btoa(TLS_PASSWORD)];

  /** A relay in `mode` and a daemon sending to it; resolves to the test delivery as the daemon left it. */
  async function sendThrough(mode: SmtpMode, env: Record<string, string>, trust = true) {
    const relay = await startSmtp("snapdb-relay", TLS_PASSWORD, mode);
    const d = await startDaemon({
      env: {
        SNAPDB_SMTP_HOST: relay.host,
        SNAPDB_SMTP_PORT: String(relay.port),
        SNAPDB_SMTP_USERNAME: "snapdb-relay",
        SNAPDB_SMTP_PASSWORD: TLS_PASSWORD,
        SNAPDB_SMTP_FROM: "snapdb@example.com",
        SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "60",
        ...(trust && relay.caFile ? { NODE_EXTRA_CA_CERTS: relay.caFile } : {}),
        ...env,
      },
    });
    try {
      const api = new DaemonApi(d.baseUrl, await d.token("org_tls"));
      const channel = await api.must("POST", "/notification-channels", { name: "mail", type: "email", config: { to: ["ops@example.com"] } }, 201);
      const { deliveryId } = await api.must("POST", `/notification-channels/${channel.id}/test`, undefined, 202);
      const until = Date.now() + 20_000;
      for (;;) {
        const delivery = (await api.must("GET", "/notification-deliveries")).items.find((x: any) => x.id === deliveryId);
        if (delivery.attempts >= 1) return { relay, delivery, logs: d.logs() };
        if (Date.now() > until) throw new Error(`no attempt within 20 s: ${JSON.stringify(delivery)}`);
        await Bun.sleep(100);
      }
    } finally {
      await d.stop();
    }
  }

  const arrivedOverTls = (relay: SmtpServer, delivery: any) => {
    expect(delivery).toMatchObject({ status: "delivered", attempts: 1 });
    expect(relay.messages()).toHaveLength(1);
    expect(relay.messages()[0]).toContain(`X-Snapdb-Delivery: ${delivery.id}`);
    expect(relay.auths()).toEqual([{ tls: true, ok: true }]);
    const clear = relay.cleartext();
    for (const form of onWire) expect(clear).not.toContain(form);
    expect(clear).not.toMatch(/^AUTH/im);
  };

  test("STARTTLS (secure = false): upgraded before AUTH; the mail arrives, the password never in clear", async () => {
    const { relay, delivery, logs } = await sendThrough("starttls", { SNAPDB_SMTP_SECURE: "false" });
    try {
      arrivedOverTls(relay, delivery);
      expect(relay.cleartext()).toMatch(/^STARTTLS\r$/m); // what went in clear: EHLO, STARTTLS
      expect(logs).not.toContain(TLS_PASSWORD);
    } finally {
      relay.stop();
    }
  }, 60_000);

  test("implicit TLS (secure = true, the 465 way): TLS from the first byte; the mail arrives, AUTH over TLS", async () => {
    const { relay, delivery } = await sendThrough("implicit", { SNAPDB_SMTP_SECURE: "true" });
    try {
      arrivedOverTls(relay, delivery);
      expect(relay.cleartext()).toBe("");
    } finally {
      relay.stop();
    }
  }, 60_000);

  test("the relay's certificate is verified: not trusted (no NODE_EXTRA_CA_CERTS), nothing is sent", async () => {
    const { relay, delivery } = await sendThrough("starttls", { SNAPDB_SMTP_SECURE: "false" }, false);
    try {
      expect(delivery).toMatchObject({ status: "pending", attempts: 1, lastError: expect.stringMatching(/TLS failed \(.*certificate/) });
      expect(relay.messages()).toEqual([]);
      expect(relay.auths()).toEqual([]);
    } finally {
      relay.stop();
    }
  }, 60_000);

  test("requireTLS = true and a relay without STARTTLS: the delivery fails, the password is never sent", async () => {
    const { relay, delivery, logs } = await sendThrough("plain", { SNAPDB_SMTP_SECURE: "false", SNAPDB_SMTP_REQUIRE_TLS: "true" });
    try {
      expect(delivery.status).not.toBe("delivered");
      expect(delivery.lastError).toContain("TLS failed (Error upgrading connection with STARTTLS: 454 TLS not available)");
      expect(relay.messages()).toEqual([]);
      expect(relay.auths()).toEqual([]);
      const clear = relay.cleartext();
      expect(clear).toMatch(/^EHLO /m); // the relay did hear from the daemon…
      for (const form of onWire) expect(clear).not.toContain(form); // …but never the password
      expect(clear).not.toMatch(/^(AUTH|MAIL FROM)/im);
      expect(logs).not.toContain(TLS_PASSWORD);
    } finally {
      relay.stop();
    }
  }, 60_000);
});
