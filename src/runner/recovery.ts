import { eq, inArray } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { backupJobs, dataSources, restores, storageDestinations } from "../db/schema.ts";
import { removeSqliteTemp, sqliteTempPath } from "../engines/sqlite-restore.ts";
import { realPathOf } from "../lib/host-paths.ts";
import type { Logger } from "../lib/logger.ts";
import { nowMs } from "../lib/clock.ts";
import { deleteBackupObjects } from "../storage/backup-objects.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { RUNNER_ACTOR } from "./queue.ts";
import { recordBackupEvent, recordRestoreEvent } from "../notify/record.ts";

const INTERRUPTED = { code: "INTERRUPTED", message: "the daemon stopped (crash or kill) while the job ran" } as const;

/**
 * At start, before the runner takes jobs: a job still `running` belongs to a process that
 * died. It is marked failed (INTERRUPTED) in one transaction with its audit events, and
 * whatever it may have stored is removed: a partial upload, or a complete object whose
 * success was never recorded. Queued jobs are left alone and run as usual.
 */
export async function recoverInterruptedJobs(db: Db, storage: StorageRegistry, logger: Logger): Promise<string[]> {
  await recoverInterruptedRestores(db, logger);
  const now = nowMs();
  const interrupted = await db.transaction(async (tx) => {
    const rows = await tx.select().from(backupJobs).where(eq(backupJobs.status, "running"));
    for (const job of rows) {
      await tx.update(backupJobs).set({ status: "failed", finishedAt: now, error: INTERRUPTED }).where(eq(backupJobs.id, job.id));
      await recordAudit(tx, { orgId: job.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null }, {
        action: "backup_job.failed",
        targetType: "backup_job",
        targetId: job.id,
        metadata: { dataSourceId: job.dataSourceId, attempt: job.attempt, error: INTERRUPTED },
      });
      await recordBackupEvent(tx, job.id, logger);
    }
    return rows;
  });
  const withFiles = interrupted.filter((j) => j.objectKey && j.destinationId);
  const destinations = withFiles.length
    ? (await db.select().from(storageDestinations).where(inArray(storageDestinations.id, withFiles.map((j) => j.destinationId!))))
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
export async function recoverInterruptedRestores(db: Db, logger: Logger): Promise<string[]> {
  const now = nowMs();
  const rows = await db.transaction(async (tx) => {
    const found = await tx.select().from(restores).where(eq(restores.status, "running"));
    for (const r of found) {
      const error = r.targetDirectory === null ? RESTORE_INTERRUPTED : pitrInterrupted(r.targetDirectory);
      await tx.update(restores).set({ status: "failed", finishedAt: now, error }).where(eq(restores.id, r.id));
      await recordAudit(tx, { orgId: r.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null }, {
        action: "restore.failed",
        targetType: "restore",
        targetId: r.id,
        metadata: { backupJobId: r.backupJobId, targetDataSourceId: r.targetDataSourceId, error },
      });
      await recordRestoreEvent(tx, r.id, logger);
    }
    return found;
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
