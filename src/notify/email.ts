import { oneLine, type Outcome, type SendInput } from "./channel-types.ts";
import { plainText } from "./message.ts";

/**
 * `email`: over the operator's SMTP relay (notify.smtp.*). The relay is operator config, not
 * tenant input, so it is not subject to the outbound policy. A 4xx SMTP reply (and any
 * connection problem) is temporary and retried; a 5xx reply is final.
 */
export async function sendEmail({ delivery, settings, message, smtp, timeoutMs }: SendInput): Promise<Outcome> {
  if (!smtp.host) return { ok: false, retry: false, error: "no SMTP relay is configured (notify.smtp.host)" };
  const from = settings.from || smtp.from;
  if (!from) return { ok: false, retry: false, error: "no sender address: set the channel's from or notify.smtp.from" };
  // Loaded on the first e-mail: importing nodemailer builds its MIME tables, ~80 ms of every
  // daemon start that most daemons never need.
  const { default: nodemailer } = await import("nodemailer");
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    // STARTTLS or nothing: without it nodemailer would send AUTH and the mail in clear to a
    // relay (or a man in the middle) that does not offer STARTTLS.
    requireTLS: smtp.requireTLS,
    auth: smtp.username ? { user: smtp.username, pass: smtp.password } : undefined,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
  });
  try {
    await transport.sendMail({
      from,
      to: settings.to,
      // Names in the title are tenant input: one line, whatever they hold.
      subject: `${settings.subjectPrefix ?? "[snapdb]"} ${message.title}`.replace(/[\r\n\t]+/g, " ").trim(),
      text: plainText(message),
      headers: { "X-Snapdb-Event": delivery.event, "X-Snapdb-Delivery": delivery.id },
      // The delivery id makes a resent message recognisable as the same one.
      messageId: `<${delivery.id}@snapdb>`,
    });
    return { ok: true };
  } catch (err) {
    const e = err as { responseCode?: number; code?: string; response?: string };
    const detail = oneLine((err as Error).message ?? "").slice(0, 200);
    const at = `SMTP ${smtp.host}:${smtp.port}`;
    // No TLS (STARTTLS refused, a certificate not trusted) is said as such: the operator has to act.
    const reply =
      e.code === "ETLS" || /certificate/i.test(detail)
        ? `${at}: TLS failed (${detail})`
        : e.responseCode
          ? `SMTP ${e.responseCode}${e.response ? `: ${oneLine(e.response).slice(0, 200)}` : ""}`
          : `${at}: ${e.code ?? "connection failed"}${detail ? ` (${detail})` : ""}`;
    const final = (e.responseCode !== undefined && e.responseCode >= 500) || e.code === "EENVELOPE";
    return { ok: false, retry: !final, error: reply };
  } finally {
    transport.close();
  }
}
