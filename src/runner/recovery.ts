import { and, eq, inArray, isNotNull, isNull, lt, or } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { backupJobs, backupPolicies, dataSources, restores, storageDestinations } from "../db/schema.ts";
import { removeSqliteTemp, sqliteTempPath } from "../engines/sqlite-restore.ts";
import { realPathOf } from "../lib/host-paths.ts";
import type { Logger } from "../lib/logger.ts";
import { nowMs, storeNowMs } from "../lib/clock.ts";
import { deleteBackupObjects } from "../storage/backup-objects.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { RUNNER_ACTOR } from "./queue.ts";
import { recordBackupEvent, recordRestoreEvent } from "../notify/record.ts";

const INTERRUPTED = { code: "INTERRUPTED", message: "the daemon stopped (crash or kill) while the job ran" } as const;

/**
 * Which `running` rows are dead. At a daemon's start: its own (by node id, or from before
 * node ids) and any whose lease ran out; while it runs (the fleet's reaper): only those whose
 * node stopped renewing the lease. A live node's job is never touched.
 */
export interface RecoveryScope {
  nodeId?: string;
  expiredOnly?: boolean;
  /** Queue an interrupted backup again when its policy has retries left (the reaper: another node runs it). */
  retry?: boolean;
  now?: number;
}

/** A requeued job waits this long, so its partial upload is removed before another node writes there again. */
const REQUEUE_GRACE_MS = 3_000;

const deadJobs = (scope: RecoveryScope, now: number) => {
  const expired = and(isNotNull(backupJobs.leaseUntil), lt(backupJobs.leaseUntil, now));
  if (scope.expiredOnly) return and(eq(backupJobs.status, "running"), expired);
  if (!scope.nodeId) return eq(backupJobs.status, "running");
  return and(eq(backupJobs.status, "running"), or(isNull(backupJobs.nodeId), eq(backupJobs.nodeId, scope.nodeId), expired));
};

const deadRestores = (scope: RecoveryScope, now: number) => {
  const expired = and(isNotNull(restores.leaseUntil), lt(restores.leaseUntil, now));
  if (scope.expiredOnly) return and(eq(restores.status, "running"), expired);
  if (!scope.nodeId) return eq(restores.status, "running");
  return and(eq(restores.status, "running"), or(isNull(restores.nodeId), eq(restores.nodeId, scope.nodeId), expired));
};

/**
 * At start, before the runner takes jobs: a job still `running` belongs to a process that
 * died. It is marked failed (INTERRUPTED) in one transaction with its audit events, and
 * whatever it may have stored is removed: a partial upload, or a complete object whose
 * success was never recorded. Queued jobs are left alone and run as usual.
 */
export async function recoverInterruptedJobs(db: Db, storage: StorageRegistry, logger: Logger, scope: RecoveryScope = {}): Promise<string[]> {
  await recoverInterruptedRestores(db, logger, scope);
  const now = scope.now ?? nowMs();
  // Leases are in the store's clock (every node's the same), not this node's.
  const leaseNow = scope.now ?? storeNowMs();
  const interrupted = await db.transaction(async (tx) => {
    const rows = await tx.select().from(backupJobs).where(deadJobs(scope, leaseNow));
    const taken: typeof rows = [];
    for (const job of rows) {
      const ctx = { orgId: job.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null };
      const retries = scope.retry && job.policyId ? ((await tx.select({ retries: backupPolicies.retries }).from(backupPolicies).where(eq(backupPolicies.id, job.policyId)))[0]?.retries ?? 0) : 0;
      const again = scope.retry && job.attempt <= retries;
      // Conditional on the row being as read: of several nodes reaping at once, one takes it.
      const set = again
        ? { status: "queued" as const, attempt: job.attempt + 1, notBefore: now + REQUEUE_GRACE_MS, startedAt: null, error: INTERRUPTED, nodeId: null, leaseUntil: null, objectKey: null, parts: null }
        : { status: "failed" as const, finishedAt: now, error: INTERRUPTED };
      const won = await tx
        .update(backupJobs)
        .set(set)
        .where(and(eq(backupJobs.id, job.id), eq(backupJobs.status, "running"), eq(backupJobs.attempt, job.attempt)))
        .returning({ id: backupJobs.id });
      if (!won.length) continue;
      taken.push(job);
      await recordAudit(tx, ctx, {
        action: again ? "backup_job.retry_scheduled" : "backup_job.failed",
        targetType: "backup_job",
        targetId: job.id,
        metadata: { dataSourceId: job.dataSourceId, attempt: job.attempt, error: INTERRUPTED, nodeId: job.nodeId },
      });
      if (!again) await recordBackupEvent(tx, job.id, logger);
    }
    return taken;
  });
  const withFiles = interrupted.filter((j) => j.objectKey && j.destinationId);
  const destinations = withFiles.length
    ? await db
        .select()
        .from(storageDestinations)
        .where(
          inArray(
            storageDestinations.id,
            withFiles.map((j) => j.destinationId!),
          ),
        )
    : [];
  for (const job of withFiles) {
    const destination = destinations.find((d) => d.id === job.destinationId);
    if (!destination) continue;
    try {
      // A whole-server job: every part it planned (its folder's objects, and uploads cut short).
      await deleteBackupObjects(storage.driverFor(destination), job.objectKey!, { partKeys: job.parts?.map((p) => p.objectKey), uploads: true });
    } catch (err) {
      logger.warn("could not remove an interrupted job's upload", { jobId: job.id, objectKey: job.objectKey, error: err });
    }
  }
  if (interrupted.length) logger.warn("marked interrupted jobs failed", { jobs: interrupted.map((j) => j.id) });
  return interrupted.map((j) => j.id);
}

