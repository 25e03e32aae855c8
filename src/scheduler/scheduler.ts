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

/** Firings of one group are queued in batches, yielding in between so the API stays responsive. */
const FIRE_BATCH = 50;

const selection = {
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
};

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

  syncPlan(planId: string): void {
    this.plans.sync(planId);
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
  start(): { timers: number; catchUps: number } {
    if (this.started) return { timers: this.timers.size, catchUps: 0 };
    this.started = true;
    const rows = this.reconcile();
    let catchUps = this.plans.start();
    // A safety net for changes made without a sync call (e.g. a data source deleted with its
    // attachments): timers are compared with the table once a minute; unchanged ones stay.
    this.sweeper = setInterval(() => {
      try {
        this.reconcile();
        this.plans.reconcile();
      } catch (error) {
        this.opts.logger.error("scheduler reconcile failed", { error });
      }
    }, RECONCILE_MS);
    this.sweeper.unref?.();
    if (this.opts.catchUp === "one") {
      const now = this.now();
      for (const row of rows) {
        const missed = this.missedRun(row, now);
        if (missed === null) continue;
        catchUps++;
        this.opts.logger.info("scheduler catch-up run", { attachmentId: row.id, scheduledAt: isoOf(missed) });
        try {
          this.fire(row.id, missed, true);
        } catch {
          // Already logged by fire(); one attachment's failure must not keep the daemon from starting.
        }
      }
    }
    this.opts.logger.info("scheduler started", { timers: this.timers.size, catchUps });
    return { timers: this.timers.size, catchUps };
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
  reconcile(): ScheduledAttachment[] {
    const rows = this.opts.db.select(selection).from(attachments).innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId)).where(eq(attachments.enabled, true)).all();
    const present = new Set(rows.map((r) => r.id));
    for (const id of [...this.timers.keys()]) if (!present.has(id)) this.drop(id);
    for (const row of rows) this.apply(row.id, row);
    return rows;
  }

  sync(attachmentId: string): void {
    if (!this.started) return;
    const row = this.opts.db.select(selection).from(attachments).innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId)).where(eq(attachments.id, attachmentId)).get();
    this.apply(attachmentId, row);
  }

  syncPolicy(policyId: string): void {
    if (!this.started) return;
    const rows = this.opts.db.select(selection).from(attachments).innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId)).where(eq(attachments.policyId, policyId)).all();
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
  fire(attachmentId: string, scheduledAt: number, catchUp = false): FireOutcome {
    let result: FireOutcome;
    try {
      result = queueScheduledRun(this.opts.db, attachmentId, scheduledAt, this.now(), catchUp);
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
      for (const listener of this.listeners) {
        try {
          listener(result.job);
        } catch (error) {
          this.opts.logger.error("onJobQueued listener failed", { jobId: result.job.id, error });
        }
      }
    }
    return result;
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
        const scheduledAt = this.opts.timerPattern ? ran : Math.floor(ran / 60_000) * 60_000;
        const members = [...(this.groups.get(groupKey)?.members ?? [])];
        for (let i = 0; i < members.length; i++) {
          if (i > 0 && i % FIRE_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
          // A member dropped meanwhile (detached, disabled) is skipped; fire() logs failures.
          if (!this.groups.get(groupKey)?.members.has(members[i]!)) continue;
          try {
            this.fire(members[i]!, scheduledAt);
          } catch {}
        }
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
