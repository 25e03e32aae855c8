import { hostOf, outcomeOfHttp, USER_AGENT, type ChannelSend } from "./channel-types.ts";
import type { Message } from "./message.ts";

/** Slack incoming webhook: mrkdwn text (tenant names escaped: `<`, `>` and `&` are markup there). */
const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

const ICON: Record<Message["severity"], string> = { ok: ":white_check_mark:", warning: ":warning:", error: ":x:", info: ":information_source:" };

export function slackPayload(m: Message): Record<string, unknown> {
  const lines = [`${ICON[m.severity]} *${esc(m.title)}*`, ...m.facts.map(([k, v]) => `*${esc(k)}:* ${esc(v)}`)];
  if (m.detail) lines.push(`> ${esc(m.detail).replaceAll("\n", "\n> ")}`);
  if (m.link) lines.push(`<${m.link}|Open in snapdb>`);
  return { text: lines.join("\n"), unfurl_links: false };
}

export const sendSlack: ChannelSend = async ({ secret, message, post }) =>
  outcomeOfHttp(await post(secret.webhookUrl!, { "content-type": "application/json", "user-agent": USER_AGENT }, JSON.stringify(slackPayload(message))), hostOf(secret.webhookUrl!));