const RESTORE_INTERRUPTED = {
  code: "INTERRUPTED",
  message:
    "the daemon stopped (crash or kill) while the restore ran: a SQLite target is unchanged (its temp file was removed), " +
    "a PostgreSQL target is unchanged (pg_restore's single transaction was never committed), " +
    "a MySQL/MariaDB target may be partially restored; run the restore again",
} as const;

/** A point-in-time restore cut short leaves what it had written: never started on, never deleted blindly. */
const pitrInterrupted = (dir: string) => ({
  code: "INTERRUPTED" as const,
  message: `the daemon stopped (crash or kill) while the point-in-time restore ran: ${dir} may hold an incomplete data directory; do not start PostgreSQL on it, empty it and run the restore again`,
});

/**
 * Restores left `running` by a process that died: failed INTERRUPTED (never re-run: the
 * target's state is unknown), and the SQLite temp file they may have left beside the target
 * removed. Returns their ids.
 */
export async function recoverInterruptedRestores(db: Db, logger: Logger, scope: RecoveryScope = {}): Promise<string[]> {
  const now = scope.now ?? nowMs();
  // Leases are in the store's clock (every node's the same), not this node's.
  const leaseNow = scope.now ?? storeNowMs();
  const rows = await db.transaction(async (tx) => {
    const found = await tx.select().from(restores).where(deadRestores(scope, leaseNow));
    const taken: typeof found = [];
    for (const r of found) {
      const error = r.targetDirectory === null ? RESTORE_INTERRUPTED : pitrInterrupted(r.targetDirectory);
      const won = await tx
        .update(restores)
        .set({ status: "failed", finishedAt: now, error })
        .where(and(eq(restores.id, r.id), eq(restores.status, "running")))
        .returning({ id: restores.id });
      if (!won.length) continue;
      taken.push(r);
      await recordAudit(
        tx,
        { orgId: r.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null },
        {
          action: "restore.failed",
          targetType: "restore",
          targetId: r.id,
          metadata: { backupJobId: r.backupJobId, targetDataSourceId: r.targetDataSourceId, error },
        },
      );
      await recordRestoreEvent(tx, r.id, logger);
    }
    return taken;
  });
  for (const r of rows) {
    const target = (await db.select({ engine: dataSources.engine, path: dataSources.path }).from(dataSources).where(eq(dataSources.id, r.targetDataSourceId)))[0];
    if (target?.engine !== "sqlite" || !target.path) continue;
    // The temp file was made beside the path's real file (what the restore wrote to).
    for (const path of new Set([target.path, realPathOf(target.path) ?? target.path])) removeSqliteTemp(sqliteTempPath(path, r.id));
  }
  if (rows.length) logger.warn("marked interrupted restores failed", { restores: rows.map((r) => r.id) });
  return rows.map((r) => r.id);
}
