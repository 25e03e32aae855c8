import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { Db, Tx } from "../../db/client.ts";
import { restorePlans, restores } from "../../db/schema.ts";
import { isoOf, nowMs } from "../../lib/clock.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import type { JobControl } from "../../runner/control.ts";
import { nextRunAfter } from "../../scheduler/cron.ts";
import { queuePlanRun } from "../../scheduler/plan-fire.ts";
import type { ScheduleSync } from "../../scheduler/types.ts";
import { isUniqueViolation } from "../../db/unique-violation.ts";
import { presentRestore } from "../restores/service.ts";
import { checkPlan, nameTaken, type PlanFields } from "./validate.ts";

type PlanRow = typeof restorePlans.$inferSelect;

export interface PlanInput {
  name: string;
  dataSourceId: string;
  mode: "drill" | "refresh";
  scheduleCron: string;
  timezone?: string;
  target: { dataSourceId: string; database?: string };
  checks?: { name: string; sql: string; expect: string }[];
  enabled?: boolean;
}
export type PlanPatch = Partial<PlanInput>;

async function findPlan(db: Db | Tx, orgId: string, id: string): Promise<PlanRow> {
  const row = (
    await db
      .select()
      .from(restorePlans)
      .where(and(eq(restorePlans.orgId, orgId), eq(restorePlans.id, id)))
  )[0];
  if (!row) throw notFound("restore plan");
  return row;
}

/** The API shape: the plan, when it runs next, and its newest run (with live progress). */
export async function presentPlan(db: Db, row: PlanRow, control: JobControl, now = nowMs()) {
  const last = (
    await db
      .select()
      .from(restores)
      .where(and(eq(restores.orgId, row.orgId), eq(restores.planId, row.id)))
      .orderBy(desc(restores.id))
      .limit(1)
  )[0];
  const next = row.enabled ? nextRunAfter(row.scheduleCron, row.timezone, now) : null;
  return {
    id: row.id,
    name: row.name,
    dataSourceId: row.dataSourceId,
    mode: row.mode,
    scheduleCron: row.scheduleCron,
    timezone: row.timezone,
    target: { dataSourceId: row.targetDataSourceId, database: row.targetDatabase },
    checks: row.checks,
    enabled: row.enabled,
    nextRunAt: next === null ? null : isoOf(next),
    lastScheduledAt: row.lastScheduledAt === null ? null : isoOf(row.lastScheduledAt),
    lastRun: last ? presentRestore(last, control) : null,
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
}

/** Turns a lost race on the name index into the same 409 as the pre-check. */
async function withNameGuard<T>(name: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (name !== undefined && isUniqueViolation(error, "restore_plans.org_id, restore_plans.name")) throw nameTaken(name);
    throw error;
  }
}

async function requireNameFree(tx: Tx, orgId: string, name: string, exceptId?: string): Promise<void> {
  const other = (
    await tx
      .select({ id: restorePlans.id })
      .from(restorePlans)
      .where(and(eq(restorePlans.orgId, orgId), eq(restorePlans.name, name)))
  )[0];
  if (other && other.id !== exceptId) throw nameTaken(name);
}

const auditFields = (p: Pick<PlanRow, "name" | "mode" | "dataSourceId" | "targetDataSourceId" | "targetDatabase" | "scheduleCron" | "timezone" | "enabled" | "checks">) => ({
  name: p.name,
  mode: p.mode,
  dataSourceId: p.dataSourceId,
  targetDataSourceId: p.targetDataSourceId,
  targetDatabase: p.targetDatabase,
  scheduleCron: p.scheduleCron,
  timezone: p.timezone,
  enabled: p.enabled,
  checks: p.checks.map((c) => c.name),
});

export async function createPlan(ctx: ServiceContext, scheduler: ScheduleSync, input: PlanInput): Promise<PlanRow> {
  const now = nowMs();
  const row = await withNameGuard(
    input.name,
    async () =>
      await ctx.db.transaction(async (tx) => {
        const fields: PlanFields = { ...input, timezone: input.timezone ?? "UTC", checks: input.checks ?? [], enabled: input.enabled ?? true };
        const checked = await checkPlan(tx, ctx.orgId, fields);
        await requireNameFree(tx, ctx.orgId, input.name);
        const row: PlanRow = { id: newId("rpl", now), orgId: ctx.orgId, ...checked, lastScheduledAt: null, createdAt: now, updatedAt: now };
        await tx.insert(restorePlans).values(row);
        await recordAudit(tx, ctx, { action: "restore_plan.created", targetType: "restore_plan", targetId: row.id, metadata: auditFields(row) });
        return row;
      }),
  );
  await scheduler.syncPlan(row.id);
  return row;
}

