import type { ChannelSend } from "./channel-types.ts";
import { sendDiscord } from "./discord.ts";
import { sendEmail } from "./email.ts";
import type { ChannelType } from "./events.ts";
import { sendNtfy } from "./ntfy.ts";
import { sendSlack } from "./slack.ts";
import { sendTeams } from "./teams.ts";
import { sendWebhook } from "./webhook.ts";

/** One sender per channel type. */
export const CHANNEL_SENDERS: Record<ChannelType, ChannelSend> = {
  webhook: sendWebhook,
  slack: sendSlack,
  discord: sendDiscord,
  teams: sendTeams,
  ntfy: sendNtfy,
  email: sendEmail,
};
