import { recordPlanRunEvent } from "../notify/record.ts";
import { isRestoreErrorCode } from "../lib/failure-codes.ts";
import { eq } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { Db, Tx } from "../db/client.ts";
import { restores } from "../db/schema.ts";
import type { Actor } from "../lib/context.ts";
import { nowMs } from "../lib/clock.ts";
import type { RestoreProgress, RestoreRow } from "./restore.ts";
import type { Verification } from "./verify-restore.ts";

const RUNNER: Actor = { type: "system", id: "runner" };

/** What a finished plan run tells the world (audit, notifications, metrics). */
export interface PlanRunEvent {
  /** `drill.succeeded`, `drill.failed`, `refresh.succeeded`, `refresh.failed`. */
  type: `${"drill" | "refresh"}.${"succeeded" | "failed"}`;
  orgId: string;
  planId: string;
  restoreId: string;
  dataSourceId: string;
  targetDataSourceId: string;
  backupJobId: string | null;
  status: "succeeded" | "failed" | "canceled";
  verification: Verification;
  error: { code: string; message: string } | null;
}

/**
 * Called inside the transaction that records a plan run's end, so whatever it writes (an
 * outbox row of a notification) exists exactly when the result does.
 */
export type PlanRunHook = (tx: Tx, event: PlanRunEvent) => void;

/**
 * Records the end of a plan run in one transaction: the restore row (status, error,
 * verification), its `restore.*` audit event, the plan's `drill.*` / `refresh.*` audit event,
 * and the hook.
 */
export async function recordPlanRunEnd(
  db: Db,
  row: RestoreRow,
  end: { status: "succeeded" | "failed" | "canceled"; error: { code: string; message: string } | null; verification: Verification; progress: RestoreProgress },
  hook?: PlanRunHook,
): Promise<PlanRunEvent> {
  const now = nowMs();
  const mode = row.mode ?? "drill";
  const event: PlanRunEvent = {
    type: `${mode}.${end.status === "succeeded" ? "succeeded" : "failed"}`,
    orgId: row.orgId,
    planId: row.planId!,
    restoreId: row.id,
    dataSourceId: row.sourceDataSourceId,
    targetDataSourceId: row.targetDataSourceId,
    backupJobId: row.backupJobId,
    status: end.status,
    verification: end.verification,
    error: end.error,
  };
  const ctx = { orgId: row.orgId, actor: RUNNER, requestId: null, ip: null };
  await db.transaction(async (tx) => {
    await tx
      .update(restores)
      .set({
        status: end.status,
        finishedAt: now,
        bytesRead: end.progress.bytesRead,
        bytesWritten: end.progress.bytesWritten,
        // Codes outside the restore's closed set are the unexpected: shown as INTERNAL, message kept.
        error: end.error && { code: isRestoreErrorCode(end.error.code) ? end.error.code : "INTERNAL", message: end.error.message },
        verification: end.verification as unknown as Record<string, unknown>,
      })
      .where(eq(restores.id, row.id));
    await recordAudit(tx, ctx, {
      action: end.status === "succeeded" ? "restore.completed" : end.status === "canceled" ? "restore.canceled" : "restore.failed",
      targetType: "restore",
      targetId: row.id,
      metadata: {
        backupJobId: row.backupJobId,
        targetDataSourceId: row.targetDataSourceId,
        planId: row.planId,
        bytesRead: end.progress.bytesRead,
        bytesWritten: end.progress.bytesWritten,
        durationMs: end.verification.durationMs,
        ...(end.error ? { error: end.error } : {}),
      },
    });
    const v = end.verification;
    await recordAudit(tx, ctx, {
      action: event.type,
      targetType: "restore_plan",
      targetId: event.planId,
      metadata: {
        restoreId: row.id,
        backupJobId: row.backupJobId,
        dataSourceId: row.sourceDataSourceId,
        targetDataSourceId: row.targetDataSourceId,
        trigger: row.trigger,
        status: end.status,
        verification: {
          status: v.status,
          fingerprint: v.fingerprint,
          tables: v.tables,
          rowsCompared: v.rowsCompared,
          mismatches: v.mismatches.length,
          checksFailed: v.checks.filter((c) => !c.ok).length,
          durationMs: v.durationMs,
        },
        ...(end.error ? { error: end.error } : {}),
      },
    });
    // The notifications outbox is written here, in this transaction: drill.* (a refresh: restore.*).
    await recordPlanRunEvent(tx, row.id);
    hook?.(tx, event);
  });
  return event;
}
