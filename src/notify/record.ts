import { and, desc, eq, inArray, ne } from "drizzle-orm";
import type { Tx } from "../db/client.ts";
import { backupJobs, notificationStaleState, restores } from "../db/schema.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { enqueueForRules, matchingRules, type EventScope } from "./outbox.ts";
import { backupData, restoreData, type JobRow } from "./payload.ts";

/**
 * The runner's hooks: called inside the transaction that finishes a job or a restore, they
 * write its deliveries there (outbox.ts). They run in a savepoint and never throw: a
 * notification problem must not keep a job from being recorded as finished.
 */
async function guarded(tx: Tx, what: string, log: Logger | undefined, fn: (tx: Tx) => Promise<void>): Promise<void> {
  try {
    await tx.transaction(async (sp) => fn(sp));
  } catch (err) {
    (log ?? createLogger("info", { service: "snapdb", component: "notify" })).error("could not record the notifications of an event", { what, error: err });
  }
}

/** The previous finished (succeeded or failed) job of the source, of `policyId` when given. */
async function previousOutcome(tx: Tx, job: JobRow, policyId: string | null): Promise<string | null> {
  const where = [eq(backupJobs.dataSourceId, job.dataSourceId), inArray(backupJobs.status, ["succeeded", "failed"]), ne(backupJobs.id, job.id)];
  if (policyId) where.push(eq(backupJobs.policyId, policyId));
  const row = (
    await tx
      .select({ status: backupJobs.status })
      .from(backupJobs)
      .where(and(...where))
      .orderBy(desc(backupJobs.finishedAt), desc(backupJobs.id))
      .limit(1)
  )[0];
  return row?.status ?? null;
}

/**
 * `backup.recovered`, per rule: the first success after a failure (of the rule's policy,
 * when it names one) or after the rule announced the source stale. Stale marks of the
 * rules this success satisfies are cleared, so the next silence is announced again.
 */
async function recovered(tx: Tx, job: JobRow, scope: EventScope, data: Record<string, unknown>): Promise<void> {
  const subscribed = await matchingRules(tx, job.orgId, "backup.recovered", scope);
  const ids = [...new Set([...(await matchingRules(tx, job.orgId, "backup.stale", scope)), ...subscribed].map((r) => r.id))];
  if (!ids.length) return;
  const onSource = and(eq(notificationStaleState.dataSourceId, job.dataSourceId), inArray(notificationStaleState.ruleId, ids));
  const marked = new Set((await tx.select({ ruleId: notificationStaleState.ruleId }).from(notificationStaleState).where(onSource)).map((m) => m.ruleId));
  if (marked.size) await tx.delete(notificationStaleState).where(onSource);
  for (const rule of subscribed) {
    const from = marked.has(rule.id) ? "stale" : (await previousOutcome(tx, job, rule.policyId)) === "failed" ? "failed" : null;
    if (!from) continue;
    const event = { orgId: job.orgId, event: "backup.recovered" as const, occurredAt: job.finishedAt ?? Date.now(), data: { ...data, recoveredFrom: from } };
    await enqueueForRules(tx, event, [rule]);
  }
}

/** A backup job reached its end: `backup.succeeded` or `backup.failed` (and `backup.recovered`). */
export async function recordBackupEvent(tx: Tx, jobId: string, log?: Logger): Promise<void> {
  await guarded(tx, jobId, log, async (sp) => {
    const job = (await sp.select().from(backupJobs).where(eq(backupJobs.id, jobId)))[0];
    if (!job || (job.status !== "succeeded" && job.status !== "failed")) return;
    const scope = { dataSourceIds: [job.dataSourceId], policyId: job.policyId };
    const data = await backupData(sp, job);
    const event = job.status === "succeeded" ? "backup.succeeded" : "backup.failed";
    await enqueueForRules(sp, { orgId: job.orgId, event, occurredAt: job.finishedAt ?? Date.now(), data }, await matchingRules(sp, job.orgId, event, scope));
    if (job.status === "succeeded") await recovered(sp, job, scope, data);
  });
}

/** A restore reached its end: `restore.succeeded` or `restore.failed` (a cancel is neither). */
export async function recordRestoreEvent(tx: Tx, restoreId: string, log?: Logger): Promise<void> {
  await guarded(tx, restoreId, log, async (sp) => {
    const row = (await sp.select().from(restores).where(eq(restores.id, restoreId)))[0];
    if (!row || (row.status !== "succeeded" && row.status !== "failed")) return;
    const event = row.status === "succeeded" ? "restore.succeeded" : "restore.failed";
    // A restore concerns the source it was taken of and the one it wrote: a rule of either matches.
    const scope = { dataSourceIds: [...new Set([row.targetDataSourceId, row.sourceDataSourceId])], policyId: null };
    await enqueueForRules(sp, { orgId: row.orgId, event, occurredAt: row.finishedAt ?? Date.now(), data: await restoreData(sp, row) }, await matchingRules(sp, row.orgId, event, scope));
  });
}

/**
 * A restore plan's run reached its end. A drill is `drill.succeeded` or `drill.failed` (its
 * data: the run as `GET /restores/{id}` shows it, verification included); a refresh is a
 * restore into its target, so `restore.succeeded` or `restore.failed`. A rule of the plan's
 * source or target matches.
 */
export async function recordPlanRunEvent(tx: Tx, restoreId: string, log?: Logger): Promise<void> {
  await guarded(tx, restoreId, log, async (sp) => {
    const row = (await sp.select().from(restores).where(eq(restores.id, restoreId)))[0];
    if (!row || (row.status !== "succeeded" && row.status !== "failed")) return;
    const outcome = row.status === "succeeded" ? "succeeded" : "failed";
    const event = row.mode === "refresh" ? (`restore.${outcome}` as const) : (`drill.${outcome}` as const);
    const scope = { dataSourceIds: [...new Set([row.sourceDataSourceId, row.targetDataSourceId])], policyId: null };
    await enqueueForRules(sp, { orgId: row.orgId, event, occurredAt: row.finishedAt ?? Date.now(), data: await restoreData(sp, row) }, await matchingRules(sp, row.orgId, event, scope));
  });
}