export async function getPlan(ctx: ServiceContext, id: string): Promise<PlanRow> {
  return findPlan(ctx.db, ctx.orgId, id);
}

export async function listPlans(ctx: ServiceContext, filters: { dataSourceId?: string; mode?: "drill" | "refresh"; enabled?: "true" | "false" }, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(restorePlans.orgId, ctx.orgId)];
  if (filters.dataSourceId) where.push(eq(restorePlans.dataSourceId, filters.dataSourceId));
  if (filters.mode) where.push(eq(restorePlans.mode, filters.mode));
  if (filters.enabled) where.push(eq(restorePlans.enabled, filters.enabled === "true"));
  if (page.beforeId) where.push(lt(restorePlans.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(restorePlans)
    .where(and(...where))
    .orderBy(desc(restorePlans.id))
    .limit(page.limit + 1);
  return takePage(rows, page.limit);
}

/** Partial update: the result is checked as a whole, as a create would be. */
export async function updatePlan(ctx: ServiceContext, scheduler: ScheduleSync, id: string, patch: PlanPatch): Promise<PlanRow> {
  const result = await withNameGuard(
    patch.name,
    async () =>
      await ctx.db.transaction(async (tx) => {
        const before = await findPlan(tx, ctx.orgId, id);
        const fields: PlanFields = {
          name: patch.name ?? before.name,
          dataSourceId: patch.dataSourceId ?? before.dataSourceId,
          mode: patch.mode ?? before.mode,
          scheduleCron: patch.scheduleCron ?? before.scheduleCron,
          timezone: patch.timezone ?? before.timezone,
          // A mode change drops a stored refresh database unless a new target is given.
          target: patch.target ?? { dataSourceId: before.targetDataSourceId, database: (patch.mode ?? before.mode) === "refresh" ? before.targetDatabase : null },
          checks: patch.checks ?? before.checks,
          enabled: patch.enabled ?? before.enabled,
        };
        const checked = await checkPlan(tx, ctx.orgId, fields);
        if (patch.name !== undefined) await requireNameFree(tx, ctx.orgId, patch.name, id);
        const next: PlanRow = { ...before, ...checked, updatedAt: nowMs() };
        const changed = (Object.keys(checked) as (keyof typeof checked)[]).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(next[k]));
        if (changed.length === 0) return { row: before, changed };
        await tx.update(restorePlans).set(next).where(eq(restorePlans.id, id));
        await recordAudit(tx, ctx, { action: "restore_plan.updated", targetType: "restore_plan", targetId: id, metadata: { changed, ...auditFields(next) } });
        return { row: next, changed };
      }),
  );
  if (result.changed.length) await scheduler.syncPlan(id);
  return result.row;
}

/**
 * Deletes a plan. Its past runs stay (restores are history); a run still queued is
 * canceled, a running one finishes.
 */
export async function deletePlan(ctx: ServiceContext, scheduler: ScheduleSync, id: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const row = await findPlan(tx, ctx.orgId, id);
    const canceled = await tx
      .update(restores)
      .set({ status: "canceled", finishedAt: nowMs(), error: { code: "CANCELED", message: "the restore plan was deleted before this run started; nothing was restored" } })
      .where(and(eq(restores.planId, id), eq(restores.status, "queued")))
      .returning({ id: restores.id });
    for (const r of canceled) await recordAudit(tx, ctx, { action: "restore.canceled", targetType: "restore", targetId: r.id, metadata: { planId: id, was: "queued", reason: "plan_deleted" } });
    await tx.delete(restorePlans).where(eq(restorePlans.id, id));
    await recordAudit(tx, ctx, { action: "restore_plan.deleted", targetType: "restore_plan", targetId: id, metadata: { ...auditFields(row), canceledRuns: canceled.map((r) => r.id) } });
  });
  await scheduler.syncPlan(id);
}

/** Queues a run now (202). A plan whose previous run is still queued or running: 409. */
export async function runPlanNow(ctx: ServiceContext, control: JobControl, id: string) {
  const result = await queuePlanRun(ctx.db, ctx, id, { trigger: "manual", now: nowMs() });
  if (result.outcome === "gone" || result.outcome === "duplicate") throw notFound("restore plan");
  if (result.outcome === "skipped") throw new AppError("CONFLICT", `the plan's previous run is still queued or running (${result.busyRestoreId})`);
  control.wakeNow();
  return result.restore;
}
