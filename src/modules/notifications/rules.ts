import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { Db, Tx } from "../../db/client.ts";
import { backupPolicies, dataSources, notificationRules } from "../../db/schema.ts";
import { isoOf, nowMs } from "../../lib/clock.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import type { RuleEvent } from "../../notify/events.ts";
import { clearStaleMarks } from "../../notify/stale.ts";
import { findChannel } from "./channels.ts";

type RuleRow = typeof notificationRules.$inferSelect;

export interface RuleInput {
  channelId: string;
  events: string[];
  dataSourceId?: string;
  policyId?: string;
  staleAfterSeconds?: number;
}

export interface RulePatch {
  channelId?: string;
  events?: string[];
  dataSourceId?: string | null;
  policyId?: string | null;
  staleAfterSeconds?: number | null;
}

export function toRule(row: RuleRow) {
  return {
    id: row.id,
    channelId: row.channelId,
    events: row.events as RuleEvent[],
    dataSourceId: row.dataSourceId,
    policyId: row.policyId,
    staleAfterSeconds: row.staleAfterSeconds,
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
}

const auditView = (row: RuleRow) => ({ channelId: row.channelId, events: row.events, dataSourceId: row.dataSourceId, policyId: row.policyId, staleAfterSeconds: row.staleAfterSeconds });

/** The referenced channel, data source and policy must be the org's: else 404 naming the field. */
async function checkReferences(tx: Tx, orgId: string, refs: { channelId?: string; dataSourceId?: string | null; policyId?: string | null }): Promise<void> {
  const missing = (what: string, path: string) => new AppError("NOT_FOUND", `${what} not found`, [{ path, message: `no such ${what}` }]);
  if (refs.channelId !== undefined) {
    try {
      await findChannel(tx, orgId, refs.channelId);
    } catch {
      throw missing("notification channel", "/channelId");
    }
  }
  if (
    refs.dataSourceId &&
    !(
      await tx
        .select({ id: dataSources.id })
        .from(dataSources)
        .where(and(eq(dataSources.orgId, orgId), eq(dataSources.id, refs.dataSourceId)))
    )[0]
  ) {
    throw missing("data source", "/dataSourceId");
  }
  if (
    refs.policyId &&
    !(
      await tx
        .select({ id: backupPolicies.id })
        .from(backupPolicies)
        .where(and(eq(backupPolicies.orgId, orgId), eq(backupPolicies.id, refs.policyId)))
    )[0]
  ) {
    throw missing("backup policy", "/policyId");
  }
}

export async function findRule(db: Db | Tx, orgId: string, id: string): Promise<RuleRow> {
  const row = (
    await db
      .select()
      .from(notificationRules)
      .where(and(eq(notificationRules.orgId, orgId), eq(notificationRules.id, id)))
  )[0];
  if (!row) throw notFound("notification rule");
  return row;
}

export async function createRule(ctx: ServiceContext, input: RuleInput) {
  const now = nowMs();
  const row: RuleRow = {
    id: newId("nru"),
    orgId: ctx.orgId,
    channelId: input.channelId,
    events: [...new Set(input.events)],
    dataSourceId: input.dataSourceId ?? null,
    policyId: input.policyId ?? null,
    staleAfterSeconds: input.staleAfterSeconds ?? null,
    createdAt: now,
    updatedAt: now,
  };
  await ctx.db.transaction(async (tx) => {
    await checkReferences(tx, ctx.orgId, row);
    await tx.insert(notificationRules).values(row);
    await recordAudit(tx, ctx, { action: "notification_rule.created", targetType: "notification_rule", targetId: row.id, metadata: auditView(row) });
  });
  return toRule(row);
}

export async function getRule(ctx: ServiceContext, id: string) {
  return toRule(await findRule(ctx.db, ctx.orgId, id));
}

export async function listRules(ctx: ServiceContext, filters: { channelId?: string; dataSourceId?: string }, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(notificationRules.orgId, ctx.orgId)];
  if (filters.channelId) where.push(eq(notificationRules.channelId, filters.channelId));
  if (filters.dataSourceId) where.push(eq(notificationRules.dataSourceId, filters.dataSourceId));
  if (page.beforeId) where.push(lt(notificationRules.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(notificationRules)
    .where(and(...where))
    .orderBy(desc(notificationRules.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: items.map(toRule), hasMore };
}

export async function updateRule(ctx: ServiceContext, id: string, patch: RulePatch) {
  return await ctx.db.transaction(async (tx) => {
    const before = await findRule(tx, ctx.orgId, id);
    await checkReferences(tx, ctx.orgId, patch);
    const updated: RuleRow = {
      ...before,
      ...(patch.channelId !== undefined ? { channelId: patch.channelId } : {}),
      ...(patch.events !== undefined ? { events: [...new Set(patch.events)] } : {}),
      ...(patch.dataSourceId !== undefined ? { dataSourceId: patch.dataSourceId } : {}),
      ...(patch.policyId !== undefined ? { policyId: patch.policyId } : {}),
      ...(patch.staleAfterSeconds !== undefined ? { staleAfterSeconds: patch.staleAfterSeconds } : {}),
      updatedAt: Math.max(nowMs(), before.updatedAt + 1),
    };
    const { id: _id, orgId: _org, createdAt: _c, ...set } = updated;
    await tx.update(notificationRules).set(set).where(eq(notificationRules.id, id));
    // What counts as stale changed: judge afresh (a source still stale is announced again).
    if (patch.dataSourceId !== undefined || patch.policyId !== undefined || patch.staleAfterSeconds !== undefined || patch.channelId !== undefined) await clearStaleMarks(tx, id);
    await recordAudit(tx, ctx, { action: "notification_rule.updated", targetType: "notification_rule", targetId: id, metadata: { changed: Object.keys(patch), ...auditView(updated) } });
    return toRule(updated);
  });
}

export async function deleteRule(ctx: ServiceContext, id: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const row = await findRule(tx, ctx.orgId, id);
    await tx.delete(notificationRules).where(eq(notificationRules.id, id));
    await recordAudit(tx, ctx, { action: "notification_rule.deleted", targetType: "notification_rule", targetId: id, metadata: auditView(row) });
  });
}
