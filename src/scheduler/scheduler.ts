import { Cron } from "croner";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { attachments, backupPolicies } from "../db/schema.ts";
import type { Logger } from "../lib/logger.ts";
import { isoOf } from "../lib/clock.ts";
import { previousRunAtOrBefore } from "./cron.ts";
import { queueScheduledRun, type FireOutcome } from "./fire.ts";
import { PlanTimers } from "./plan-timers.ts";
import type { QueuedJob, ScheduleSync } from "./types.ts";

export interface SchedulerOptions {
  db: Db;
  logger: Logger;
  /** `one`: an attachment whose run was missed while the daemon was down runs once at start. */
  catchUp: "one" | "none";
  /** The clock for catch-up and job times; tests pass a fixed one. Timers themselves use real time. */
  now?: () => number;
  /**
   * Test hook only: the pattern the timer of an attachment really uses (e.g. a 6-field,
   * seconds-level pattern), so a test sees the cron → job path fire within a second or two.
   */
  timerPattern?: (attachment: ScheduledAttachment) => string;
  /**
   * How often timers are compared with the table (default a minute). A fleet's leader reads it
   * every few seconds: attachments changed through other nodes never reach its sync calls.
   */
  reconcileMs?: number;
  /** Test hook only: the same for restore plans' timers. */
  planTimerPattern?: (plan: { id: string; scheduleCron: string }) => string;
}

export interface ScheduledAttachment {
  id: string;
  orgId: string;
  policyId: string;
  dataSourceId: string;
  enabled: boolean;
  lastScheduledAt: number | null;
  createdAt: number;
  updatedAt: number;
  scheduleCron: string;
  timezone: string;
  policyUpdatedAt: number;
}

const RECONCILE_MS = 60_000;

interface Timer {
  /** What the timer was built from: unchanged attachments keep their timer. */
  key: string;
  /** The shared timer it belongs to: one per distinct (pattern, time zone). */
  group: string;
}

/**
 * One croner timer serves every attachment with the same pattern and zone: croner's Cron
 * objects are large (~90 KiB each, bench/RESULTS.md), so one per attachment made 5,000
 * attachments cost ~450 MiB and seconds to start.
 */
interface TimerGroup {
  cron: Cron;
  members: Set<string>;
}

/**
 * A group's firings are queued in slices of about this many ms, each slice one transaction;
 * between slices the event loop gets a turn (API requests, running jobs). One transaction per
 * firing, and a turn every 50 firings, left 2,000 firings of one minute queued 6 s late
 * (bench/RESULTS.md): the runner's work on the first jobs got in between.
 */
const FIRE_SLICE_MS = 40;

// Built per query: the table bindings change when the store is PostgreSQL (src/db/schema.ts).
const selection = () => ({
  id: attachments.id,
  orgId: attachments.orgId,
  policyId: attachments.policyId,
  dataSourceId: attachments.dataSourceId,
  enabled: attachments.enabled,
  lastScheduledAt: attachments.lastScheduledAt,
  createdAt: attachments.createdAt,
  updatedAt: attachments.updatedAt,
  scheduleCron: backupPolicies.scheduleCron,
  timezone: backupPolicies.timezone,
  policyUpdatedAt: backupPolicies.updatedAt,
});

/**
 * Timers for every enabled attachment, in its policy's zone (one croner timer per distinct
 * pattern and zone, shared by its attachments). Services call `sync` /
 * `syncPolicy` after their transaction commits, so changes apply without a restart; a
 * firing goes through `queueScheduledRun`, which never queues a second job for a busy source.
 */
