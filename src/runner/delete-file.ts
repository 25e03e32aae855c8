import { eq } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { backupJobs, type storageDestinations } from "../db/schema.ts";
import type { ServiceContext } from "../lib/context.ts";
import { nowMs } from "../lib/clock.ts";
import { deleteBackupObjects } from "../storage/backup-objects.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import type { JobRow } from "./backup.ts";

/**
 * Deletes a backup's stored file. The job is marked `fileDeletedAt` (with its audit event)
 * BEFORE the object is removed, so a crash in between leaves at worst an orphaned object,
 * never a listed backup whose file is gone. If the delete fails, the mark is undone (and
 * that is audited too), so the file stays listed and a later attempt can delete it.
 */
export async function deleteBackupFile(
  db: Db,
  storage: StorageRegistry,
  destination: typeof storageDestinations.$inferSelect,
  job: Pick<JobRow, "id" | "dataSourceId" | "objectKey"> & { parts?: JobRow["parts"] },
  ctx: Omit<ServiceContext, "db">,
  metadata: { reason: "retention" | "manual"; policyId?: string | null },
): Promise<void> {
  const key = job.objectKey!;
  await db.transaction(async (tx) => {
    await tx.update(backupJobs).set({ fileDeletedAt: nowMs() }).where(eq(backupJobs.id, job.id));
    await recordAudit(tx, ctx, {
      action: "backup_file.deleted",
      targetType: "backup_job",
      targetId: job.id,
      metadata: { ...metadata, dataSourceId: job.dataSourceId, objectKey: key },
    });
  });
  try {
    // A whole-server job's key is its folder: every part goes (a backup is kept or deleted whole).
    await deleteBackupObjects(storage.driverFor(destination), key, { partKeys: job.parts?.map((p) => p.objectKey) });
  } catch (err) {
    await db.transaction(async (tx) => {
      await tx.update(backupJobs).set({ fileDeletedAt: null }).where(eq(backupJobs.id, job.id));
      await recordAudit(tx, ctx, {
        action: "backup_file.delete_failed",
        targetType: "backup_job",
        targetId: job.id,
        metadata: { ...metadata, dataSourceId: job.dataSourceId, objectKey: key, error: err instanceof Error ? err.message : String(err) },
      });
    });
    throw err;
  }
}
