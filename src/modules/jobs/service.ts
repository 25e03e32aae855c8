import { and, desc, eq, gte, inArray, lt, type SQL, sql } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { Db, Tx } from "../../db/client.ts";
import { preparedQuery } from "../../db/prepared.ts";
import { attachments, backupJobs, backupPolicies, dataSources, storageDestinations } from "../../db/schema.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowMs } from "../../lib/clock.ts";
import { AppError, invalidInput, notFound } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import { parseTimestamp } from "../../lib/time-input.ts";
import type { JobControl } from "../../runner/control.ts";
import { toBackupJob } from "./serialize.ts";

export type JobRow = typeof backupJobs.$inferSelect;

export interface JobFilters {
  dataSourceId?: string;
  policyId?: string;
  status?: JobRow["status"];
  trigger?: JobRow["trigger"];
  from?: string;
  to?: string;
}

const byId = (db: Db) =>
  preparedQuery(db, "jobs.byId", () =>
    db
      .select()
      .from(backupJobs)
      .where(and(eq(backupJobs.orgId, sql.placeholder("orgId")), eq(backupJobs.id, sql.placeholder("id"))))
      .prepare(),
  );

export async function findJob(db: Db, orgId: string, id: string): Promise<JobRow> {
  const row = (await byId(db).execute({ orgId, id }))[0];
  if (!row) throw notFound("backup job");
  return row;
}

/** The API shape, with live progress for a job the runner is working on. */
export function presentJob(row: JobRow, control: JobControl) {
  const job = toBackupJob(row);
  const live = row.status === "running" ? control.progressOf(row.id) : null;
  return live ? { ...job, progress: live } : job;
}

const LIST_FILTERS = ["dataSourceId", "policyId", "status", "trigger", "from", "to", "beforeId"] as const;
type ListFilter = (typeof LIST_FILTERS)[number];
type ListParams = Partial<Record<ListFilter, string | number>> & { orgId: string; limit: number };

/** The list's query for the filters a request has (one prepared query per combination); values are placeholders. */
function listQuery(db: Db, params: ListParams) {
  const has = (f: ListFilter) => params[f] !== undefined;
  return preparedQuery(db, `jobs.list:${LIST_FILTERS.filter(has).join(",")}`, () => {
    const p = (name: keyof ListParams) => sql.placeholder(name);
    const where: (SQL | undefined)[] = [eq(backupJobs.orgId, p("orgId"))];
    if (has("dataSourceId")) where.push(eq(backupJobs.dataSourceId, p("dataSourceId")));
    if (has("policyId")) where.push(eq(backupJobs.policyId, p("policyId")));
    if (has("status")) where.push(eq(backupJobs.status, p("status")));
    if (has("trigger")) where.push(eq(backupJobs.trigger, p("trigger")));
    if (has("from")) where.push(gte(backupJobs.queuedAt, p("from")));
    if (has("to")) where.push(lt(backupJobs.queuedAt, p("to")));
    if (has("beforeId")) where.push(lt(backupJobs.id, p("beforeId")));
    return db
      .select()
      .from(backupJobs)
      .where(and(...where))
      .orderBy(desc(backupJobs.id))
      .limit(p("limit"))
      .prepare();
  });
}

export async function listJobs(ctx: ServiceContext, filters: JobFilters, page: PageRequest) {
  const params: ListParams = { orgId: ctx.orgId, limit: page.limit + 1 };
  if (filters.dataSourceId) params.dataSourceId = filters.dataSourceId;
  if (filters.policyId) params.policyId = filters.policyId;
  if (filters.status) params.status = filters.status;
  if (filters.trigger) params.trigger = filters.trigger;
  if (filters.from) params.from = parseTimestamp(filters.from, "/from");
  if (filters.to) params.to = parseTimestamp(filters.to, "/to");
  if (page.beforeId) params.beforeId = page.beforeId;
  const rows = await listQuery(ctx.db, params).execute(params);
  return takePage(rows, page.limit);
}

/** Which attachment a run-now uses: the named policy's, or the source's only one. */
async function pickPolicy(tx: Tx, ctx: ServiceContext, dataSourceId: string, policyId?: string) {
  const attached = await tx
    .select({ attachmentId: attachments.id, policyId: attachments.policyId })
    .from(attachments)
    .where(and(eq(attachments.orgId, ctx.orgId), eq(attachments.dataSourceId, dataSourceId)));
  if (policyId) {
    const policy = (
      await tx
        .select()
        .from(backupPolicies)
        .where(and(eq(backupPolicies.orgId, ctx.orgId), eq(backupPolicies.id, policyId)))
    )[0];
    if (!policy) throw invalidInput("/policyId", "policyId does not name a backup policy of this organisation");
    return { policy, attachmentId: attached.find((a) => a.policyId === policyId)?.attachmentId ?? null };
  }
  if (attached.length !== 1) {
    throw invalidInput(
      "/policyId",
      attached.length === 0 ? "the data source has no attached policy: attach one or name a policyId" : "the data source has several attached policies: name the policyId to run",
    );
  }
  const policy = (await tx.select().from(backupPolicies).where(eq(backupPolicies.id, attached[0]!.policyId)))[0]!;
  return { policy, attachmentId: attached[0]!.attachmentId };
}

