import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { dataSources, restorePlans } from "../db/schema.ts";
import type { CheckSpec } from "../engines/checks.ts";
import { pinTarget } from "../engines/network.ts";
import { RestoreSetupError } from "../engines/restore.ts";
import { dropScratchDatabase, scratchNameOf } from "../engines/scratch-db.ts";
import { checkSqlitePath } from "../engines/sqlite-path.ts";
import { removeSqliteTemp } from "../engines/sqlite-restore.ts";
import type { EngineName, SourceTarget } from "../engines/types.ts";
import { realPathOf } from "../lib/host-paths.ts";
import type { Logger } from "../lib/logger.ts";
import type { RunnerMetrics } from "./metrics.ts";
import { recordPlanRunEnd, type PlanRunHook } from "./plan-run-record.ts";
import { classifyRestoreFailure, targetStateNote, watchRestore, type RestoreWatch, type RunningRestore } from "./restore-run.ts";
import { planRestore, runRestore, type RestoreDeps, type RestorePlan, type RestoreRow, type RestoreState } from "./restore.ts";
import { failureSummary, notVerified, verifyRestored, type RestoredAt, type Verification } from "./verify-restore.ts";

/**
 * A restore plan's run (a restores row with `planId`):
 * - `drill`: the backup is restored into a scratch database on the target's server
 *   (`snapdb_drill_<id>`; SQLite: a scratch file in the data dir's tmp/), verified
 *   (verify-restore.ts), and the scratch dropped whatever happened. A crash in between is
 *   cleaned up at the next start (drill-recovery.ts).
 * - `refresh`: the backup replaces the target database (`clean`), then the same
 *   verification runs there.
 * Either way the run is a restore like any other (same slots, progress, cancel, timeout)
 * and ends with its `verification`; `durationMs` is the measured recovery time (restore +
 * verification).
 */
export interface PlanRunDeps extends RestoreDeps {
  logger: Logger;
  metrics?: Pick<RunnerMetrics, "recordRestore">;
  /** notify: drill.succeeded|failed — see PlanRunHook. */
  onPlanRunFinished?: PlanRunHook;
}

type RestorePlanJob = RestorePlan["job"];

/** Where a drill restores to, so it can be removed afterwards. */
type Scratch = { kind: "database"; target: SourceTarget; name: string } | { kind: "file"; path: string };

/** How long dropping a scratch database may take before it is left to the next start's recovery. */
const DROP_TIMEOUT_MS = 60_000;

export const scratchFileOf = (scratchDir: string, restoreId: string) => join(scratchDir, `${scratchNameOf(restoreId)}.sqlite`);

/** The plan's checks, read when its run starts (a plan deleted since: none). */
export async function planChecks(db: Db, planId: string | null): Promise<CheckSpec[]> {
  if (!planId) return [];
  return (await db.select({ checks: restorePlans.checks }).from(restorePlans).where(eq(restorePlans.id, planId)))[0]?.checks ?? [];
}

/** Removes a drill's scratch; never throws: a failure is logged and left to the next start. */
async function dropScratch(scratch: Scratch, log: Logger): Promise<boolean> {
  try {
    if (scratch.kind === "file") removeSqliteTemp(scratch.path);
    else await dropScratchDatabase(scratch.target, scratch.name, AbortSignal.timeout(DROP_TIMEOUT_MS));
    return true;
  } catch (err) {
    log.warn("could not remove a drill's scratch database; the daemon's next start drops it", { error: err, scratch: scratch.kind === "file" ? scratch.path : scratch.name });
    return false;
  }
}

function scratchNote(scratch: Scratch | null, dropped: boolean | null): string {
  if (!scratch) return "";
  const what = scratch.kind === "file" ? "the scratch file" : `the scratch database ${scratch.name}`;
  return dropped ? `${what} was removed` : `${what} could not be removed now; the daemon's next start removes it`;
}

/**
 * A refresh never writes into the database it restores from. The API refuses such a plan,
 * but data sources change afterwards (a host renamed, a database edited) and two host names
 * may reach one server: the resolved addresses (or real paths) are compared again now.
 */
async function refuseOwnSource(deps: PlanRunDeps, row: RestoreRow, at: RestoredAt): Promise<void> {
  const sourceRow = (await deps.db.select().from(dataSources).where(eq(dataSources.id, row.sourceDataSourceId)))[0];
  if (!sourceRow) return;
  let same: boolean;
  if (at.target.engine === "sqlite") {
    const check = checkSqlitePath(sourceRow.path ?? "", deps.sqlitePaths, row.orgId);
    same = check.ok && check.real === at.sqlitePath;
  } else {
    const source = await pinTarget(deps.targetOf(sourceRow), deps.outbound);
    same = source.address === at.target.address && (source.port ?? null) === (at.target.port ?? null) && source.database === at.database;
  }
  if (same) throw new RestoreSetupError("INVALID_TARGET", "refusing to refresh the plan's own data source: the target is the very database its backups are taken of; nothing was changed");
}

/**
 * A plan restores a dump of one database. Its runs only ever pick one (plan-fire.ts) and a
 * whole-server source is refused at the API, but a run queued before that was so may still
 * name another kind: refused before anything is read or created, with its own code, rather
 * than failing on the storage key of a whole-server job's folder or in pg_restore.
 */
