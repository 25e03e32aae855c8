import { createHmac } from "node:crypto";
import { hostOf, outcomeOfHttp, USER_AGENT, type ChannelSend } from "./channel-types.ts";

/**
 * `webhook`: POST url with `{ id, event, occurredAt, orgId, data }` and
 * `X-Snapdb-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. The
 * timestamp lets a receiver refuse replays; the delivery id (the same on every retry)
 * lets it drop duplicates.
 */
export function webhookBody(d: { id: string; event: string; occurredAt: number; orgId: string; data: Record<string, unknown> }): string {
  return JSON.stringify({ id: d.id, event: d.event, occurredAt: new Date(d.occurredAt).toISOString(), orgId: d.orgId, data: d.data });
}

export function signature(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

export const sendWebhook: ChannelSend = async ({ delivery, settings, secret, post }) => {
  const body = webhookBody(delivery);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": USER_AGENT,
    "x-snapdb-event": delivery.event,
    "x-snapdb-delivery": delivery.id,
  };
  if (secret.secret) headers["x-snapdb-signature"] = signature(secret.secret, Math.floor(Date.now() / 1000), body);
  return outcomeOfHttp(await post(settings.url!, headers, body), hostOf(settings.url!));
};
