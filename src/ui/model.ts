import { Cron } from "croner";
import { cronOptions } from "../scheduler/cron.ts";

/**
 * What the dashboard shows, computed from API answers only (no DOM here, so it runs under
 * `bun test` too). Days are the viewer's local calendar days.
 */

export interface Job {
  id: string;
  dataSourceId: string;
  status: "queued" | "running" | "succeeded" | "failed" | "canceled";
  trigger: string;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  sizeBytes: number | null;
  storedBytes: number | null;
  progress: { bytesIn: number; bytesStored: number };
  error: { code: string; message: string } | null;
}

export interface Attachment {
  id: string;
  dataSourceId: string;
  policyId: string;
  enabled: boolean;
  nextRunAt: string | null;
  createdAt: string;
}

export interface Policy {
  id: string;
  name: string;
  scheduleCron: string;
  timezone: string;
}

export interface Source {
  id: string;
  name: string;
  engine: string;
}

/**
 * ok: a backup succeeded that day · failed: one failed and none succeeded · missed: the schedule
 * fired and nothing succeeded or failed · pending: one is queued or running · none: nothing was
 * due · unknown: the dashboard did not load that day's jobs (too many to read), so it says nothing.
 */
export type DayState = "ok" | "failed" | "missed" | "pending" | "none" | "unknown";

export interface Day {
  start: number;
  state: DayState;
}

/** A scheduled run this recent may still be on its way into the queue. */
const GRACE_MS = 5 * 60_000;

const startOfLocalDay = (ms: number) => {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
};
const addLocalDays = (dayStart: number, n: number) => {
  const d = new Date(dayStart);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + n).getTime();
};

export interface Schedule {
  cron: string;
  timezone: string;
  /** When it started to count (the attachment's creation). */
  since: number;
}

/** Croner with the scheduler's own options, so the strip and the timers agree; null for a pattern it refuses. */
function cronOf(schedule: Schedule): { since: number; cron: Cron } | null {
  try {
    return { since: schedule.since, cron: new Cron(schedule.cron, cronOptions(schedule.timezone)) };
  } catch {
    return null;
  }
}

/** Whether the schedule fires in [from, to). */
function firesBetween(schedule: { since: number; cron: Cron }, from: number, to: number): boolean {
  const start = Math.max(from, schedule.since);
  if (start >= to) return false;
  const next = schedule.cron.nextRun(new Date(start - 1));
  return next !== null && next.getTime() < to;
}

/**
 * One square per day, oldest first, the last one today. `coveredFrom`: `jobs` holds every job
 * queued from this instant on, and none before it may be assumed (null: the whole window). A
 * day that began before it was not fully seen: a success seen there is still ok, anything
 * else is unknown (a failure might have a success beside it, a "missed" run might have run).
 */
export function dayStrip(jobs: Job[], schedules: Schedule[], now: number, days = 30, coveredFrom: number | null = null): Day[] {
  const today = startOfLocalDay(now);
  const crons = schedules.map(cronOf).filter((c) => c !== null);
  const out: Day[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const start = addLocalDays(today, -i);
    const end = addLocalDays(start, 1);
    const ofDay = jobs.filter((j) => {
      const t = Date.parse(j.queuedAt);
      return t >= start && t < end;
    });
    let state: DayState = "none";
    if (ofDay.some((j) => j.status === "succeeded")) state = "ok";
    else if (ofDay.some((j) => j.status === "failed")) state = "failed";
    else if (ofDay.some((j) => j.status === "queued" || j.status === "running")) state = "pending";
    else if (crons.some((c) => firesBetween(c, start, Math.min(end, now - GRACE_MS)))) state = "missed";
    if (coveredFrom !== null && start <= coveredFrom && state !== "ok") state = "unknown";
    out.push({ start, state });
  }
  return out;
}

/** Where a newest-first list of jobs begins when it was cut short (its oldest job's time); null when it is whole. */
export function coveredFromOf(list: { items: Job[]; complete: boolean }): number | null {
  if (list.complete) return null;
  const oldest = list.items.at(-1);
  return oldest ? Date.parse(oldest.queuedAt) : null;
}

export type SourceState = "ok" | "failed" | "canceled" | "never" | "unknown";

export interface SourceView {
  source: Source;
  /** The last finished job decides: it succeeded, failed, was canceled; or there never was one; unknown: not loaded yet. */
  state: SourceState;
  lastError: { code: string; message: string } | null;
  lastSuccess: Job | null;
  /** False while the source's last success was not looked up (none among the jobs loaded, and no answer yet). */
  lastSuccessKnown: boolean;
  active: Job | null;
  nextRunAt: number | null;
  /** Successful backups, oldest first, for the size and duration charts. */
  history: { at: number; sizeBytes: number; seconds: number }[];
  strip: Day[];
}

const newestFirst = (a: Job, b: Job) => Date.parse(b.queuedAt) - Date.parse(a.queuedAt) || (a.id < b.id ? 1 : -1);

/** A last success that was not looked up (yet). */
export const NOT_LOADED = "not loaded";

export interface ViewOptions {
  /** Points of the size and duration charts. */
  chartPoints?: number;
  /** Where the loaded jobs begin when they are not the whole window (see dayStrip). */
  coveredFrom?: number | null;
}

