import { t, type TSchema } from "elysia";
import { Int } from "../../http/json-int.ts";
import type { TLiteral, TUnion } from "@sinclair/typebox";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { CHANNEL_TYPES, DELIVERY_STATUSES, NOTIFY_EVENTS, RULE_EVENTS } from "../../notify/events.ts";

/** A union of string literals that keeps its static type (a plain `.map` loses it). */
const literals = <T extends readonly string[]>(values: T) => t.Union(values.map((v) => t.Literal(v)) as TSchema[]) as unknown as TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }>;
const Url = (description: string) => t.String({ minLength: 1, maxLength: 2048, description });
const Id = (examples: string[]) => t.String({ minLength: 1, maxLength: 64, examples });

/** Every field any type's `config` may have; which ones a type takes is checked per type (400 with the path). */
const ChannelConfigInput = t.Object(
  {
    url: t.Optional(Url("webhook: the URL POSTed to. ntfy: the server, e.g. `https://ntfy.sh`. Outbound policy applies.")),
    secret: t.Optional(t.String({ minLength: 16, maxLength: 512, description: "webhook: the HMAC-SHA256 key of `X-Snapdb-Signature` (write-only, ≥ 16 characters)." })),
    webhookUrl: t.Optional(Url("slack, discord, teams: the incoming-webhook URL (write-only: whoever has it can post)")),
    topic: t.Optional(t.String({ pattern: "^[-_A-Za-z0-9]{1,64}$", description: "ntfy: the topic." })),
    token: t.Optional(t.Union([t.String({ minLength: 1, maxLength: 512 }), t.Null()], { description: "ntfy: an access token (write-only); null removes it." })),
    to: t.Optional(t.Array(t.String({ minLength: 3, maxLength: 254 }), { minItems: 1, maxItems: 20, description: "email: recipients." })),
    from: t.Optional(t.Union([t.String({ minLength: 3, maxLength: 254 }), t.Null()], { description: "email: sender; default `notify.smtp.from`." })),
    subjectPrefix: t.Optional(t.Union([t.String({ maxLength: 100 }), t.Null()], { description: "email: default `[snapdb]`." })),
  },
  {
    additionalProperties: false,
    description:
      "`webhook` `{ url, secret }` · `slack` / `discord` / `teams` `{ webhookUrl }` · `ntfy` `{ url, topic, token? }` · " +
      "`email` `{ to, from?, subjectPrefix? }` (over the operator's SMTP relay). Secrets are write-only.",
  },
);

export const ChannelCreate = t.Object(
  {
    name: t.String({ minLength: 1, maxLength: 100, description: "Unique in the organisation." }),
    type: literals(CHANNEL_TYPES),
    config: ChannelConfigInput,
  },
  { additionalProperties: false },
);

export const ChannelUpdate = t.Object(
  {
    name: t.Optional(t.String({ minLength: 1, maxLength: 100 })),
    config: t.Optional(ChannelConfigInput),
  },
  { additionalProperties: false },
);

export const Channel = t.Object(
  {
    id: Id(["nch_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"]),
    name: t.String(),
    type: literals(CHANNEL_TYPES),
    config: t.Object(
      {
        url: t.Optional(t.String()),
        hasSecret: t.Optional(t.Boolean()),
        webhookHost: t.Optional(t.String({ description: "The host of the (write-only) webhook URL." })),
        hasWebhookUrl: t.Optional(t.Boolean()),
        topic: t.Optional(t.String()),
        hasToken: t.Optional(t.Boolean()),
        to: t.Optional(t.Array(t.String())),
        from: t.Optional(t.String()),
        subjectPrefix: t.Optional(t.String()),
      },
      { description: "The config without its secrets: `hasSecret`, `hasWebhookUrl`, `hasToken` say they are set." },
    ),
    createdAt: t.String({ format: "date-time" }),
    updatedAt: t.String({ format: "date-time" }),
  },
  { $id: "#/components/schemas/NotificationChannel", title: "NotificationChannel" },
);

