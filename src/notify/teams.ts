import { hostOf, outcomeOfHttp, USER_AGENT, type ChannelSend } from "./channel-types.ts";
import type { Message } from "./message.ts";

/** Microsoft Teams (Workflows or connector webhook): an Adaptive Card in a message envelope. */
const COLOR: Record<Message["severity"], string> = { ok: "Good", warning: "Warning", error: "Attention", info: "Accent" };

export function teamsPayload(m: Message): Record<string, unknown> {
  const body: Record<string, unknown>[] = [
    { type: "TextBlock", text: m.title, weight: "Bolder", size: "Medium", color: COLOR[m.severity], wrap: true },
    { type: "FactSet", facts: m.facts.map(([title, value]) => ({ title, value })) },
  ];
  if (m.detail) body.push({ type: "TextBlock", text: m.detail, wrap: true, isSubtle: true });
  return {
    type: "message",
    attachments: [
      {
        contentType: "application/vnd.microsoft.card.adaptive",
        content: {
          $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          type: "AdaptiveCard",
          version: "1.4",
          body,
          ...(m.link ? { actions: [{ type: "Action.OpenUrl", title: "Open in snapdb", url: m.link }] } : {}),
        },
      },
    ],
  };
}

export const sendTeams: ChannelSend = async ({ secret, message, post }) =>
  outcomeOfHttp(await post(secret.webhookUrl!, { "content-type": "application/json", "user-agent": USER_AGENT }, JSON.stringify(teamsPayload(message))), hostOf(secret.webhookUrl!));