export class Scheduler implements ScheduleSync {
  private readonly timers = new Map<string, Timer>();
  private readonly groups = new Map<string, TimerGroup>();
  private readonly listeners = new Set<(job: QueuedJob) => void>();
  private readonly restoreListeners = new Set<(restoreId: string) => void>();
  /** Timers of restore plans (drills, refreshes): they queue restores. */
  readonly plans: PlanTimers;
  private readonly now: () => number;
  private started = false;
  private sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly opts: SchedulerOptions) {
    this.now = opts.now ?? Date.now;
    this.plans = new PlanTimers({
      db: opts.db,
      logger: opts.logger,
      catchUp: opts.catchUp,
      now: () => this.now(),
      timerPattern: opts.planTimerPattern,
      onQueued: (restoreId) => {
        for (const listener of this.restoreListeners) {
          try {
            listener(restoreId);
          } catch (error) {
            this.opts.logger.error("onRestoreQueued listener failed", { restoreId, error });
          }
        }
      },
    });
  }

  /** The runner subscribes here to be woken when a restore plan's run is queued. */
  onRestoreQueued(listener: (restoreId: string) => void): () => void {
    this.restoreListeners.add(listener);
    return () => this.restoreListeners.delete(listener);
  }

  async syncPlan(planId: string): Promise<void> {
    await this.plans.sync(planId);
  }

  get running(): boolean {
    return this.started;
  }

  get timerCount(): number {
    return this.timers.size;
  }

  hasTimer(attachmentId: string): boolean {
    return this.timers.has(attachmentId);
  }

  /** The next time the live timer of an attachment fires (ms), or null without a timer. */
  nextFireOf(attachmentId: string): number | null {
    const timer = this.timers.get(attachmentId);
    return (timer && this.groups.get(timer.group)?.cron.nextRun()?.getTime()) ?? null;
  }

  /** The runner subscribes here to be woken when a job is queued; returns the unsubscribe. */
  onJobQueued(listener: (job: QueuedJob) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Builds every timer, then gives attachments that missed a run while down their one catch-up run. */
  async start(): Promise<{ timers: number; catchUps: number }> {
    if (this.started) return { timers: this.timers.size, catchUps: 0 };
    this.started = true;
    const rows = await this.reconcile();
    let catchUps = await this.plans.start();
    // A safety net for changes made without a sync call (e.g. a data source deleted with its
    // attachments, or an attachment made through another node of a fleet): timers are compared
    // with the table once a minute (a fleet leader: every few seconds); unchanged ones stay.
    this.sweeper = setInterval(async () => {
      try {
        const before = new Set(this.timers.keys());
        const added = (await this.reconcile()).filter((row) => !before.has(row.id));
        await this.plans.reconcile();
        await this.catchUp(added);
      } catch (error) {
        this.opts.logger.error("scheduler reconcile failed", { error });
      }
    }, this.opts.reconcileMs ?? RECONCILE_MS);
    this.sweeper.unref?.();
    catchUps += await this.catchUp(rows);
    this.opts.logger.info("scheduler started", { timers: this.timers.size, catchUps });
    return { timers: this.timers.size, catchUps };
  }

  /**
   * With `catchUp: one`, each attachment whose last scheduled time went by unacted on (the
   * daemon, or the fleet's leader, was down; the timer was not there yet) runs once now.
   * A run its slot already holds is not queued twice (the unique slot), so a new leader
   * catching up after its predecessor fired changes nothing.
   */
  private async catchUp(rows: ScheduledAttachment[]): Promise<number> {
    if (this.opts.catchUp !== "one") return 0;
    const now = this.now();
    let catchUps = 0;
    for (const row of rows) {
      const missed = this.missedRun(row, now);
      if (missed === null) continue;
      catchUps++;
      this.opts.logger.info("scheduler catch-up run", { attachmentId: row.id, scheduledAt: isoOf(missed) });
      try {
        await this.fire(row.id, missed, true);
      } catch {
        // Already logged by fire(); one attachment's failure must not keep the others from running.
      }
    }
    return catchUps;
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const group of this.groups.values()) group.cron.stop();
    this.groups.clear();
    this.plans.stop();
    this.timers.clear();
    this.started = false;
  }

  /** Makes the timers match the table: one per enabled attachment, none for anything else. */
  async reconcile(): Promise<ScheduledAttachment[]> {
    const rows = await this.opts.db.select(selection()).from(attachments).innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId)).where(eq(attachments.enabled, true));
    const present = new Set(rows.map((r) => r.id));
    for (const id of [...this.timers.keys()]) if (!present.has(id)) this.drop(id);
    for (const row of rows) this.apply(row.id, row);
    return rows;
  }

  async sync(attachmentId: string): Promise<void> {
    if (!this.started) return;
    const row = (await this.opts.db.select(selection()).from(attachments).innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId)).where(eq(attachments.id, attachmentId)))[0];
    this.apply(attachmentId, row);
  }

  async syncPolicy(policyId: string): Promise<void> {
    if (!this.started) return;
    const rows = await this.opts.db.select(selection()).from(attachments).innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId)).where(eq(attachments.policyId, policyId));
    const present = new Set(rows.map((r) => r.id));
    for (const row of rows) this.apply(row.id, row);
    // Attachments the policy lost (a cascade delete) are no longer in the join.
    for (const [id, timer] of this.timers) {
      if (!present.has(id) && timer.key.startsWith(`${policyId}|`)) this.drop(id);
    }
  }

  /**
   * One scheduled run, as a timer fires it. Public so tests and the catch-up path drive the
   * very code a timer runs, at a chosen time.
   */
  async fire(attachmentId: string, scheduledAt: number, catchUp = false): Promise<FireOutcome> {
    const result = await this.queue(attachmentId, scheduledAt, catchUp);
    if (result.outcome === "queued") this.announce(result.job);
    return result;
  }

  /** queueScheduledRun, logged; the caller announces a queued job once it is committed. */
  private async queue(attachmentId: string, scheduledAt: number, catchUp: boolean): Promise<FireOutcome> {
    let result: FireOutcome;
    try {
      result = await queueScheduledRun(this.opts.db, attachmentId, scheduledAt, this.now(), catchUp);
    } catch (error) {
      this.opts.logger.error("scheduled run failed", { attachmentId, scheduledAt: isoOf(scheduledAt), error });
      throw error;
    }
    if (result.outcome === "gone") this.drop(attachmentId);
    if (result.outcome === "skipped") {
      this.opts.logger.info("scheduled run skipped", { attachmentId, reason: result.reason, busyJobId: result.busyJobId });
    }
    if (result.outcome === "queued") {
      this.opts.logger.info("backup job queued", { jobId: result.job.id, attachmentId, scheduledAt: isoOf(scheduledAt) });
    }
    return result;
  }

  private announce(job: QueuedJob): void {
    for (const listener of this.listeners) {
      try {
        listener(job);
      } catch (error) {
        this.opts.logger.error("onJobQueued listener failed", { jobId: job.id, error });
      }
    }
  }

  /**
   * Every member of a timer group, for one scheduled time: slices of FIRE_SLICE_MS, each in one
   * transaction (each firing a savepoint of it, so a failing one loses only itself), its jobs
   * announced after it commits. Should a slice's commit fail, its members are fired one by one.
   */
  private async fireGroup(groupKey: string, scheduledAt: number): Promise<void> {
    const members = [...(this.groups.get(groupKey)?.members ?? [])];
    // A member dropped meanwhile (detached, disabled) is skipped; queue() logs failures.
    const live = (id: string) => this.groups.get(groupKey)?.members.has(id) ?? false;
    let next = 0;
    while (next < members.length) {
      if (next > 0) await new Promise((resolve) => setImmediate(resolve));
      const from = next;
      const queued: QueuedJob[] = [];
      const deadline = performance.now() + FIRE_SLICE_MS;
      try {
        await this.opts.db.transaction(async () => {
          for (; next < members.length && (next === from || performance.now() < deadline); next++) {
            if (!live(members[next]!)) continue;
            try {
              const result = await this.queue(members[next]!, scheduledAt, false);
              if (result.outcome === "queued") queued.push(result.job);
            } catch {}
          }
        });
      } catch (error) {
        this.opts.logger.error("scheduled runs: a batch failed to commit, firing its runs one by one", { count: next - from, error });
        queued.length = 0;
        for (const id of members.slice(from, next)) {
          if (!live(id)) continue;
          try {
            await this.fire(id, scheduledAt);
          } catch {}
        }
      }
      for (const job of queued) this.announce(job);
    }
  }

  /** The most recent scheduled time before now that nothing acted on, or null. */
  private missedRun(row: ScheduledAttachment, now: number): number | null {
    const previous = previousRunAtOrBefore(row.scheduleCron, row.timezone, now);
    if (previous === null) return null;
    // Runs before the attachment existed, was re-enabled or its policy changed were never due.
    const reference = Math.max(row.lastScheduledAt ?? 0, row.createdAt, row.updatedAt, row.policyUpdatedAt);
    return previous > reference ? previous : null;
  }

  private apply(attachmentId: string, row: ScheduledAttachment | undefined): void {
    if (!row || !row.enabled) return this.drop(attachmentId);
    const pattern = this.opts.timerPattern?.(row) ?? row.scheduleCron;
    const key = `${row.policyId}|${pattern}|${row.timezone}`;
    const existing = this.timers.get(attachmentId);
    if (existing?.key === key) return;
    this.drop(attachmentId);
    const groupKey = `${pattern}|${row.timezone}`;
    let group = this.groups.get(groupKey);
    if (!group) {
      group = { cron: this.buildCron(pattern, row.timezone, groupKey), members: new Set() };
      this.groups.set(groupKey, group);
    }
    group.members.add(attachmentId);
    this.timers.set(attachmentId, { key, group: groupKey });
  }

  private buildCron(pattern: string, timezone: string, groupKey: string): Cron {
    return new Cron(
      pattern,
      {
        // The test hook may use seconds; real patterns are 5-field only.
        mode: this.opts.timerPattern ? "auto" : "5-part",
        timezone,
        protect: (job) => this.opts.logger.warn("scheduler timer still busy, firing skipped", { pattern, timezone, at: job.currentRun()?.toISOString() }),
        catch: (error) => this.opts.logger.error("scheduler timer failed", { pattern, timezone, error }),
        unref: true,
      },
      async (self) => {
        // croner's currentRun() is when the callback ran, which lags the scheduled minute
        // when the machine is busy: a 5-field schedule is always on a whole minute.
        const ran = self.currentRun()?.getTime() ?? this.now();
        await this.fireGroup(groupKey, this.opts.timerPattern ? ran : Math.floor(ran / 60_000) * 60_000);
      },
    );
  }

  private drop(attachmentId: string): void {
    const timer = this.timers.get(attachmentId);
    if (!timer) return;
    this.timers.delete(attachmentId);
    const group = this.groups.get(timer.group);
    group?.members.delete(attachmentId);
    if (group && group.members.size === 0) {
      group.cron.stop();
      this.groups.delete(timer.group);
    }
  }

  /** Distinct timers running (one per pattern and zone in use). */
  get groupCount(): number {
    return this.groups.size;
  }
}