export const ChannelPage = pageOf(Channel);
export const ChannelQuery = t.Object({ ...PageQuery, type: t.Optional(literals(CHANNEL_TYPES)) }, { additionalProperties: false });

export const TestAccepted = t.Object({ deliveryId: Id(["ndl_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"]) });

const StaleAfter = t.Integer({
  minimum: 1,
  maximum: 366 * 86400,
  description: "backup.stale after this long without a success (default: twice the most frequent attached policy's interval plus its timeout).",
});

export const RuleCreate = t.Object(
  {
    channelId: Id(["nch_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"]),
    events: t.Array(literals(RULE_EVENTS), { minItems: 1, maxItems: RULE_EVENTS.length, uniqueItems: true }),
    dataSourceId: t.Optional(t.String({ minLength: 1, maxLength: 64, description: "Only this data source; left out: every source of the organisation." })),
    policyId: t.Optional(t.String({ minLength: 1, maxLength: 64, description: "Only backups under this policy (and its schedule for backup.stale)." })),
    staleAfterSeconds: t.Optional(StaleAfter),
  },
  { additionalProperties: false },
);

export const RuleUpdate = t.Object(
  {
    channelId: t.Optional(Id(["nch_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"])),
    events: t.Optional(t.Array(literals(RULE_EVENTS), { minItems: 1, maxItems: RULE_EVENTS.length, uniqueItems: true })),
    dataSourceId: t.Optional(t.Union([t.String({ minLength: 1, maxLength: 64 }), t.Null()])),
    policyId: t.Optional(t.Union([t.String({ minLength: 1, maxLength: 64 }), t.Null()])),
    staleAfterSeconds: t.Optional(t.Union([StaleAfter, t.Null()])),
  },
  { additionalProperties: false },
);

export const Rule = t.Object(
  {
    id: Id(["nru_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"]),
    channelId: t.String(),
    events: t.Array(literals(RULE_EVENTS)),
    dataSourceId: t.Union([t.String(), t.Null()]),
    policyId: t.Union([t.String(), t.Null()]),
    staleAfterSeconds: t.Union([Int(), t.Null()]),
    createdAt: t.String({ format: "date-time" }),
    updatedAt: t.String({ format: "date-time" }),
  },
  { $id: "#/components/schemas/NotificationRule", title: "NotificationRule" },
);

export const RulePage = pageOf(Rule);
export const RuleQuery = t.Object({ ...PageQuery, channelId: t.Optional(t.String({ maxLength: 64 })), dataSourceId: t.Optional(t.String({ maxLength: 64 })) }, { additionalProperties: false });

export const Delivery = t.Object(
  {
    id: Id(["ndl_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"]),
    channelId: t.String(),
    channelType: literals(CHANNEL_TYPES),
    ruleId: t.Union([t.String(), t.Null()], { description: "Null for a channel's test." }),
    event: literals(NOTIFY_EVENTS),
    occurredAt: t.String({ format: "date-time" }),
    status: literals(DELIVERY_STATUSES),
    attempts: Int(),
    lastAttemptAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    nextAttemptAt: t.Union([t.String({ format: "date-time" }), t.Null()], { description: "When a pending delivery is tried next." }),
    lastError: t.Union([t.String(), t.Null()]),
    deliveredAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    data: t.Record(t.String(), t.Unknown(), { description: "The event's data, as sent (a webhook's `data`)." }),
  },
  { $id: "#/components/schemas/NotificationDelivery", title: "NotificationDelivery" },
);

export const DeliveryPage = pageOf(Delivery);
export const DeliveryQuery = t.Object(
  { ...PageQuery, channelId: t.Optional(t.String({ maxLength: 64 })), event: t.Optional(literals(NOTIFY_EVENTS)), status: t.Optional(literals(DELIVERY_STATUSES)) },
  { additionalProperties: false },
);

export const IdParams = t.Object({ id: t.String({ maxLength: 64 }) });
