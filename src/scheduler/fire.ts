import { and, desc, eq, inArray } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { attachments, backupJobs, backupPolicies } from "../db/schema.ts";
import { isoOf } from "../lib/clock.ts";
import { newId } from "../lib/ids.ts";
import type { QueuedJob } from "./types.ts";

export const SCHEDULER_ACTOR = { type: "system", id: "scheduler" } as const;

export type FireOutcome =
  | { outcome: "queued"; job: QueuedJob }
  | { outcome: "skipped"; reason: "source_busy"; busyJobId: string }
  /** Already acted on this scheduled time (a catch-up and a timer, or two timers, for the same run). */
  | { outcome: "duplicate" }
  /** The attachment is gone or disabled: the caller should drop its timer. */
  | { outcome: "gone" };

/**
 * One scheduled run of an attachment, in one transaction: a data source never gets a second
 * job while one is queued or running (the run is recorded as skipped instead), the job and
 * its audit event exist together, and `last_scheduled_at` records the run either way so a
 * restart knows what it already did.
 */
export function queueScheduledRun(db: Db, attachmentId: string, scheduledAt: number, now: number, catchUp = false): FireOutcome {
  return db.transaction((tx) => {
    const row = tx
      .select({ att: attachments, destinationId: backupPolicies.destinationId })
      .from(attachments)
      .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
      .where(eq(attachments.id, attachmentId))
      .get();
    if (!row || !row.att.enabled) return { outcome: "gone" } as const;
    const att = row.att;
    if (att.lastScheduledAt !== null && att.lastScheduledAt >= scheduledAt) return { outcome: "duplicate" } as const;
    const ctx = { orgId: att.orgId, actor: SCHEDULER_ACTOR, requestId: null, ip: null };
    tx.update(attachments).set({ lastScheduledAt: scheduledAt }).where(eq(attachments.id, att.id)).run();

    const busy = tx
      .select({ id: backupJobs.id, status: backupJobs.status })
      .from(backupJobs)
      .where(and(eq(backupJobs.orgId, att.orgId), eq(backupJobs.dataSourceId, att.dataSourceId), inArray(backupJobs.status, ["queued", "running"])))
      .orderBy(desc(backupJobs.id))
      .limit(1)
      .get();
    if (busy) {
      recordAudit(tx, ctx, {
        action: "attachment.run_skipped",
        targetType: "attachment",
        targetId: att.id,
        metadata: {
          reason: "source_busy",
          busyJobId: busy.id,
          busyJobStatus: busy.status,
          dataSourceId: att.dataSourceId,
          policyId: att.policyId,
          scheduledAt: isoOf(scheduledAt),
          catchUp,
        },
      });
      return { outcome: "skipped", reason: "source_busy", busyJobId: busy.id } as const;
    }

    const jobId = newId("job");
    tx.insert(backupJobs)
      .values({
        id: jobId,
        orgId: att.orgId,
        dataSourceId: att.dataSourceId,
        policyId: att.policyId,
        attachmentId: att.id,
        destinationId: row.destinationId,
        trigger: "schedule",
        status: "queued",
        attempt: 1,
        queuedAt: now,
      })
      .run();
    recordAudit(tx, ctx, {
      action: "backup_job.queued",
      targetType: "backup_job",
      targetId: jobId,
      metadata: {
        trigger: "schedule",
        dataSourceId: att.dataSourceId,
        policyId: att.policyId,
        attachmentId: att.id,
        destinationId: row.destinationId,
        scheduledAt: isoOf(scheduledAt),
        catchUp,
      },
    });
    const job: QueuedJob = { id: jobId, orgId: att.orgId, dataSourceId: att.dataSourceId, attachmentId: att.id, policyId: att.policyId };
    return { outcome: "queued", job } as const;
  });
}
