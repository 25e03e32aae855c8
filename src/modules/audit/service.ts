import { and, desc, eq, gte, inArray, lt, type SQL } from "drizzle-orm";
import type { AuditAction, AuditTargetType } from "../../audit/actions.ts";
import { auditEvents } from "../../db/schema.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { isoOf } from "../../lib/clock.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import { parseTimestamp } from "../../lib/time-input.ts";

export interface AuditFilters {
  action?: string;
  targetType?: string;
  targetId?: string;
  actorId?: string;
  from?: string;
  to?: string;
}

const splitList = (value: string | undefined) =>
  value
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);

type AuditRow = typeof auditEvents.$inferSelect;

export function toAuditEvent(row: AuditRow) {
  return {
    id: row.id,
    occurredAt: isoOf(row.occurredAt),
    actor: { type: row.actorType, id: row.actorId },
    // Written only by recordAudit, which takes nothing else (the column itself is filtered by free text).
    action: row.action as AuditAction,
    targetType: row.targetType as AuditTargetType,
    targetId: row.targetId,
    requestId: row.requestId,
    ip: row.ip,
    metadata: row.metadata,
  };
}

/** The org's audit events, newest first, one keyset page. */
export async function listAuditEvents(ctx: ServiceContext, filters: AuditFilters, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(auditEvents.orgId, ctx.orgId)];
  const actions = splitList(filters.action);
  const actors = splitList(filters.actorId);
  if (actions?.length) where.push(inArray(auditEvents.action, actions));
  if (actors?.length) where.push(inArray(auditEvents.actorId, actors));
  if (filters.targetType) where.push(eq(auditEvents.targetType, filters.targetType));
  if (filters.targetId) where.push(eq(auditEvents.targetId, filters.targetId));
  if (filters.from) where.push(gte(auditEvents.occurredAt, parseTimestamp(filters.from, "/from")));
  if (filters.to) where.push(lt(auditEvents.occurredAt, parseTimestamp(filters.to, "/to")));
  if (page.beforeId) where.push(lt(auditEvents.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(auditEvents)
    .where(and(...where))
    .orderBy(desc(auditEvents.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: items.map(toAuditEvent), hasMore };
}
