/** What a rule may subscribe to: every event but the test, which goes to one channel on request. */
export const RULE_EVENTS = ["backup.succeeded", "backup.failed", "backup.stale", "backup.recovered", "restore.succeeded", "restore.failed", "drill.succeeded", "drill.failed"] as const;

/** The events a notification can be about: a rule's events, and the channel test. */
export const NOTIFY_EVENTS = [...RULE_EVENTS, "notification.test"] as const;

export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

export type RuleEvent = (typeof RULE_EVENTS)[number];

export const CHANNEL_TYPES = ["webhook", "slack", "discord", "teams", "ntfy", "email"] as const;

export type ChannelType = (typeof CHANNEL_TYPES)[number];

export const DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;

export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
