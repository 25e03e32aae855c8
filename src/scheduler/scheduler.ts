import { Cron } from "croner";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { attachments, backupPolicies } from "../db/schema.ts";
import type { Logger } from "../lib/logger.ts";
import { isoOf } from "../lib/clock.ts";
import { previousRunAtOrBefore } from "./cron.ts";
import { queueScheduledRun, type FireOutcome } from "./fire.ts";
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
  cron: Cron;
  /** What the timer was built from: unchanged attachments keep their timer. */
  key: string;
}

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
 * One croner timer per enabled attachment, in its policy's zone. Services call `sync` /
 * `syncPolicy` after their transaction commits, so changes apply without a restart; a
 * firing goes through `queueScheduledRun`, which never queues a second job for a busy source.
 */
export class Scheduler implements ScheduleSync {
  private readonly timers = new Map<string, Timer>();
  private readonly listeners = new Set<(job: QueuedJob) => void>();
  private readonly now: () => number;
  private started = false;
  private sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly opts: SchedulerOptions) {
    this.now = opts.now ?? Date.now;
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
    return this.timers.get(attachmentId)?.cron.nextRun()?.getTime() ?? null;
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
    // A safety net for changes made without a sync call (e.g. a data source deleted with its
    // attachments): timers are compared with the table once a minute; unchanged ones stay.
    this.sweeper = setInterval(() => {
      try {
        this.reconcile();
      } catch (error) {
        this.opts.logger.error("scheduler reconcile failed", { error });
      }
    }, RECONCILE_MS);
    this.sweeper.unref?.();
    let catchUps = 0;
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
    for (const timer of this.timers.values()) timer.cron.stop();
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
    existing?.cron.stop();
    const cron = new Cron(pattern, {
      // The test hook may use seconds; real patterns are 5-field only.
      mode: this.opts.timerPattern ? "auto" : "5-part",
      timezone: row.timezone,
      protect: (job) => this.opts.logger.warn("scheduler timer still busy, firing skipped", { attachmentId, at: job.currentRun()?.toISOString() }),
      catch: (error) => this.opts.logger.error("scheduler timer failed", { attachmentId, error }),
      unref: true,
    }, (self) => {
      // croner's currentRun() is when the callback ran, which lags the scheduled minute
      // when many timers fire at once: a 5-field schedule is always on a whole minute.
      const ran = self.currentRun()?.getTime() ?? this.now();
      this.fire(attachmentId, this.opts.timerPattern ? ran : Math.floor(ran / 60_000) * 60_000);
    });
    this.timers.set(attachmentId, { cron, key });
  }

  private drop(attachmentId: string): void {
    this.timers.get(attachmentId)?.cron.stop();
    this.timers.delete(attachmentId);
  }
}
