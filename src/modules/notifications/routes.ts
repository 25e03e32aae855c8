import { Elysia, t } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { TAGS } from "../../http/openapi-tags.ts";
import { OutboundPolicy } from "../../net/outbound-policy.ts";
import { createChannel, deleteChannel, getChannel, listChannels, testChannel, updateChannel } from "./channels.ts";
import { listDeliveries } from "./deliveries.ts";
import { Channel, ChannelCreate, ChannelPage, ChannelQuery, ChannelUpdate, DeliveryPage, DeliveryQuery, IdParams, TestAccepted } from "./model.ts";
import { ruleRoutes } from "./rule-routes.ts";

const CHANNELS = "notification-channels";
const DELIVERIES = "notification-deliveries";
const tags = [TAGS.notifications.name];

/** Channels, rules and the delivery log. Writes need `notify.write`; reads `backup.read`. */
export function notificationRoutes(kit: HttpKit) {
  const deps = { config: kit.config, secrets: kit.secrets, policy: OutboundPolicy.fromConfig(kit.config.network) };
  return new Elysia({ name: "snapdb-notifications" })
    .use(kit.auth)
    .post(
      "/notification-channels",
      async ({ body, ctx, set }) => {
        const channel = await createChannel(ctx, body, deps);
        set.status = 201;
        return channel;
      },
      {
        scope: "notify.write",
        body: ChannelCreate,
        response: { 201: Channel },
        detail: {
          summary: "Create a notification channel",
          description:
            "`webhook` `{ url, secret }`: signed JSON POSTs. `slack`, `discord`, `teams` `{ webhookUrl }`: readable messages. " +
            "`ntfy` `{ url, topic, token? }`. `email` `{ to, from?, subjectPrefix? }` over the operator's SMTP relay. " +
            "URLs must be http(s) and are subject to the outbound network policy. Secrets (`secret`, `webhookUrl`, `token`) " +
            "are write-only: answers say `hasSecret`, `hasWebhookUrl`, `hasToken`.",
          tags,
        },
      },
    )
    .get(
      "/notification-channels",
      async ({ query, ctx }) => {
        return kit.cursors.answer(CHANNELS, ctx.orgId, await listChannels(ctx, query, kit.cursors.request(CHANNELS, ctx.orgId, query)));
      },
      { scope: "backup.read", query: ChannelQuery, response: { 200: ChannelPage }, detail: { summary: "List notification channels, newest first", tags } },
    )
    .get("/notification-channels/:id", async ({ params, ctx }) => getChannel(ctx, params.id), {
      scope: "backup.read",
      params: IdParams,
      response: { 200: Channel },
      detail: { summary: "Get a notification channel", tags },
    })
    .patch("/notification-channels/:id", async ({ params, body, ctx }) => updateChannel(ctx, params.id, body, deps), {
      scope: "notify.write",
      params: IdParams,
      body: ChannelUpdate,
      response: { 200: Channel },
      detail: {
        summary: "Update a notification channel",
        description: "`config` fields given replace the stored ones; secrets left out are kept; `null` clears an optional field. The type can't change.",
        tags,
      },
    })
    .delete(
      "/notification-channels/:id",
      async ({ params, ctx, set }) => {
        await deleteChannel(ctx, params.id);
        set.status = 204;
      },
      {
        scope: "notify.write",
        params: IdParams,
        response: { 204: t.Void({ description: "No content" }) },
        detail: { summary: "Delete a notification channel and its rules", description: "Deliveries still pending for it end as `failed`; the delivery log keeps them.", tags },
      },
    )
    .post(
      "/notification-channels/:id/test",
      async ({ params, ctx, set }) => {
        const accepted = await testChannel(ctx, params.id);
        set.status = 202;
        return accepted;
      },
      {
        scope: "notify.write",
        params: IdParams,
        response: { 202: TestAccepted },
        detail: {
          summary: "Send a notification.test event to the channel now",
          description: "→ 202 `{ deliveryId }`; follow it in `GET /notification-deliveries` (status, attempts, lastError).",
          tags,
        },
      },
    )
    .use(ruleRoutes(kit))
    .get(
      "/notification-deliveries",
      async ({ query, ctx }) => {
        return kit.cursors.answer(DELIVERIES, ctx.orgId, await listDeliveries(ctx, query, kit.cursors.request(DELIVERIES, ctx.orgId, query)));
      },
      {
        scope: "backup.read",
        query: DeliveryQuery,
        response: { 200: DeliveryPage },
        detail: {
          summary: "The delivery log, newest first",
          description:
            "Filters `channelId`, `event`, `status` (`pending`, `delivered`, `failed`). A delivery is sent at least once with the same id; " +
            "network errors, 429 and 5xx are retried with exponential backoff (or the receiver's Retry-After) for 24 h; other answers fail it at once.",
          tags,
        },
      },
    );
}
