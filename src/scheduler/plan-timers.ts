import { Cron } from "croner";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { restorePlans } from "../db/schema.ts";
import { isoOf } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { previousRunAtOrBefore } from "./cron.ts";
import { SCHEDULER_ACTOR } from "./fire.ts";
import { queuePlanRun, type PlanFireOutcome } from "./plan-fire.ts";

type PlanRow = typeof restorePlans.$inferSelect;

export interface PlanTimersOptions {
  db: Db;
  logger: Logger;
  catchUp: "one" | "none";
  now: () => number;
  /** Told about every queued run (the runner wakes). */
  onQueued: (restoreId: string) => void;
  /** Test hook only, as for attachments: the pattern a plan's timer really uses. */
  timerPattern?: (plan: PlanRow) => string;
}

/**
 * One croner timer per enabled restore plan, in the plan's zone (plans are few next to
 * attachments: no shared timers). The plan service calls `sync` after its transaction
 * commits; `reconcile` (at start and once a minute from the scheduler's sweep) catches the
 * rest. A firing goes through `queuePlanRun`.
 */
export class PlanTimers {
  private readonly timers = new Map<string, { key: string; cron: Cron }>();
  private started = false;

  constructor(private readonly opts: PlanTimersOptions) {}

  get count(): number {
    return this.timers.size;
  }

  hasTimer(planId: string): boolean {
    return this.timers.has(planId);
  }

  /** The next time a plan's live timer fires (ms), or null without one. */
  nextFireOf(planId: string): number | null {
    return this.timers.get(planId)?.cron.nextRun()?.getTime() ?? null;
  }

  async start(): Promise<number> {
    this.started = true;
    const rows = await this.reconcile();
    let catchUps = 0;
    if (this.opts.catchUp === "one") {
      const now = this.opts.now();
      for (const plan of rows) {
        const previous = previousRunAtOrBefore(plan.scheduleCron, plan.timezone, now);
        if (previous === null || previous <= Math.max(plan.lastScheduledAt ?? 0, plan.createdAt, plan.updatedAt)) continue;
        catchUps++;
        this.opts.logger.info("restore plan catch-up run", { planId: plan.id, scheduledAt: isoOf(previous) });
        try {
          await this.fire(plan.id, previous, true);
        } catch {}
      }
    }
    return catchUps;
  }

  stop(): void {
    for (const t of this.timers.values()) t.cron.stop();
    this.timers.clear();
    this.started = false;
  }

  async reconcile(): Promise<PlanRow[]> {
    if (!this.started) return [];
    const rows = await this.opts.db.select().from(restorePlans).where(eq(restorePlans.enabled, true));
    const present = new Set(rows.map((r) => r.id));
    for (const id of [...this.timers.keys()]) if (!present.has(id)) this.drop(id);
    for (const row of rows) this.apply(row.id, row);
    return rows;
  }

  async sync(planId: string): Promise<void> {
    if (!this.started) return;
    this.apply(planId, (await this.opts.db.select().from(restorePlans).where(eq(restorePlans.id, planId)))[0]);
  }

  /** One scheduled run, as the timer fires it (public so tests drive the very same path). */
  async fire(planId: string, scheduledAt: number, catchUp = false): Promise<PlanFireOutcome> {
    let result: PlanFireOutcome;
    try {
      result = await queuePlanRun(this.opts.db, { actor: SCHEDULER_ACTOR, requestId: null, ip: null }, planId, { trigger: "schedule", scheduledAt, catchUp, now: this.opts.now() });
    } catch (error) {
      this.opts.logger.error("scheduled restore plan run failed", { planId, scheduledAt: isoOf(scheduledAt), error });
      throw error;
    }
    if (result.outcome === "gone") this.drop(planId);
    if (result.outcome === "skipped") this.opts.logger.info("restore plan run skipped: its previous run is not over", { planId, busyRestoreId: result.busyRestoreId });
    if (result.outcome === "queued") {
      this.opts.logger.info("restore plan run queued", { planId, restoreId: result.restore.id, scheduledAt: isoOf(scheduledAt) });
      this.opts.onQueued(result.restore.id);
    }
    return result;
  }

  private apply(planId: string, row: PlanRow | undefined): void {
    if (!row || !row.enabled) return this.drop(planId);
    const pattern = this.opts.timerPattern?.(row) ?? row.scheduleCron;
    const key = `${pattern}|${row.timezone}`;
    if (this.timers.get(planId)?.key === key) return;
    this.drop(planId);
    const cron = new Cron(
      pattern,
      {
        mode: this.opts.timerPattern ? "auto" : "5-part",
        timezone: row.timezone,
        protect: true,
        catch: (error) => this.opts.logger.error("restore plan timer failed", { planId, error }),
        unref: true,
      },
      async (self) => {
        // A 5-field schedule is on a whole minute; currentRun() lags it on a busy machine.
        const ran = self.currentRun()?.getTime() ?? this.opts.now();
        const scheduledAt = this.opts.timerPattern ? ran : Math.floor(ran / 60_000) * 60_000;
        try {
          await this.fire(planId, scheduledAt);
        } catch {}
      },
    );
    this.timers.set(planId, { key, cron });
  }

  private drop(planId: string): void {
    this.timers.get(planId)?.cron.stop();
    this.timers.delete(planId);
  }
}
