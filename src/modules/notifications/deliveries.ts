import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { notificationDeliveries } from "../../db/schema.ts";
import { isoOf } from "../../lib/clock.ts";
import type { ServiceContext } from "../../lib/context.ts";
import type { ChannelType, NotifyEvent } from "../../notify/events.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";

type DeliveryRow = typeof notificationDeliveries.$inferSelect;
const isoOrNull = (ms: number | null) => (ms === null ? null : isoOf(ms));

export function toDelivery(row: DeliveryRow) {
  return {
    id: row.id,
    channelId: row.channelId,
    channelType: row.channelType as ChannelType,
    ruleId: row.ruleId,
    event: row.event as NotifyEvent,
    occurredAt: isoOf(row.occurredAt),
    status: row.status,
    attempts: row.attempts,
    lastAttemptAt: isoOrNull(row.lastAttemptAt),
    nextAttemptAt: row.status === "pending" ? isoOrNull(row.nextAttemptAt) : null,
    lastError: row.lastError,
    deliveredAt: isoOrNull(row.deliveredAt),
    data: row.data,
  };
}

export interface DeliveryFilters {
  channelId?: string;
  event?: string;
  status?: DeliveryRow["status"];
}

/** The delivery log, newest first (ids are time-sortable). */
export async function listDeliveries(ctx: ServiceContext, filters: DeliveryFilters, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(notificationDeliveries.orgId, ctx.orgId)];
  if (filters.channelId) where.push(eq(notificationDeliveries.channelId, filters.channelId));
  if (filters.event) where.push(eq(notificationDeliveries.event, filters.event));
  if (filters.status) where.push(eq(notificationDeliveries.status, filters.status));
  if (page.beforeId) where.push(lt(notificationDeliveries.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(notificationDeliveries)
    .where(and(...where))
    .orderBy(desc(notificationDeliveries.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: items.map(toDelivery), hasMore };
}