/** Queues a manual backup. A source never has two backups queued or running: that is a 409. */
export async function runNow(ctx: ServiceContext, input: { dataSourceId: string; policyId?: string }): Promise<JobRow> {
  const now = nowMs();
  return await ctx.db.transaction(async (tx) => {
    const source = (
      await tx
        .select({ id: dataSources.id })
        .from(dataSources)
        .where(and(eq(dataSources.orgId, ctx.orgId), eq(dataSources.id, input.dataSourceId)))
    )[0];
    if (!source) throw invalidInput("/dataSourceId", "dataSourceId does not name a data source of this organisation");
    const { policy, attachmentId } = await pickPolicy(tx, ctx, source.id, input.policyId);
    const busy = (
      await tx
        .select({ id: backupJobs.id })
        .from(backupJobs)
        .where(and(eq(backupJobs.dataSourceId, source.id), inArray(backupJobs.status, ["queued", "running"])))
    )[0];
    if (busy) throw new AppError("CONFLICT", `a backup of this data source is already queued or running (${busy.id})`);
    const row: JobRow = {
      id: newId("job", now),
      orgId: ctx.orgId,
      dataSourceId: source.id,
      policyId: policy.id,
      attachmentId,
      destinationId: policy.destinationId,
      trigger: "manual",
      status: "queued",
      attempt: 1,
      queuedAt: now,
      notBefore: null,
      startedAt: null,
      finishedAt: null,
      bytesIn: 0,
      bytesStored: 0,
      sizeBytes: null,
      storedBytes: null,
      sha256: null,
      objectKey: null,
      format: null,
      error: null,
      nodeId: null,
      cancelRequestedAt: null,
      leaseUntil: null,
      scheduledFor: null,
      fileDeletedAt: null,
      parts: null,
      fingerprint: null,
      physical: null,
    };
    await tx.insert(backupJobs).values(row);
    await recordAudit(tx, ctx, {
      action: "backup_job.queued",
      targetType: "backup_job",
      targetId: row.id,
      metadata: { dataSourceId: source.id, policyId: policy.id, trigger: "manual" },
    });
    return row;
  });
}

/**
 * A queued job is canceled at once; a running one is aborted (its dump killed, its upload
 * removed) and turns `canceled` when its pipeline has stopped. A finished job is a 409.
 */
export async function cancelJob(ctx: ServiceContext, control: JobControl, id: string): Promise<JobRow> {
  const job = await findJob(ctx.db, ctx.orgId, id);
  if (job.status === "queued") {
    const canceled = await ctx.db.transaction(async (tx) => {
      const rows = await tx
        .update(backupJobs)
        .set({ status: "canceled", finishedAt: nowMs(), error: { code: "CANCELED", message: "the job was canceled before it started" } })
        .where(and(eq(backupJobs.id, id), eq(backupJobs.status, "queued")))
        .returning();
      if (rows.length) await recordAudit(tx, ctx, { action: "backup_job.canceled", targetType: "backup_job", targetId: id, metadata: { dataSourceId: job.dataSourceId, was: "queued" } });
      return rows[0];
    });
    if (canceled) return canceled;
    return cancelJob(ctx, control, id); // it started meanwhile
  }
  if (job.status === "running") {
    // Recorded in the row too: in a fleet the job may run on another node, which sees it at
    // its next progress write (within a second) and stops it.
    await ctx.db.transaction(async (tx) => {
      await tx
        .update(backupJobs)
        .set({ cancelRequestedAt: nowMs() })
        .where(and(eq(backupJobs.id, id), eq(backupJobs.status, "running")));
      await recordAudit(tx, ctx, { action: "backup_job.cancel_requested", targetType: "backup_job", targetId: id, metadata: { dataSourceId: job.dataSourceId } });
    });
    control.abortRunning(id, "canceled");
    return findJob(ctx.db, ctx.orgId, id);
  }
  throw new AppError("CONFLICT", `the job is already ${job.status}`);
}

export async function destinationOf(ctx: ServiceContext, job: JobRow) {
  const destination = job.destinationId ? (await ctx.db.select().from(storageDestinations).where(eq(storageDestinations.id, job.destinationId)))[0] : undefined;
  if (!destination) throw new AppError("CONFLICT", "the job's storage destination no longer exists");
  return destination;
}

/** The stored file of a job, or a 409 saying why there is none. */
export async function storedFileOf(ctx: ServiceContext, job: JobRow) {
  if (job.status !== "succeeded" || !job.objectKey) throw new AppError("CONFLICT", `the job has no stored file (status ${job.status})`);
  if (job.fileDeletedAt !== null) throw new AppError("CONFLICT", "the job's file was deleted");
  return { destination: await destinationOf(ctx, job), key: job.objectKey };
}
