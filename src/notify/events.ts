/** The events a notification can be about, and the channel types that carry them. */
export const NOTIFY_EVENTS = [
  "backup.succeeded",
  "backup.failed",
  "backup.stale",
  "backup.recovered",
  "restore.succeeded",
  "restore.failed",
  "drill.succeeded",
  "drill.failed",
  "notification.test",
] as const;

export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** What a rule may subscribe to: every event but the test, which goes to one channel on request. */
export const RULE_EVENTS = [
  "backup.succeeded",
  "backup.failed",
  "backup.stale",
  "backup.recovered",
  "restore.succeeded",
  "restore.failed",
  "drill.succeeded",
  "drill.failed",
] as const satisfies readonly Exclude<NotifyEvent, "notification.test">[];

export type RuleEvent = (typeof RULE_EVENTS)[number];

export const CHANNEL_TYPES = ["webhook", "slack", "discord", "teams", "ntfy", "email"] as const;

export type ChannelType = (typeof CHANNEL_TYPES)[number];

export const DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;

export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
