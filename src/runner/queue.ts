import { and, eq, sql } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import { backupJobs } from "../db/schema.ts";
import type { Actor } from "../lib/context.ts";
import type { Logger } from "../lib/logger.ts";
import { nowMs, storeNowMs } from "../lib/clock.ts";
import { deleteBackupObjects } from "../storage/backup-objects.ts";
import { planBackup, type BackupDeps, type BackupPlan, type JobRow, type Progress } from "./backup.ts";
import { runJobBackup } from "./backup-parts.ts";
import { classifyJobFailure, effectiveTimeout, retryDelayMs, type AbortReason, type JobFailure, type JobTimeout } from "./job-error.ts";
import { lockQueuedRow, orgFreeForClaim, sourceFreeForClaim } from "./claim-lock.ts";
import { nextQueuedBackup, nextQueuedRestore, OrgTurns, orgsAtLimit, orgsWithRunnableWork, sourcesPinnedElsewhere } from "./pick-next.ts";
import { claimRestore, executeRestore, type RunningRestore } from "./restore-run.ts";
import type { WalFetchInvocation } from "./wal-fetch-command.ts";
import { executePlanRun } from "./drill.ts";
import type { PlanRunHook } from "./plan-run-record.ts";
import type { RestoreProgress, RestoreRow } from "./restore.ts";
import type { RunnerMetrics } from "./metrics.ts";
import { recordBackupEvent } from "../notify/record.ts";
import type { RestoreDirectoryPolicy } from "../lib/restore-directory.ts";

export const RUNNER_ACTOR: Actor = { type: "system", id: "runner" };

const DEFAULT_LEASE_MS = 30_000;

export interface RunnerOptions {
  maxConcurrent: number;
  /** Jobs (backups and restores) of one org running at once, across every node of the store. */
  maxConcurrentPerOrg: number;
  /** Ceiling on a policy's timeoutSeconds, applied when a backup starts. */
  maxTimeoutSeconds: number;
  /** A restore running longer is stopped and fails TIMEOUT. */
  restoreTimeoutSeconds: number;
  /** Parts of a whole-server backup dumped at once (cut to maxConcurrent). */
  partsConcurrency?: number;
  retryBaseSeconds: number;
  /** How often live progress is written to the job row. */
  progressIntervalMs?: number;
  /** A safety net: the queue is also looked at this often, not only when woken. */
  pollIntervalMs?: number;
  /** Fleet: the node that claims jobs here, and how long a claim holds unless renewed (progress writes renew it). */
  nodeId?: string;
  leaseMs?: number;
  /** Fleet: this node's labels (config `node.labels`); a data source whose `runOn` labels it lacks is left to other nodes. */
  nodeLabels?: Record<string, string>;
}

export interface RunnerDeps extends BackupDeps {
  logger: Logger;
  metrics?: RunnerMetrics;
  /** Where point-in-time restores may build data directories (config storage.allowedRestoreRoots). */
  restoreDirs?: RestoreDirectoryPolicy;
  /** How a point-in-time restore's restore_command runs `snapdb wal-fetch` (walDelivery `fetch`). */
  walFetch: WalFetchInvocation;
  /** Called after a job succeeded (retention runs there); failures are logged, not fatal. */
  afterSuccess?: (job: JobRow) => Promise<void>;
  /** notify: drill.succeeded|failed — inside the transaction that records a restore plan's run. */
  onPlanRunFinished?: PlanRunHook;
}

interface Running {
  job: JobRow;
  controller: AbortController;
  reason: AbortReason | null;
  progress: Progress;
  done: Promise<void>;
}

/**
 * The bounded job queue. Jobs live in the store (status `queued`), so they survive a
 * restart; this class only decides which run now: at most `maxConcurrent` at once, at most
 * `maxConcurrentPerOrg` of one org, at most one per data source, none before its retry
 * time, none of a data source pinned (`runOn`) to other nodes; orgs with queued work take
 * turns, oldest job first within an org (so one org's long backups cannot hold every slot).
 * A job is claimed with a conditional UPDATE, so two runners (or a runner and a cancel) never
 * both own it; on a PostgreSQL store its row is locked first (SKIP LOCKED) and the source and
 * org limits checked again under locks (claim-lock.ts), so they hold across nodes.
 */
