import { lockQueuedRow, orgFreeForClaim, sourceFreeForClaim } from "./claim-lock.ts";
import { and, eq } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import { SecretDecryptError } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import { restores } from "../db/schema.ts";
import { ProbeError } from "../engines/network.ts";
import { RestoreSetupError } from "../engines/restore.ts";
import { ToolFailedError } from "../engines/tool-stream.ts";
import type { EngineName } from "../engines/types.ts";
import type { Actor } from "../lib/context.ts";
import { AppError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { nowMs, storeNowMs } from "../lib/clock.ts";
import type { RestoreErrorCode } from "../lib/failure-codes.ts";
import { StorageError, storageFailureCode } from "../storage/errors.ts";
import type { AbortReason } from "./job-error.ts";
import type { RunnerMetrics } from "./metrics.ts";
import { recordRestoreEvent } from "../notify/record.ts";
import { runServerRestore } from "./restore-server.ts";
import type { RestoreDirectoryPolicy } from "../lib/restore-directory.ts";
import { cleanUpPointInTime, pitrStateNote, runPointInTimeRestore, type PitrState } from "./pitr-restore.ts";
import type { WalFetchInvocation } from "./wal-fetch-command.ts";
import { planRestore, runRestore, type RestoreDeps, type RestoreProgress, type RestoreRow, type RestoreState } from "./restore.ts";

const RUNNER: Actor = { type: "system", id: "runner" };
const ctxOf = (orgId: string) => ({ orgId, actor: RUNNER, requestId: null, ip: null });

export interface RunningRestore {
  row: RestoreRow;
  controller: AbortController;
  reason: AbortReason | null;
  progress: RestoreProgress;
  done: Promise<void>;
}

export interface RestoreClaim {
  nodeId?: string;
  leaseMs: number;
  /** The org's limit across the fleet, checked again inside the claim. */
  maxConcurrentPerOrg: number;
}

/**
 * Conditional UPDATE queued → running: a cancel that got there first wins. As for backups
 * (claim-lock.ts): the row skipped if another node holds it, then the target and the org
 * checked again under their locks.
 */
export async function claimRestore(db: Db, row: RestoreRow, now: number, lease: RestoreClaim): Promise<RestoreRow | null> {
  return await db.transaction(async (tx) => {
    if (!(await lockQueuedRow(tx, "restores", row.id))) return null;
    if (!(await sourceFreeForClaim(tx, row.targetDataSourceId))) return null;
    if (!(await orgFreeForClaim(tx, row.orgId, lease.maxConcurrentPerOrg))) return null;
    const claimed = await tx
      .update(restores)
      .set({ status: "running", startedAt: now, bytesRead: 0, bytesWritten: 0, nodeId: lease.nodeId ?? null, leaseUntil: storeNowMs() + lease.leaseMs })
      .where(and(eq(restores.id, row.id), eq(restores.status, "queued")))
      .returning({ id: restores.id });
    if (claimed.length !== 1) return null;
    await recordAudit(tx, ctxOf(row.orgId), {
      action: "restore.started",
      targetType: "restore",
      targetId: row.id,
      metadata: { backupJobId: row.backupJobId, targetDataSourceId: row.targetDataSourceId, targetDatabase: row.targetDatabase, clean: row.clean },
    });
    return { ...row, status: "running" as const, startedAt: now };
  });
}

const clip = (text: string, max = 2000) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** What the target looks like after a failure: said in every failed or canceled restore's message. */
export function targetStateNote(engine: EngineName | null, state: RestoreState, database: string | null): string {
  if (state.note) return state.note;
  const created = state.createdDatabase ? `; the database ${database} created for this restore stays` : "";
  switch (state.touched) {
    case "no":
      return engine === "sqlite" ? "the target file is unchanged" : `the target database was not changed${created}`;
    case "transaction":
      return `pg_restore ran in a single transaction that was not committed, so PostgreSQL rolled it back: the target database is unchanged${created}`;
    case "dropped":
      return "clean had started dropping the target's tables: the target database may be partly emptied; run the restore again";
    case "partial":
      return "the mysql client had started applying the dump and MySQL/MariaDB cannot roll back DDL: the target database may be partially restored; run the restore again with clean: true";
    case "replaced":
      return "the target file had already been replaced by the restored database";
  }
}

/** Turns whatever ended a restore into its `error`. Messages carry no secrets. */
export function classifyRestoreFailure(err: unknown, reason: AbortReason | null, timeoutSeconds?: number): { code: RestoreErrorCode; message: string } {
  if (reason === "canceled") return { code: "CANCELED", message: "the restore was canceled" };
  if (reason === "shutdown") return { code: "INTERRUPTED", message: "the daemon shut down while the restore ran" };
  if (reason === "timeout") return { code: "TIMEOUT", message: `the restore ran longer than runner.restoreTimeoutSeconds (${timeoutSeconds})` };
  if (err instanceof RestoreSetupError) return { code: err.code, message: clip(err.message) };
  if (err instanceof ToolFailedError) return { code: "RESTORE_FAILED", message: clip(err.message) };
  if (err instanceof ProbeError) return { code: err.verifyError.code, message: clip(err.verifyError.message) };
  if (err instanceof StorageError) {
    if (err.code === "NOT_FOUND") return { code: "BACKUP_FILE_MISSING", message: "the backup's file is gone from its storage destination" };
    return { code: storageFailureCode(err.code), message: clip(err.message) };
  }
  if (err instanceof SecretDecryptError) return { code: "SECRET_UNREADABLE", message: err.message };
  if (err instanceof AppError) return { code: "SECRET_UNREADABLE", message: clip(err.message) };
  return { code: "INTERNAL", message: "unexpected error in the restore pipeline (see the daemon log)" };
}

function cleanUpPointInTimeQuietly(state: PitrState, log: Logger): void {
  try {
    cleanUpPointInTime(state);
  } catch (err) {
    log.warn("could not remove what a failed point-in-time restore wrote", { directory: state.directory, error: err });
    state.directory = null;
  }
}

/** Progress and the lease renewed; true when a cancel was asked through another node (fleet). */
async function writeProgress(db: Db, id: string, p: RestoreProgress, leaseMs: number): Promise<boolean> {
  const [row] = await db
    .update(restores)
    .set({ bytesRead: p.bytesRead, bytesWritten: p.bytesWritten, leaseUntil: storeNowMs() + leaseMs })
    .where(and(eq(restores.id, id), eq(restores.status, "running")))
    .returning({ cancelRequestedAt: restores.cancelRequestedAt });
  return row?.cancelRequestedAt != null;
}

/** How a running restore is watched: progress writes (each renews the claim's lease by `leaseMs`) and its deadline. */
export interface RestoreWatch {
  progressIntervalMs: number;
  timeoutSeconds: number;
  /** runner.leaseSeconds in ms. */
  leaseMs: number;
}

/**
 * A running restore's clocks: its progress flushed to its row every `progressIntervalMs`
 * (renewing its lease), and its deadline, stopped like a cancel (the tool is killed, its
 * transaction rolled back) but failed as TIMEOUT. Returns what stops both.
 */
export function watchRestore(db: Db, entry: RunningRestore, opts: RestoreWatch): () => void {
  // A store gone for a moment (PostgreSQL) fails one flush; the next one writes it and renews the lease.
  const flush = setInterval(async () => {
    if (await writeProgress(db, entry.row.id, entry.progress, opts.leaseMs).catch(() => false)) {
      entry.reason ??= "canceled";
      entry.controller.abort("canceled");
    }
  }, opts.progressIntervalMs);
  const timeout = setTimeout(() => {
    entry.reason ??= "timeout";
    entry.controller.abort("timeout");
  }, opts.timeoutSeconds * 1000);
  return () => {
    clearInterval(flush);
    clearTimeout(timeout);
  };
}

/**
 * Runs one claimed restore to its end and records it: succeeded, or failed/canceled with
 * an error whose message says what state the target is in. Restores are never retried: a
 * second attempt over a half-restored MySQL target is not the same operation.
 */
export async function executeRestore(
  deps: RestoreDeps & { logger: Logger; metrics?: Pick<RunnerMetrics, "recordRestore">; restoreDirs?: RestoreDirectoryPolicy; walFetch: WalFetchInvocation },
  entry: RunningRestore,
  opts: RestoreWatch,
): Promise<void> {
  const { row, controller, progress } = entry;
  const log = deps.logger.child({ restoreId: row.id, targetDataSourceId: row.targetDataSourceId });
  const stopWatching = watchRestore(deps.db, entry, opts);
  const state: RestoreState = { touched: "no", createdDatabase: false };
  const pitr: PitrState = { directory: null, created: false };
  let engine: EngineName | null = null;
  try {
    if (row.targetDirectory !== null) {
      log.info("point-in-time restore started", { backupJobId: row.backupJobId, targetDirectory: row.targetDirectory });
      await runPointInTimeRestore({ ...deps, restoreDirs: deps.restoreDirs ?? { roots: [], reservedDirs: [] } }, row, controller.signal, progress, pitr);
    } else {
      const plan = await planRestore(deps, row);
      engine = plan.target.engine;
      log.info("restore started", { backupJobId: row.backupJobId, clean: row.clean });
      // A whole-server backup (parts) restores database by database onto the target's server.
      await (plan.job.parts ? runServerRestore : runRestore)(deps, row, plan, controller.signal, progress, state);
    }
    if (entry.reason) throw new Error(`aborted: ${entry.reason}`);
    const durationMs = await finish(deps.db, row, "succeeded", progress, null);
    deps.metrics?.recordRestore("succeeded", null, durationMs);
    log.info("restore succeeded", { ...progress, pipeline: state.pipeline });
  } catch (err) {
    const failure = classifyRestoreFailure(err, entry.reason, opts.timeoutSeconds);
    if (failure.code === "INTERNAL") log.error("restore failed unexpectedly", { error: err });
    else log.warn("restore failed", { code: failure.code, message: failure.message, error: err, ...(state.pipeline ? { pipeline: state.pipeline } : {}) });
    if (row.targetDirectory !== null) cleanUpPointInTimeQuietly(pitr, log);
    const note = row.targetDirectory !== null ? pitrStateNote(pitr) : targetStateNote(engine, state, row.targetDatabase);
    const error = { code: failure.code, message: `${failure.message}; ${note}` };
    const status = failure.code === "CANCELED" ? "canceled" : "failed";
    deps.metrics?.recordRestore(status, failure.code, await finish(deps.db, row, status, progress, error));
  } finally {
    stopWatching();
  }
}

/** Records the restore's end (row and audit); returns how long it ran, in ms. */
async function finish(db: Db, row: RestoreRow, status: "succeeded" | "failed" | "canceled", p: RestoreProgress, error: { code: RestoreErrorCode; message: string } | null): Promise<number> {
  const now = nowMs();
  const durationMs = now - (row.startedAt ?? now);
  await db.transaction(async (tx) => {
    await tx.update(restores).set({ status, finishedAt: now, bytesRead: p.bytesRead, bytesWritten: p.bytesWritten, error }).where(eq(restores.id, row.id));
    const action = status === "succeeded" ? "restore.completed" : status === "canceled" ? "restore.canceled" : "restore.failed";
    await recordAudit(tx, ctxOf(row.orgId), {
      action,
      targetType: "restore",
      targetId: row.id,
      metadata: {
        backupJobId: row.backupJobId,
        targetDataSourceId: row.targetDataSourceId,
        bytesRead: p.bytesRead,
        bytesWritten: p.bytesWritten,
        durationMs,
        ...(error ? { error } : {}),
      },
    });
    await recordRestoreEvent(tx, row.id);
  });
  return durationMs;
}