/**
 * Everything the row of one data source shows. `jobs` are the org's recent jobs (any
 * source); `olderSuccess` is the source's last success when none is among them (null: it
 * never had one; NOT_LOADED: not looked up yet).
 */
export function sourceView(
  source: Source,
  jobs: Job[],
  attachments: Attachment[],
  policies: Map<string, Policy>,
  now: number,
  olderSuccess: Job | null | typeof NOT_LOADED = null,
  { chartPoints = 20, coveredFrom = null }: ViewOptions = {},
): SourceView {
  const own = jobs.filter((j) => j.dataSourceId === source.id).sort(newestFirst);
  const finished = own.find((j): j is Job & { status: "succeeded" | "failed" | "canceled" } => j.status === "succeeded" || j.status === "failed" || j.status === "canceled") ?? null;
  const recentSuccess = own.find((j) => j.status === "succeeded");
  const lastSuccessKnown = recentSuccess !== undefined || olderSuccess !== NOT_LOADED;
  const lastSuccess = recentSuccess ?? (olderSuccess === NOT_LOADED ? null : olderSuccess);
  const enabled = attachments.filter((a) => a.dataSourceId === source.id && a.enabled);
  const nextRuns = enabled.map((a) => (a.nextRunAt ? Date.parse(a.nextRunAt) : NaN)).filter((t) => Number.isFinite(t));
  const schedules: Schedule[] = enabled.flatMap((a) => {
    const p = policies.get(a.policyId);
    return p ? [{ cron: p.scheduleCron, timezone: p.timezone, since: Date.parse(a.createdAt) }] : [];
  });
  const history = own
    .filter((j) => j.status === "succeeded" && j.startedAt && j.finishedAt)
    .slice(0, chartPoints)
    .reverse()
    .map((j) => ({
      at: Date.parse(j.finishedAt!),
      sizeBytes: j.sizeBytes ?? 0,
      seconds: (Date.parse(j.finishedAt!) - Date.parse(j.startedAt!)) / 1000,
    }));
  const state: SourceState = !finished ? (lastSuccess ? "ok" : lastSuccessKnown ? "never" : "unknown") : finished.status === "succeeded" ? "ok" : finished.status;
  return {
    source,
    state,
    lastError: finished?.status === "failed" ? finished.error : null,
    lastSuccess,
    lastSuccessKnown,
    active: own.find((j) => j.status === "running" || j.status === "queued") ?? null,
    nextRunAt: nextRuns.length ? Math.min(...nextRuns) : null,
    history,
    strip: dayStrip(own, schedules, now, 30, coveredFrom),
  };
}

const SUMMARY_WORDS = { ok: "ok", failed: "failed", missed: "missed", pending: "pending", unknown: "not loaded" } as const;

/** "27 ok, 1 failed, 2 missed": what the strip says, in words. */
export function stripSummary(strip: Day[]): string {
  const count = (s: DayState) => strip.filter((d) => d.state === s).length;
  const parts = (["ok", "failed", "missed", "pending", "unknown"] as const).filter((s) => count(s)).map((s) => `${count(s)} ${SUMMARY_WORDS[s]}`);
  return parts.length ? parts.join(", ") : "nothing due";
}

/** A restore plan's run as the API shows it (a restore), only what the dashboard reads. */
export interface PlanRun {
  id: string;
  status: Job["status"];
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: { code: string; message: string } | null;
  verification: { status: "passed" | "failed"; tables: number; rowsCompared: number; durationMs: number } | null;
}

export interface RestorePlan {
  id: string;
  name: string;
  dataSourceId: string;
  mode: "drill" | "refresh";
  enabled: boolean;
  lastRun: PlanRun | null;
}

/** passed / failed: what the last run's verification said · queued / running: a run is under way · canceled · never: no run yet. */
export type DrillResult = "passed" | "failed" | "queued" | "running" | "canceled" | "never";

export interface DrillView {
  plan: RestorePlan;
  result: DrillResult;
  /** When the last run ended (or started, or was queued, while it has not). */
  at: number | null;
  tables: number | null;
  rowsCompared: number | null;
  durationMs: number | null;
  /** Why it failed (VERIFICATION_FAILED names the tables and checks that differ). */
  problem: { code: string; message: string } | null;
}

/** What a restore drill's row shows, from the plan's `lastRun`. */
export function drillView(plan: RestorePlan): DrillView {
  const run = plan.lastRun;
  if (!run) return { plan, result: "never", at: null, tables: null, rowsCompared: null, durationMs: null, problem: null };
  const at = Date.parse(run.finishedAt ?? run.startedAt ?? run.queuedAt);
  const v = run.verification;
  const result: DrillResult = run.status === "queued" || run.status === "running" || run.status === "canceled" ? run.status : v ? v.status : run.status === "failed" ? "failed" : "passed";
  // A failed verification comes with VERIFICATION_FAILED and its summary; the fallback is for a run without one.
  const problem = run.error ?? (result === "failed" ? { code: "VERIFICATION_FAILED", message: "the verification failed" } : null);
  return { plan, result, at: Number.isFinite(at) ? at : null, tables: v?.tables ?? null, rowsCompared: v?.rowsCompared ?? null, durationMs: v?.durationMs ?? null, problem };
}