export class Runner {
  private readonly running = new Map<string, Running>();
  /** Restores share the queue's slots, its per-org limit and its one-job-per-data-source rule (their target). */
  private readonly restoring = new Map<string, RunningRestore>();
  private readonly turns = new OrgTurns();
  private pumping = false;
  private pumpAgain = false;
  private wakeScheduled = false;
  private stopped = true;
  private poller: ReturnType<typeof setInterval> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly opts: RunnerOptions,
  ) {}

  private get leaseMs(): number {
    return this.opts.leaseMs ?? DEFAULT_LEASE_MS;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.poller = setInterval(() => this.wakeInBackground(), this.opts.pollIntervalMs ?? 5000);
    await this.wake();
  }

  get isRunning(): boolean {
    return !this.stopped;
  }

  /** Look at the queue now (a job was queued, or one finished). */
  async wake(): Promise<void> {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        await this.pump();
      } while (this.pumpAgain && !this.stopped);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * wake(), once, on the next turn of the event loop, however often this is called before
   * then: for bursts of queued work (the scheduler's firings), where a look at the queue per
   * job cost more than queueing them (2,000 jobs in one minute: 0.6 s of 1 s), and after a
   * job ends.
   */
  wakeSoon(): void {
    if (this.wakeScheduled || this.stopped) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wakeInBackground();
    });
  }

  /** wake() for callers that do not await it (the API after queueing work): never rejects. */
  wakeNow(): void {
    this.wakeInBackground();
  }

  /**
   * A wake nobody awaits (poller, timers). A PostgreSQL store can be gone for a moment: the
   * failure is logged and the next wake tries again, never an unhandled rejection, which would
   * end the daemon and its running jobs.
   */
  private wakeInBackground(): void {
    this.wake().catch((err) => this.deps.logger.warn("could not look at the queue; the next wake retries", { error: err }));
  }

  /** Bytes moved so far by a running job (fresher than its row). */
  progressOf(jobId: string): Progress | null {
    const r = this.running.get(jobId);
    return r ? { ...r.progress } : null;
  }

  /** Bytes moved so far by a running restore (fresher than its row). */
  restoreProgressOf(restoreId: string): RestoreProgress | null {
    const r = this.restoring.get(restoreId);
    return r ? { ...r.progress } : null;
  }

  runningCount(): number {
    return this.running.size + this.restoring.size;
  }

  /**
   * Cancels a job: a queued one is canceled at once (in the caller's view, by the service);
   * a running one is aborted here and reported `canceled` when its pipeline has stopped.
   */
  abortRunning(jobId: string, reason: AbortReason): boolean {
    const r = this.running.get(jobId) ?? this.restoring.get(jobId);
    if (!r) return false;
    r.reason ??= reason;
    r.controller.abort(reason);
    return true;
  }

  /**
   * Stops taking jobs, gives running ones `graceMs` to finish, then aborts them (they are
   * re-queued as INTERRUPTED when retries are left, else failed) and waits for them to settle.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.poller) clearInterval(this.poller);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const all = () => Promise.all([...this.running.values(), ...this.restoring.values()].map((r) => r.done));
    const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref?.());
    if ((await Promise.race([all().then(() => "done" as const), timer])) === "timeout") {
      for (const id of [...this.running.keys(), ...this.restoring.keys()]) this.abortRunning(id, "shutdown");
      await all();
    }
  }

  private async pump(): Promise<void> {
    const now = nowMs();
    // Sources passed over for this look at the queue: pinned to other nodes, or whose job
    // could not be claimed (another node took it or is taking it, or the org filled up
    // meanwhile); the next wake looks again.
    const passed = await sourcesPinnedElsewhere(this.deps.db, this.opts.nodeLabels ?? {});
    while (!this.stopped && this.runningCount() < this.opts.maxConcurrent) {
      const busySources = [...[...this.running.values()].map((r) => r.job.dataSourceId), ...[...this.restoring.values()].map((r) => r.row.targetDataSourceId), ...passed];
      const orgId = this.turns.pick(await orgsWithRunnableWork(this.deps.db, now, busySources, await this.orgsAtLimit()));
      if (orgId === undefined) break;
      const next = await nextQueuedBackup(this.deps.db, now, busySources, orgId);
      // Within the org, backups and restores take turns by age: whichever was queued first runs first.
      const restore = await nextQueuedRestore(this.deps.db, busySources, orgId);
      if (restore && (!next || restore.queuedAt < next.queuedAt)) {
        const lease = { nodeId: this.opts.nodeId, leaseMs: this.leaseMs, maxConcurrentPerOrg: this.opts.maxConcurrentPerOrg };
        const claimedRestore = await claimRestore(this.deps.db, restore, now, lease);
        if (claimedRestore) this.launchRestore(claimedRestore);
        else passed.push(restore.targetDataSourceId);
        continue;
      }
      if (!next) break;
      const claimed = await this.claim(next, now);
      if (claimed) this.launch(claimed);
      else passed.push(next.dataSourceId);
    }
    await this.scheduleRetryWake(now);
    this.deps.metrics?.setRunning(this.running.size);
  }

  /**
   * Orgs running as many jobs as `maxConcurrentPerOrg` allows: counted in the store, so every
   * node's jobs count; this process's own are counted too, in case a row of one of them was
   * taken from it (a reaper that saw its lease run out) while it still runs here.
   */
  private async orgsAtLimit(): Promise<string[]> {
    const perOrg = new Map<string, number>();
    for (const r of this.running.values()) perOrg.set(r.job.orgId, (perOrg.get(r.job.orgId) ?? 0) + 1);
    for (const r of this.restoring.values()) perOrg.set(r.row.orgId, (perOrg.get(r.row.orgId) ?? 0) + 1);
    const local = [...perOrg].filter(([, n]) => n >= this.opts.maxConcurrentPerOrg).map(([orgId]) => orgId);
    return [...new Set([...(await orgsAtLimit(this.deps.db, this.opts.maxConcurrentPerOrg)), ...local])];
  }

  /** The queued job whose retry time is next: wake then, not only at the next poll. */
  private async scheduleRetryWake(now: number): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const next = (
      await this.deps.db
        .select({ at: sql<number>`min(${backupJobs.notBefore})`.mapWith(Number) })
        .from(backupJobs)
        .where(and(eq(backupJobs.status, "queued"), sql`${backupJobs.notBefore} > ${now}`))
    )[0];
    if (next?.at) this.retryTimer = setTimeout(() => this.wakeInBackground(), Math.max(0, next.at - now) + 5);
  }

  private async claim(job: JobRow, now: number): Promise<JobRow | null> {
    return await this.deps.db.transaction(async (tx) => {
      // Several nodes on one PostgreSQL store: the row (skipped if another node holds it),
      // then one claim per data source and per org at a time, each checked again under its
      // lock (SQLite's transactions are serial already).
      if (!(await lockQueuedRow(tx, "backup_jobs", job.id))) return null;
      if (!(await sourceFreeForClaim(tx, job.dataSourceId))) return null;
      if (!(await orgFreeForClaim(tx, job.orgId, this.opts.maxConcurrentPerOrg))) return null;
      const claimed = await tx
        .update(backupJobs)
        .set({ status: "running", startedAt: now, bytesIn: 0, bytesStored: 0, nodeId: this.opts.nodeId ?? null, leaseUntil: storeNowMs() + this.leaseMs })
        .where(and(eq(backupJobs.id, job.id), eq(backupJobs.status, "queued")))
        .returning({ id: backupJobs.id });
      if (claimed.length !== 1) return null;
      await recordAudit(
        tx,
        { orgId: job.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null },
        {
          action: "backup_job.started",
          targetType: "backup_job",
          targetId: job.id,
          metadata: { dataSourceId: job.dataSourceId, attempt: job.attempt, trigger: job.trigger },
        },
      );
      return { ...job, status: "running" as const, startedAt: now };
    });
  }

  private launch(job: JobRow): void {
    const controller = new AbortController();
    const entry: Running = { job, controller, reason: null, progress: { bytesIn: 0, bytesStored: 0 }, done: Promise.resolve() };
    this.running.set(job.id, entry);
    this.turns.started(job.orgId);
    // The next job starts on a later turn of the event loop: jobs that end at once (a source
    // that is gone) would otherwise chain start → fail → start in one run of microtasks, and
    // hold off everything else (2,000 scheduled firings waited 0.75 s at a time).
    // A store that fails while the job's end is written leaves the row running: its lease runs
    // out and the reaper of some node takes it over. Here it must not end the daemon.
    entry.done = this.execute(entry)
      .catch((error) => this.deps.logger.error("could not record how a backup ended; it is retried once its lease runs out", { jobId: job.id, error }))
      .finally(() => {
        this.running.delete(job.id);
        this.deps.metrics?.setRunning(this.running.size);
        this.wakeSoon();
      });
  }

  private launchRestore(row: RestoreRow): void {
    const entry: RunningRestore = { row, controller: new AbortController(), reason: null, progress: { bytesRead: 0, bytesWritten: 0 }, done: Promise.resolve() };
    this.restoring.set(row.id, entry);
    this.turns.started(row.orgId);
    // A restore plan's run (drill or refresh) verifies what it restored; see drill.ts.
    entry.done = (row.planId ? executePlanRun : executeRestore)(this.deps, entry, {
      progressIntervalMs: this.opts.progressIntervalMs ?? 1000,
      timeoutSeconds: this.opts.restoreTimeoutSeconds,
      leaseMs: this.leaseMs,
    })
      .catch((error) => this.deps.logger.error("could not record how a restore ended; it is retried once its lease runs out", { restoreId: row.id, error }))
      .finally(() => {
        this.restoring.delete(row.id);
        this.wakeSoon();
      });
  }

  private async execute(entry: Running): Promise<void> {
    const { job, controller, progress } = entry;
    const log = this.deps.logger.child({ jobId: job.id, dataSourceId: job.dataSourceId });
    let plan: BackupPlan | null = null;
    let timeout: ReturnType<typeof setTimeout> | null = null;
    let limit: JobTimeout | undefined;
    // A store gone for a moment (PostgreSQL) fails one flush; the next one writes it and renews the lease.
    const flush = setInterval(() => this.writeProgress(job.id, progress).catch(() => {}), this.opts.progressIntervalMs ?? 1000);
    let objectKey: string | null = null;
    try {
      plan = await planBackup(this.deps.db, job);
      limit = effectiveTimeout(plan.timeoutSeconds, this.opts.maxTimeoutSeconds);
      timeout = setTimeout(() => this.abortRunning(job.id, "timeout"), limit.seconds * 1000);
      log.info("backup started", { attempt: job.attempt });
      const partsConcurrency = Math.min(this.opts.partsConcurrency ?? 1, this.opts.maxConcurrent);
      const result = await runJobBackup(
        this.deps,
        job,
        plan,
        controller.signal,
        progress,
        async (key) => {
          objectKey = key;
          await this.deps.db.update(backupJobs).set({ objectKey: key, destinationId: plan!.destination.id }).where(eq(backupJobs.id, job.id));
        },
        { partsConcurrency },
      );
      if (entry.reason) throw new Error(`aborted: ${entry.reason}`);
      await this.finishSucceeded(job, result);
      this.deps.metrics?.recordSuccess(job, result.sizeBytes, result.storedBytes, nowMs() - job.startedAt!);
      log.info("backup succeeded", { sizeBytes: result.sizeBytes, storedBytes: result.storedBytes, objectKey: result.objectKey, pipeline: result.pipeline });
      await this.deps.afterSuccess?.({ ...job, status: "succeeded" }).catch((err) => log.error("after-success step failed", { error: err }));
    } catch (err) {
      const failure = classifyJobFailure(err, entry.reason, limit);
      if (failure.code === "INTERNAL") log.error("backup failed unexpectedly", { error: err });
      else log.warn("backup failed", { code: failure.code, message: failure.message, error: err });
      if (objectKey && plan) await this.removeLeftovers(plan, objectKey, log, job.id);
      await this.finishFailed(job, failure, plan?.retries ?? 0);
      this.deps.metrics?.recordFailure(job, failure.code);
    } finally {
      clearInterval(flush);
      if (timeout) clearTimeout(timeout);
    }
  }

  /**
   * A failed put removes its own upload; this also covers a put that completed just before the
   * failure, and every part a whole-server job had stored (its folder, and the keys it planned).
   */
  private async removeLeftovers(plan: BackupPlan, key: string, log: Logger, jobId: string): Promise<void> {
    try {
      const driver = this.deps.storage.driverFor(plan.destination);
      const parts = (await this.deps.db.select({ parts: backupJobs.parts }).from(backupJobs).where(eq(backupJobs.id, jobId)))[0]?.parts ?? [];
      await deleteBackupObjects(driver, key, { partKeys: parts.map((p) => p.objectKey), uploads: true });
    } catch (err) {
      log.warn("could not remove a failed job's partial upload; recovery will retry", { error: err, objectKey: key });
    }
  }

  /**
   * Progress, the lease renewed (in the store's clock), and a cancel asked through another
   * node read back on the way: it stops the job here as a local cancel would.
   */
  private async writeProgress(jobId: string, p: Progress): Promise<void> {
    const [row] = await this.deps.db
      .update(backupJobs)
      .set({ bytesIn: p.bytesIn, bytesStored: p.bytesStored, leaseUntil: storeNowMs() + this.leaseMs })
      .where(and(eq(backupJobs.id, jobId), eq(backupJobs.status, "running")))
      .returning({ cancelRequestedAt: backupJobs.cancelRequestedAt });
    if (row?.cancelRequestedAt != null) this.abortRunning(jobId, "canceled");
  }

  private async finishSucceeded(
    job: JobRow,
    r: { sizeBytes: number; storedBytes: number; sha256: string | null; objectKey: string; format: object; parts: JobRow["parts"]; fingerprint?: JobRow["fingerprint"]; physical?: object },
  ): Promise<void> {
    const now = nowMs();
    await this.deps.db.transaction(async (tx) => {
      await tx
        .update(backupJobs)
        .set({
          status: "succeeded",
          finishedAt: now,
          bytesIn: r.sizeBytes,
          bytesStored: r.storedBytes,
          sizeBytes: r.sizeBytes,
          storedBytes: r.storedBytes,
          sha256: r.sha256,
          objectKey: r.objectKey,
          format: r.format as Record<string, unknown>,
          parts: r.parts,
          fingerprint: r.fingerprint ?? null,
          physical: (r.physical ?? null) as Record<string, unknown> | null,
          error: null,
          notBefore: null,
        })
        .where(eq(backupJobs.id, job.id));
      await recordAudit(
        tx,
        { orgId: job.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null },
        {
          action: "backup_job.completed",
          targetType: "backup_job",
          targetId: job.id,
          metadata: { dataSourceId: job.dataSourceId, sizeBytes: r.sizeBytes, storedBytes: r.storedBytes, sha256: r.sha256, durationMs: now - (job.startedAt ?? now) },
        },
      );
      await recordBackupEvent(tx, job.id, this.deps.logger);
    });
  }

  private async finishFailed(job: JobRow, failure: JobFailure, retries: number): Promise<void> {
    const now = nowMs();
    const error = { code: failure.code, message: failure.message };
    const ctx = { orgId: job.orgId, actor: RUNNER_ACTOR, requestId: null, ip: null };
    await this.deps.db.transaction(async (tx) => {
      if (failure.retryable && job.attempt <= retries && failure.code !== "CANCELED") {
        const notBefore = now + retryDelayMs(this.opts.retryBaseSeconds, job.attempt);
        await tx
          .update(backupJobs)
          .set({ status: "queued", attempt: job.attempt + 1, notBefore, startedAt: null, error, objectKey: null, parts: null })
          .where(eq(backupJobs.id, job.id));
        await recordAudit(tx, ctx, {
          action: "backup_job.retry_scheduled",
          targetType: "backup_job",
          targetId: job.id,
          metadata: { dataSourceId: job.dataSourceId, attempt: job.attempt, nextAttempt: job.attempt + 1, error },
        });
        return;
      }
      const status = failure.code === "CANCELED" ? "canceled" : "failed";
      await tx.update(backupJobs).set({ status, finishedAt: now, error, notBefore: null }).where(eq(backupJobs.id, job.id));
      await recordAudit(tx, ctx, {
        action: status === "canceled" ? "backup_job.canceled" : "backup_job.failed",
        targetType: "backup_job",
        targetId: job.id,
        metadata: { dataSourceId: job.dataSourceId, attempt: job.attempt, error },
      });
      await recordBackupEvent(tx, job.id, this.deps.logger);
    });
  }
}
