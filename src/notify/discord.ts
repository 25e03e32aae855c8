import { hostOf, outcomeOfHttp, USER_AGENT, type ChannelSend } from "./channel-types.ts";
import type { Message } from "./message.ts";

/** Discord webhook: one embed; mentions disabled, so a name like `@everyone` pings nobody. */
const COLOR: Record<Message["severity"], number> = { ok: 0x2ecc71, warning: 0xf1c40f, error: 0xe74c3c, info: 0x3498db };

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

export function discordPayload(m: Message, occurredAt: number): Record<string, unknown> {
  return {
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: clip(m.title, 256),
        ...(m.link ? { url: m.link } : {}),
        color: COLOR[m.severity],
        ...(m.detail ? { description: clip(m.detail, 4000) } : {}),
        fields: m.facts.slice(0, 25).map(([name, value]) => ({ name: clip(name, 256), value: clip(value, 1024), inline: value.length < 40 })),
        timestamp: new Date(occurredAt).toISOString(),
      },
    ],
  };
}

export const sendDiscord: ChannelSend = async ({ delivery, secret, message, post }) =>
  outcomeOfHttp(
    await post(secret.webhookUrl!, { "content-type": "application/json", "user-agent": USER_AGENT }, JSON.stringify(discordPayload(message, delivery.occurredAt))),
    hostOf(secret.webhookUrl!),
  );
