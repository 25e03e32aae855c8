import { and, desc, eq, isNull } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { backupJobs, backupPolicies, storageDestinations } from "../db/schema.ts";
import type { Logger } from "../lib/logger.ts";
import { nowMs } from "../lib/clock.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import type { JobRow } from "./backup.ts";
import { deleteBackupFile } from "./delete-file.ts";
import { RUNNER_ACTOR } from "./queue.ts";
import { selectBackupsToKeep } from "./retention.ts";
import { pruneWal } from "./wal-retention.ts";

/**
 * After a successful backup: the policy's retention over that data source's successful
 * backups under that policy (files still present), each removal through deleteBackupFile
 * (marked first, then deleted). The pure rule keeps the newest success.
 */
export async function applyRetention(db: Db, storage: StorageRegistry, logger: Logger, job: Pick<JobRow, "dataSourceId" | "policyId">): Promise<string[]> {
  if (!job.policyId) return [];
  const policy = (await db.select().from(backupPolicies).where(eq(backupPolicies.id, job.policyId)))[0];
  if (!policy) return [];
  const candidates = await db
    .select()
    .from(backupJobs)
    .where(and(eq(backupJobs.dataSourceId, job.dataSourceId), eq(backupJobs.policyId, job.policyId), eq(backupJobs.status, "succeeded"), isNull(backupJobs.fileDeletedAt)))
    .orderBy(desc(backupJobs.id));
  const decision = selectBackupsToKeep(
    candidates.map((c) => ({ id: c.id, status: c.status, at: c.startedAt ?? c.queuedAt })),
    policy.retention,
    nowMs(),
    policy.timezone,
  );
  const removed: string[] = [];
  for (const id of decision.remove) {
    const row = candidates.find((c) => c.id === id)!;
    const destination = row.destinationId ? (await db.select().from(storageDestinations).where(eq(storageDestinations.id, row.destinationId)))[0] : undefined;
    if (!destination || !row.objectKey) continue;
    try {
      await deleteBackupFile(
        db,
        storage,
        destination,
        row,
        { orgId: row.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null },
        {
          reason: "retention",
          policyId: job.policyId,
        },
      );
    } catch (err) {
      logger.warn("retention could not delete a backup file; it stays listed and is retried", { jobId: id, error: err });
      continue;
    }
    removed.push(id);
  }
  // A physical policy keeps the WAL its kept base backups need, and no more.
  if (policy.method === "physical") await pruneWal(db, storage, logger, job.dataSourceId);
  return removed;
}

/**
 * The hourly sweep: retention for every (data source, policy) that has stored backups, so a
 * policy whose retention was edited, and deletions that failed before, also reach sources
 * that get no new backups. It never eats those sources away: every rule counts from their
 * newest backup, not from now.
 */
export async function sweepRetention(db: Db, storage: StorageRegistry, logger: Logger): Promise<number> {
  const pairs = await db
    .selectDistinct({ dataSourceId: backupJobs.dataSourceId, policyId: backupJobs.policyId })
    .from(backupJobs)
    .where(and(eq(backupJobs.status, "succeeded"), isNull(backupJobs.fileDeletedAt)));
  let removed = 0;
  for (const pair of pairs) {
    try {
      removed += (await applyRetention(db, storage, logger, pair)).length;
    } catch (err) {
      logger.warn("retention sweep failed for a data source", { ...pair, error: err });
    }
  }
  return removed;
}
