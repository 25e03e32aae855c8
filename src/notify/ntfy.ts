import { hostOf, outcomeOfHttp, USER_AGENT, type ChannelSend } from "./channel-types.ts";
import { plainText, type Message } from "./message.ts";

/** ntfy: JSON publishing to the server's root (no header encoding limits on the title). */
const PRIORITY: Record<Message["severity"], number> = { ok: 3, info: 3, warning: 4, error: 5 };
const TAGS: Record<Message["severity"], string[]> = { ok: ["white_check_mark"], info: ["information_source"], warning: ["warning"], error: ["x"] };

export function ntfyPayload(topic: string, m: Message): Record<string, unknown> {
  return { topic, title: m.title, message: plainText(m), priority: PRIORITY[m.severity], tags: TAGS[m.severity], ...(m.link ? { click: m.link } : {}) };
}

export const sendNtfy: ChannelSend = async ({ settings, secret, message, post }) => {
  const headers: Record<string, string> = { "content-type": "application/json", "user-agent": USER_AGENT };
  if (secret.token) headers.authorization = `Bearer ${secret.token}`;
  return outcomeOfHttp(await post(settings.url!, headers, JSON.stringify(ntfyPayload(settings.topic!, message))), hostOf(settings.url!));
};
