import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { Db, Tx } from "../../db/client.ts";
import { attachments, backupJobs, backupPolicies, dataSources } from "../../db/schema.ts";
import { isoOf, nowMs } from "../../lib/clock.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { AppError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import { nextRunAfter } from "../../scheduler/cron.ts";
import type { ScheduleSync } from "../../scheduler/types.ts";
import { isUniqueViolation } from "../../db/unique-violation.ts";
import { checkPhysicalAttachment } from "./physical.ts";

type AttachmentRow = typeof attachments.$inferSelect;

const duplicate = () => new AppError("CONFLICT", "this policy is already attached to this data source", [{ path: "/policyId", message: "already attached to the data source" }]);
const missing = () => new AppError("NOT_FOUND", "attachment not found");

async function lastJobOf(db: Db | Tx, row: AttachmentRow) {
  const job = (
    await db
      .select()
      .from(backupJobs)
      .where(and(eq(backupJobs.orgId, row.orgId), eq(backupJobs.dataSourceId, row.dataSourceId), eq(backupJobs.attachmentId, row.id)))
      .orderBy(desc(backupJobs.id))
      .limit(1)
  )[0];
  if (!job) return null;
  return {
    id: job.id,
    status: job.status,
    trigger: job.trigger,
    queuedAt: isoOf(job.queuedAt),
    startedAt: job.startedAt === null ? null : isoOf(job.startedAt),
    finishedAt: job.finishedAt === null ? null : isoOf(job.finishedAt),
    error: job.error ?? null,
  };
}

/** The API view: the row plus what the scheduler will do next and what it last did. */
async function toAttachment(db: Db | Tx, row: AttachmentRow, schedule: { scheduleCron: string; timezone: string }, now = nowMs()) {
  const next = row.enabled ? nextRunAfter(schedule.scheduleCron, schedule.timezone, now) : null;
  return {
    id: row.id,
    dataSourceId: row.dataSourceId,
    policyId: row.policyId,
    enabled: row.enabled,
    nextRunAt: next === null ? null : isoOf(next),
    lastScheduledAt: row.lastScheduledAt === null ? null : isoOf(row.lastScheduledAt),
    lastJob: await lastJobOf(db, row),
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
}

// A function, not a constant: the table bindings change when the store is PostgreSQL
// (src/db/schema.ts), and a selection built at import would map PostgreSQL rows with SQLite columns.
const withSchedule = () => ({ att: attachments, scheduleCron: backupPolicies.scheduleCron, timezone: backupPolicies.timezone });

async function getJoined(db: Db | Tx, orgId: string, id: string) {
  const found = (
    await db
      .select(withSchedule())
      .from(attachments)
      .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
      .where(and(eq(attachments.orgId, orgId), eq(attachments.id, id)))
  )[0];
  if (!found) throw missing();
  return found;
}

export async function createAttachment(ctx: ServiceContext, scheduler: ScheduleSync, input: { dataSourceId: string; policyId: string; enabled?: boolean }) {
  const now = nowMs();
  const row: AttachmentRow = {
    id: newId("att"),
    orgId: ctx.orgId,
    dataSourceId: input.dataSourceId,
    policyId: input.policyId,
    enabled: input.enabled ?? true,
    lastScheduledAt: null,
    createdAt: now,
    updatedAt: now,
  };
  let policy: { scheduleCron: string; timezone: string };
  try {
    policy = await ctx.db.transaction(async (tx) => {
      const source = (
        await tx
          .select({ id: dataSources.id, engine: dataSources.engine })
          .from(dataSources)
          .where(and(eq(dataSources.orgId, ctx.orgId), eq(dataSources.id, input.dataSourceId)))
      )[0];
      if (!source) throw new AppError("NOT_FOUND", "data source not found", [{ path: "/dataSourceId", message: "no such data source" }]);
      const found = (
        await tx
          .select({ scheduleCron: backupPolicies.scheduleCron, timezone: backupPolicies.timezone, method: backupPolicies.method })
          .from(backupPolicies)
          .where(and(eq(backupPolicies.orgId, ctx.orgId), eq(backupPolicies.id, input.policyId)))
      )[0];
      if (!found) throw new AppError("NOT_FOUND", "backup policy not found", [{ path: "/policyId", message: "no such backup policy" }]);
      const existing = (
        await tx
          .select({ id: attachments.id })
          .from(attachments)
          .where(and(eq(attachments.policyId, input.policyId), eq(attachments.dataSourceId, input.dataSourceId)))
      )[0];
      if (existing) throw duplicate();
      if (found.method === "physical") await checkPhysicalAttachment(tx, source, input.policyId);
      await tx.insert(attachments).values(row);
      await recordAudit(tx, ctx, {
        action: "attachment.created",
        targetType: "attachment",
        targetId: row.id,
        metadata: { dataSourceId: row.dataSourceId, policyId: row.policyId, enabled: row.enabled },
      });
      return found;
    });
  } catch (error) {
    // The unique index is the real guard: a concurrent insert that won the race lands here.
    if (isUniqueViolation(error, "attachments.policy_id, attachments.data_source_id")) throw duplicate();
    throw error;
  }
  await scheduler.sync(row.id);
  return toAttachment(ctx.db, row, policy);
}

export async function getAttachment(ctx: ServiceContext, id: string) {
  const { att, ...schedule } = await getJoined(ctx.db, ctx.orgId, id);
  return toAttachment(ctx.db, att, schedule);
}

export async function listAttachments(ctx: ServiceContext, filters: { dataSourceId?: string; policyId?: string; enabled?: "true" | "false" }, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(attachments.orgId, ctx.orgId)];
  if (filters.dataSourceId) where.push(eq(attachments.dataSourceId, filters.dataSourceId));
  if (filters.policyId) where.push(eq(attachments.policyId, filters.policyId));
  if (filters.enabled) where.push(eq(attachments.enabled, filters.enabled === "true"));
  if (page.beforeId) where.push(lt(attachments.id, page.beforeId));
  const rows = await ctx.db
    .select(withSchedule())
    .from(attachments)
    .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
    .where(and(...where))
    .orderBy(desc(attachments.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  const now = nowMs();
  return { items: await Promise.all(items.map(({ att, ...schedule }) => toAttachment(ctx.db, att, schedule, now))), hasMore };
}

export async function updateAttachment(ctx: ServiceContext, scheduler: ScheduleSync, id: string, patch: { enabled: boolean }) {
  const result = await ctx.db.transaction(async (tx) => {
    const { att, ...schedule } = await getJoined(tx, ctx.orgId, id);
    if (att.enabled === patch.enabled) return { att, schedule };
    const next = { ...att, enabled: patch.enabled, updatedAt: nowMs() };
    await tx.update(attachments).set({ enabled: next.enabled, updatedAt: next.updatedAt }).where(eq(attachments.id, id));
    await recordAudit(tx, ctx, { action: "attachment.updated", targetType: "attachment", targetId: id, metadata: { enabled: next.enabled } });
    return { att: next, schedule };
  });
  await scheduler.sync(id);
  return toAttachment(ctx.db, result.att, result.schedule);
}

/** Detach: the attachment goes, its jobs and their files stay (they are history). */
export async function deleteAttachment(ctx: ServiceContext, scheduler: ScheduleSync, id: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const { att } = await getJoined(tx, ctx.orgId, id);
    await tx.delete(attachments).where(eq(attachments.id, id));
    await recordAudit(tx, ctx, {
      action: "attachment.deleted",
      targetType: "attachment",
      targetId: id,
      metadata: { dataSourceId: att.dataSourceId, policyId: att.policyId },
    });
  });
  await scheduler.sync(id);
}
