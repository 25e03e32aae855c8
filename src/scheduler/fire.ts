import { isUniqueViolation } from "../db/unique-violation.ts";
import { and, desc, eq, inArray, sql } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { preparedQuery } from "../db/prepared.ts";
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

const p = sql.placeholder;

/**
 * The statements of a firing, prepared once per store: at 2,000 firings in one minute,
 * building and compiling them each time was half of the scheduler's work.
 */
const statements = (db: Db) =>
  preparedQuery(db, "scheduler.fire", () => ({
    attachment: db
      .select({ att: attachments, destinationId: backupPolicies.destinationId })
      .from(attachments)
      .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
      .where(eq(attachments.id, p("attachmentId")))
      .prepare(),
    markScheduled: db
      .update(attachments)
      .set({ lastScheduledAt: sql`${p("scheduledAt")}` })
      .where(eq(attachments.id, p("attachmentId")))
      .prepare(),
    busy: db
      .select({ id: backupJobs.id, status: backupJobs.status })
      .from(backupJobs)
      .where(and(eq(backupJobs.orgId, p("orgId")), eq(backupJobs.dataSourceId, p("dataSourceId")), inArray(backupJobs.status, ["queued", "running"])))
      .orderBy(desc(backupJobs.id))
      .limit(1)
      .prepare(),
    insertJob: db
      .insert(backupJobs)
      .values({
        id: p("id"),
        orgId: p("orgId"),
        dataSourceId: p("dataSourceId"),
        policyId: p("policyId"),
        attachmentId: p("attachmentId"),
        destinationId: p("destinationId"),
        trigger: "schedule",
        status: "queued",
        attempt: 1,
        queuedAt: p("queuedAt"),
        scheduledFor: p("scheduledFor"),
      })
      .prepare(),
  }));

/**
 * One scheduled run of an attachment, in one transaction: a data source never gets a second
 * job while one is queued or running (the run is recorded as skipped instead), the job and
 * its audit event exist together, and `last_scheduled_at` records the run either way so a
 * restart knows what it already did. Inside a caller's transaction (a batch of firings) it is
 * a savepoint of it.
 */
export async function queueScheduledRun(db: Db, attachmentId: string, scheduledAt: number, now: number, catchUp = false): Promise<FireOutcome> {
  try {
    return await queueInTransaction(db, attachmentId, scheduledAt, now, catchUp);
  } catch (err) {
    // Another node (or a leader that just lost its lease) queued this very run: the job's
    // (attachment, scheduled minute) is unique, so a tick fires once whatever fires it.
    if (isUniqueViolation(err, "backup_jobs.attachment_id, backup_jobs.scheduled_for")) return { outcome: "duplicate" };
    throw err;
  }
}

async function queueInTransaction(db: Db, attachmentId: string, scheduledAt: number, now: number, catchUp: boolean): Promise<FireOutcome> {
  return await db.transaction(async (tx) => {
    // Prepared on the transaction's handle: on PostgreSQL the outer handle is another connection.
    const q = statements(tx);
    const row = (await q.attachment.execute({ attachmentId }))[0];
    if (!row || !row.att.enabled) return { outcome: "gone" } as const;
    const att = row.att;
    if (att.lastScheduledAt !== null && att.lastScheduledAt >= scheduledAt) return { outcome: "duplicate" } as const;
    const ctx = { orgId: att.orgId, actor: SCHEDULER_ACTOR, requestId: null, ip: null };
    await q.markScheduled.execute({ scheduledAt, attachmentId: att.id });

    const busy = (await q.busy.execute({ orgId: att.orgId, dataSourceId: att.dataSourceId }))[0];
    if (busy) {
      await recordAudit(tx, ctx, {
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
    await q.insertJob.execute({
      id: jobId,
      orgId: att.orgId,
      dataSourceId: att.dataSourceId,
      policyId: att.policyId,
      attachmentId: att.id,
      destinationId: row.destinationId,
      queuedAt: now,
      scheduledFor: scheduledAt,
    });
    await recordAudit(tx, ctx, {
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