function refuseUnsupported(job: RestorePlanJob): void {
  if (job.parts !== null) {
    throw new RestoreSetupError("UNSUPPORTED_BACKUP", `backup job ${job.id} is a whole-server backup (one file per database): a restore plan restores logical backups of one database`);
  }
  if (job.physical !== null) {
    throw new RestoreSetupError(
      "UNSUPPORTED_BACKUP",
      `backup job ${job.id} is a physical base backup: a restore plan restores logical backups of one database (restore a base backup to a point in time instead)`,
    );
  }
}

export async function executePlanRun(deps: PlanRunDeps, entry: RunningRestore, opts: RestoreWatch): Promise<void> {
  const { row, controller, progress } = entry;
  const mode = row.mode ?? "drill";
  const log = deps.logger.child({ restoreId: row.id, planId: row.planId, mode });
  const stopWatching = watchRestore(deps.db, entry, opts);
  const state: RestoreState = { touched: "no", createdDatabase: false };
  const started = performance.now();
  const checks = await planChecks(deps.db, row.planId);
  let engine: EngineName | null = null;
  let fingerprinted = false;
  let scratch: Scratch | null = null;
  let verified: Omit<Verification, "durationMs"> | null = null;
  let failure: { code: string; message: string } | null = null;
  try {
    const plan = await planRestore(deps, row);
    refuseUnsupported(plan.job);
    engine = plan.target.engine;
    fingerprinted = plan.job.fingerprint !== null;
    // One resolution of the target's host for the restore, the verification and the drop.
    const target = await pinTarget(plan.target, deps.outbound);
    let runDeps: RestoreDeps = deps;
    let runPlan = { ...plan, target };
    let at: RestoredAt;
    if (mode === "drill" && target.engine === "sqlite") {
      mkdirSync(deps.dumpEnv.scratchDir, { recursive: true, mode: 0o700 });
      const path = scratchFileOf(deps.dumpEnv.scratchDir, row.id);
      scratch = { kind: "file", path };
      runPlan = { ...runPlan, target: { ...target, path } };
      // The scratch lies in the daemon's own directory, which SQLite sources may never use.
      runDeps = { ...deps, sqlitePaths: { roots: [deps.dumpEnv.scratchDir], reservedDirs: [], reservedFiles: deps.sqlitePaths.reservedFiles } };
      // The real path: the checks open it with SQLite's NOFOLLOW (a symlinked data dir included).
      at = { target, database: null, sqlitePath: realPathOf(path) ?? path };
    } else if (mode === "drill") {
      if (!row.targetDatabase) throw new RestoreSetupError("INVALID_TARGET", "the drill has no scratch database name");
      scratch = { kind: "database", target, name: row.targetDatabase };
      at = { target, database: row.targetDatabase, sqlitePath: null };
    } else if (target.engine === "sqlite") {
      const check = checkSqlitePath(target.path ?? "", deps.sqlitePaths, row.orgId);
      if (!check.ok) throw new RestoreSetupError("PATH_NOT_ALLOWED", check.reason);
      at = { target, database: null, sqlitePath: check.real };
      await refuseOwnSource(deps, row, at);
    } else {
      at = { target, database: row.targetDatabase ?? target.database, sqlitePath: null };
      await refuseOwnSource(deps, row, at);
    }
    log.info("plan run started", { backupJobId: row.backupJobId, targetDatabase: row.targetDatabase });
    await runRestore(runDeps, row, runPlan, controller.signal, progress, state);
    if (entry.reason) throw new Error(`aborted: ${entry.reason}`);
    verified = await verifyRestored(at, plan.job.fingerprint, checks, controller.signal);
    if (entry.reason) throw new Error(`aborted: ${entry.reason}`);
  } catch (err) {
    verified = null;
    failure = classifyRestoreFailure(err, entry.reason, opts.timeoutSeconds);
    if (failure.code === "INTERNAL") log.error("plan run failed unexpectedly", { error: err });
    else log.warn("plan run failed", { code: failure.code, message: failure.message, error: err });
  } finally {
    stopWatching();
  }
  const durationMs = Math.round(performance.now() - started);
  // Dropped whatever happened, a cancel or a timeout included (the drop has its own deadline).
  const dropped = scratch ? await dropScratch(scratch, log) : null;
  const verification: Verification = verified ? { ...verified, durationMs } : notVerified(fingerprinted, durationMs);

  let error: { code: string; message: string } | null = null;
  if (failure) {
    const where = mode === "drill" ? scratchNote(scratch, dropped) : targetStateNote(engine, state, row.targetDatabase);
    error = { code: failure.code, message: where ? `${failure.message}; ${where}` : failure.message };
  } else if (verification.status === "failed") {
    const where = mode === "drill" ? scratchNote(scratch, dropped) : "the target holds the restored backup";
    error = { code: "VERIFICATION_FAILED", message: `${failureSummary(verification, checks)}; ${where}` };
  }
  const status = error?.code === "CANCELED" ? "canceled" : error ? "failed" : "succeeded";
  await recordPlanRunEnd(deps.db, row, { status, error, verification, progress }, deps.onPlanRunFinished);
  deps.metrics?.recordRestore(status, error?.code ?? null, durationMs);
  log.info("plan run finished", { status, verification: verification.status, durationMs, ...(state.pipeline ? { pipeline: state.pipeline } : {}), ...(error ? { code: error.code } : {}) });
}
