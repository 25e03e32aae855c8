import { and, desc, eq, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import { isPostgres, type Db } from "../db/client.ts";
import { rawRun } from "../db/raw.ts";
import { backupJobs, dataSources, restorePlans, restores } from "../db/schema.ts";
import { scratchNameOf } from "../engines/scratch-db.ts";
import { isoOf } from "../lib/clock.ts";
import type { ServiceContext } from "../lib/context.ts";
import { newId } from "../lib/ids.ts";

type RestoreRow = typeof restores.$inferSelect;

export type PlanFireOutcome =
  | { outcome: "queued"; restore: RestoreRow }
  /** The plan's previous run is still queued or running. */
  | { outcome: "skipped"; busyRestoreId: string }
  /** Already acted on this scheduled time. */
  | { outcome: "duplicate" }
  /** The plan is gone (or, for a scheduled run, disabled): drop its timer. */
  | { outcome: "gone" };

export interface PlanRunRequest {
  trigger: "schedule" | "manual";
  /** The scheduled minute (ms) of a scheduled run; recorded so a restart knows it was acted on. */
  scheduledAt?: number;
  catchUp?: boolean;
  now: number;
}

/**
 * Queues one run of a restore plan in one transaction: a restore row with the plan's id,
 * mode and trigger, restoring the data source's newest successful logical backup of one
 * database whose file is still stored (none: the row still goes in and the run fails
 * NO_BACKUP, so it is reported, never silently skipped), and its audit event. A drill's scratch database is named after
 * the restore. A plan never has two runs queued or running at once. `ctx` is who asked: the
 * scheduler or a user (then the plan must be of their org).
 *
 * The busy check and the insert must not interleave with another queuing of the same plan.
 * On SQLite transactions run one at a time (BEGIN IMMEDIATE). On a PostgreSQL store two
 * nodes (or two connections of one) could both see no run and both insert one, so the plan
 * row is locked first: a second queuing waits for the first to commit, then reads its run.
 */
export async function queuePlanRun(db: Db, who: Omit<ServiceContext, "db" | "orgId"> & { orgId?: string }, planId: string, req: PlanRunRequest): Promise<PlanFireOutcome> {
  return await db.transaction(async (tx) => {
    if (isPostgres(tx)) await rawRun(tx, sql`SELECT id FROM restore_plans WHERE id = ${planId} FOR UPDATE`);
    const plan = (await tx.select().from(restorePlans).where(eq(restorePlans.id, planId)))[0];
    if (!plan || (who.orgId !== undefined && plan.orgId !== who.orgId) || (req.trigger === "schedule" && !plan.enabled)) return { outcome: "gone" } as const;
    const ctx = { ...who, orgId: plan.orgId };
    if (req.scheduledAt !== undefined) {
      if (plan.lastScheduledAt !== null && plan.lastScheduledAt >= req.scheduledAt) return { outcome: "duplicate" } as const;
      await tx.update(restorePlans).set({ lastScheduledAt: req.scheduledAt }).where(eq(restorePlans.id, plan.id));
    }
    const busy = (
      await tx
        .select({ id: restores.id })
        .from(restores)
        .where(and(eq(restores.planId, plan.id), inArray(restores.status, ["queued", "running"])))
    )[0];
    if (busy) {
      if (req.trigger === "schedule") {
        await recordAudit(tx, ctx, {
          action: "restore_plan.run_skipped",
          targetType: "restore_plan",
          targetId: plan.id,
          metadata: { reason: "previous_run_busy", busyRestoreId: busy.id, scheduledAt: req.scheduledAt === undefined ? null : isoOf(req.scheduledAt), catchUp: req.catchUp ?? false },
        });
      }
      return { outcome: "skipped", busyRestoreId: busy.id } as const;
    }
    const backup = (
      await tx
        .select({ id: backupJobs.id })
        .from(backupJobs)
        .where(
          and(
            eq(backupJobs.dataSourceId, plan.dataSourceId),
            eq(backupJobs.status, "succeeded"),
            isNotNull(backupJobs.objectKey),
            isNull(backupJobs.fileDeletedAt),
            // A dump of one database only: a physical policy's base backups (restored to a point in
            // time into a directory, never by pg_restore) and whole-server jobs (one file per
            // database) are not what a drill or refresh restores, however new.
            isNull(backupJobs.physical),
            isNull(backupJobs.parts),
          ),
        )
        .orderBy(desc(backupJobs.finishedAt), desc(backupJobs.id))
        .limit(1)
    )[0];
    const target = (await tx.select({ engine: dataSources.engine, database: dataSources.database }).from(dataSources).where(eq(dataSources.id, plan.targetDataSourceId)))[0];
    if (!target) return { outcome: "gone" } as const;
    const id = newId("rst", req.now);
    const network = target.engine !== "sqlite";
    const targetDatabase = !network ? null : plan.mode === "drill" ? scratchNameOf(id) : (plan.targetDatabase ?? target.database);
    const row: RestoreRow = {
      id,
      orgId: plan.orgId,
      backupJobId: backup?.id ?? null,
      sourceDataSourceId: plan.dataSourceId,
      targetDataSourceId: plan.targetDataSourceId,
      targetDatabase,
      databases: null,
      notes: null,
      targetTime: null,
      targetDirectory: null,
      walDelivery: null,
      clean: plan.mode === "refresh",
      status: "queued",
      queuedAt: req.now,
      startedAt: null,
      finishedAt: null,
      bytesRead: 0,
      bytesWritten: 0,
      error: null,
      planId: plan.id,
      mode: plan.mode,
      trigger: req.trigger,
      nodeId: null,
      cancelRequestedAt: null,
      leaseUntil: null,
      verification: null,
    };
    await tx.insert(restores).values(row);
    await recordAudit(tx, ctx, {
      action: "restore.queued",
      targetType: "restore",
      targetId: id,
      metadata: {
        planId: plan.id,
        mode: plan.mode,
        trigger: req.trigger,
        backupJobId: row.backupJobId,
        sourceDataSourceId: plan.dataSourceId,
        targetDataSourceId: plan.targetDataSourceId,
        targetDatabase,
        clean: row.clean,
        ...(req.scheduledAt === undefined ? {} : { scheduledAt: isoOf(req.scheduledAt), catchUp: req.catchUp ?? false }),
      },
    });
    return { outcome: "queued", restore: row } as const;
  });
}
