import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { Config } from "../../config/schema.ts";
import type { SecretBox } from "../../crypto/secrets.ts";
import type { Db, Tx } from "../../db/client.ts";
import { notificationChannels, notificationDeliveries, notificationRules } from "../../db/schema.ts";
import { isoOf, nowMs } from "../../lib/clock.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import type { OutboundPolicy } from "../../net/outbound-policy.ts";
import { openChannelSecret, sealChannelSecret, type ChannelSettings } from "../../notify/channel-secret.ts";
import type { ChannelType } from "../../notify/events.ts";
import { enqueueDelivery } from "../../notify/outbox.ts";
import { isUniqueViolation } from "../../db/unique-violation.ts";
import { checkConfig, publicConfig, type ConfigInput } from "./channel-config.ts";

export interface ChannelDeps {
  config: Config;
  secrets: SecretBox;
  policy: OutboundPolicy;
}

export type ChannelRow = typeof notificationChannels.$inferSelect;

export function toChannel(row: ChannelRow) {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    config: publicConfig(row.type, row.settings as ChannelSettings),
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
}

/** Audit metadata: name, type and the shown config (secrets are never in it). */
const auditView = (row: ChannelRow) => ({ name: row.name, type: row.type, config: publicConfig(row.type, row.settings as ChannelSettings) });

const NAME_COLUMNS = "notification_channels.org_id, notification_channels.name";
const nameTaken = (name: string) => new AppError("CONFLICT", `a notification channel named ${JSON.stringify(name)} already exists`, [{ path: "/name", message: "already taken in this organisation" }]);

function checkName(name: string): string {
  const trimmed = name.trim();
  if (!trimmed) throw new AppError("INVALID_INPUT", "name must not be blank", [{ path: "/name", message: "must not be blank" }]);
  return trimmed;
}

export async function findChannel(db: Db | Tx, orgId: string, id: string): Promise<ChannelRow> {
  const row = (
    await db
      .select()
      .from(notificationChannels)
      .where(and(eq(notificationChannels.orgId, orgId), eq(notificationChannels.id, id)))
  )[0];
  if (!row) throw notFound("notification channel");
  return row;
}

export async function createChannel(ctx: ServiceContext, input: { name: string; type: ChannelType; config: ConfigInput }, deps: ChannelDeps) {
  const id = newId("nch");
  const name = checkName(input.name);
  const { settings, secret } = checkConfig(input.type, input.config, deps);
  const now = nowMs();
  const row: ChannelRow = {
    id,
    orgId: ctx.orgId,
    name,
    type: input.type,
    settings: settings as Record<string, unknown>,
    ...sealChannelSecret(deps.secrets, id, secret),
    createdAt: now,
    updatedAt: now,
  };
  try {
    await ctx.db.transaction(async (tx) => {
      await tx.insert(notificationChannels).values(row);
      await recordAudit(tx, ctx, { action: "notification_channel.created", targetType: "notification_channel", targetId: id, metadata: auditView(row) });
    });
  } catch (err) {
    if (isUniqueViolation(err, NAME_COLUMNS)) throw nameTaken(name);
    throw err;
  }
  return toChannel(row);
}

export async function getChannel(ctx: ServiceContext, id: string) {
  return toChannel(await findChannel(ctx.db, ctx.orgId, id));
}

export async function listChannels(ctx: ServiceContext, filters: { type?: ChannelType }, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(notificationChannels.orgId, ctx.orgId)];
  if (filters.type) where.push(eq(notificationChannels.type, filters.type));
  if (page.beforeId) where.push(lt(notificationChannels.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(notificationChannels)
    .where(and(...where))
    .orderBy(desc(notificationChannels.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: items.map(toChannel), hasMore };
}

export async function updateChannel(ctx: ServiceContext, id: string, patch: { name?: string; config?: ConfigInput }, deps: ChannelDeps) {
  let updated!: ChannelRow;
  try {
    await ctx.db.transaction(async (tx) => {
      const before = await findChannel(tx, ctx.orgId, id);
      const name = patch.name !== undefined ? checkName(patch.name) : before.name;
      let sealed = { secretCiphertext: before.secretCiphertext, secretKeyId: before.secretKeyId };
      let settings = before.settings;
      if (patch.config) {
        const current = { settings: before.settings as ChannelSettings, secret: openChannelSecret(deps.secrets, before) };
        const next = checkConfig(before.type, patch.config, deps, current);
        settings = next.settings as Record<string, unknown>;
        sealed = sealChannelSecret(deps.secrets, id, next.secret);
      }
      updated = { ...before, name, settings, ...sealed, updatedAt: Math.max(nowMs(), before.updatedAt + 1) };
      await tx
        .update(notificationChannels)
        .set({ name, settings, ...sealed, updatedAt: updated.updatedAt })
        .where(eq(notificationChannels.id, id));
      const changed = [...(patch.name !== undefined ? ["name"] : []), ...Object.keys(patch.config ?? {}).map((k) => `config.${k}`)];
      await recordAudit(tx, ctx, { action: "notification_channel.updated", targetType: "notification_channel", targetId: id, metadata: { changed, ...auditView(updated) } });
    });
  } catch (err) {
    if (patch.name !== undefined && isUniqueViolation(err, NAME_COLUMNS)) throw nameTaken(patch.name.trim());
    throw err;
  }
  return toChannel(updated);
}

/** Deletes the channel and its rules; deliveries still pending for it end as failed (history stays). */
export async function deleteChannel(ctx: ServiceContext, id: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const row = await findChannel(tx, ctx.orgId, id);
    const rules = await tx.delete(notificationRules).where(eq(notificationRules.channelId, id)).returning({ id: notificationRules.id });
    await tx.delete(notificationChannels).where(eq(notificationChannels.id, id));
    await tx
      .update(notificationDeliveries)
      .set({ status: "failed", nextAttemptAt: null, lastError: "the channel was deleted" })
      .where(and(eq(notificationDeliveries.channelId, id), eq(notificationDeliveries.status, "pending")));
    await recordAudit(tx, ctx, {
      action: "notification_channel.deleted",
      targetType: "notification_channel",
      targetId: id,
      metadata: { ...auditView(row), deletedRuleIds: rules.map((r) => r.id) },
    });
  });
}

/** `POST /notification-channels/{id}/test`: one `notification.test` delivery, sent by the sender like any other. */
export async function testChannel(ctx: ServiceContext, id: string): Promise<{ deliveryId: string }> {
  return await ctx.db.transaction(async (tx) => {
    const row = await findChannel(tx, ctx.orgId, id);
    const data = { channelId: row.id, channelName: row.name, message: "A test notification from snapdb." };
    const deliveryId = await enqueueDelivery(tx, { orgId: ctx.orgId, event: "notification.test", occurredAt: nowMs(), data }, { channelId: row.id, channelType: row.type, ruleId: null });
    await recordAudit(tx, ctx, { action: "notification_channel.tested", targetType: "notification_channel", targetId: id, metadata: { deliveryId, name: row.name, type: row.type } });
    return { deliveryId };
  });
}
