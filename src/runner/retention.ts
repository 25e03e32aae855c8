/**
 * Which backups retention keeps: a pure function with the semantics of restic's `forget`
 * (restic 0.16+), checked against restic's own test vectors (test/fixtures/restic-forget).
 * The caller passes the backup jobs of one data source under one policy; only `succeeded`
 * ones count. Nothing here touches storage; `now` only tells which backups are in the future.
 *
 * - keepLast/Hourly/Daily/Weekly/Monthly/Yearly n: walking newest first, a rule keeps a
 *   backup whose period differs from that of the last backup the rule kept, until it has
 *   kept n; -1 means no limit. A rule that still has count left when it reaches the oldest
 *   backup keeps that one too, even in a period it already has (the longest history).
 * - Periods are wall-clock periods in the policy's time zone (ISO weeks); like restic with a
 *   local zone, the hour repeated when clocks go back is one hour.
 * - maxAgeDays d (restic's `--keep-within dd`): every backup strictly after the newest
 *   backup's wall-clock time moved back d calendar days in the zone. The newest backup is
 *   the newest one not in the future, so a clock that ran ahead cannot drag the window.
 * - Whatever the rules, the newest successful backup is kept (restic has no such floor).
 */
export interface RetentionRules {
  keepLast?: number | null;
  keepHourly?: number | null;
  keepDaily?: number | null;
  keepWeekly?: number | null;
  keepMonthly?: number | null;
  keepYearly?: number | null;
  maxAgeDays?: number | null;
}

export interface RetentionCandidate {
  id: string;
  status: string;
  /** When the backup was taken (ms): its start time, which names its hour/day/week/month/year. */
  at: number;
}

export type RetentionReason = "newest" | "maxAge" | "last" | "hourly" | "daily" | "weekly" | "monthly" | "yearly";

export interface RetentionDecision {
  /** Successful backups to keep, newest first. */
  keep: string[];
  /** Successful backups retention may delete, newest first. Other statuses are in neither list. */
  remove: string[];
  /** Why each kept backup is kept (a backup can be kept by several rules), in restic's order. */
  reasons: Record<string, RetentionReason[]>;
}

const DAY_MS = 86_400_000;

/** A wall-clock reading in some zone. */
export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      hourCycle: "h23",
    });
    formatters.set(timezone, f);
  }
  return f;
}

/** The wall clock of an instant in a zone (whole seconds). */
export function wallClock(ms: number, timezone: string): WallClock {
  const parts = formatter(timezone).formatToParts(new Date(ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return { year: get("year"), month: get("month"), day: get("day"), hour: get("hour"), minute: get("minute"), second: get("second") };
}

/** The calendar date of an instant in a zone. */
export function localDate(ms: number, timezone: string): { year: number; month: number; day: number } {
  const { year, month, day } = wallClock(ms, timezone);
  return { year, month, day };
}

/** How far the zone's clocks are ahead of UTC at an instant (ms). */
function offsetAt(ms: number, timezone: string): number {
  const whole = Math.floor(ms / 1000) * 1000;
  const w = wallClock(whole, timezone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - whole;
}

/**
 * The instant of `ms` moved back `days` calendar days on the zone's wall clock, resolved
 * the way Go's time.Date (so restic's AddDate) resolves it: read the wall time as if UTC,
 * take the offset in force there; if the instant that offset gives lies in another offset
 * period, use that period's offset. So a time skipped by spring-forward lands after the
 * gap, and a repeated time at fall-back takes the later (standard-time) instant.
 */
export function minusCalendarDays(ms: number, days: number, timezone: string): number {
  const w = wallClock(ms, timezone);
  const subSecond = ms - Math.floor(ms / 1000) * 1000;
  const asUtc = Date.UTC(w.year, w.month - 1, w.day - days, w.hour, w.minute, w.second, subSecond);
  return asUtc - offsetAt(asUtc - offsetAt(asUtc, timezone), timezone);
}

/** ISO 8601 week-year and week of a calendar date (weeks start on Monday; week 1 holds Jan 4). */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = date.getUTCDay() || 7; // Monday 1 … Sunday 7
  date.setUTCDate(date.getUTCDate() + 4 - weekday); // the Thursday of this week names its year
  const weekYear = date.getUTCFullYear();
  const week = Math.ceil(((date.getTime() - Date.UTC(weekYear, 0, 1)) / DAY_MS + 1) / 7);
  return { year: weekYear, week };
}

type CountRule = "last" | "hourly" | "daily" | "weekly" | "monthly" | "yearly";
const pad = (n: number) => String(n).padStart(2, "0");
/** Each rule's period key; `last` gives every backup a period of its own. */
const PERIOD: Record<CountRule, (w: WallClock, index: number) => string> = {
  last: (_w, index) => String(index),
  hourly: (w) => `${w.year}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}`,
  daily: (w) => `${w.year}-${pad(w.month)}-${pad(w.day)}`,
  weekly: (w) => {
    const iso = isoWeek(w.year, w.month, w.day);
    return `${iso.year}-W${pad(iso.week)}`;
  },
  monthly: (w) => `${w.year}-${pad(w.month)}`,
  yearly: (w) => String(w.year),
};

/** -1: no limit; a positive count as is; anything else (0, null, other negatives): the rule is off. */
const limit = (n: number | null | undefined): number => (n === -1 ? Infinity : n && n > 0 ? Math.floor(n) : 0);

/** Newest first; equal times fall back to the (time-sortable) id so the order is total. */
const newestFirst = (a: RetentionCandidate, b: RetentionCandidate) => b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

export function selectBackupsToKeep(backups: readonly RetentionCandidate[], rules: RetentionRules, now: number, timezone = "UTC"): RetentionDecision {
  const successes = backups.filter((b) => b.status === "succeeded").sort(newestFirst);
  const reasons: Record<string, RetentionReason[]> = {};
  const mark = (id: string, reason: RetentionReason) => (reasons[id] ??= []).push(reason);
  const oldest = successes.length - 1;

  if (successes[0]) mark(successes[0].id, "newest");

  const days = rules.maxAgeDays && rules.maxAgeDays > 0 ? Math.floor(rules.maxAgeDays) : 0;
  if (days > 0 && successes.length > 0) {
    const anchor = successes.find((b) => b.at < now);
    // With every backup in the future there is no anchor: restic then keeps them all.
    const after = anchor ? minusCalendarDays(anchor.at, days, timezone) : -Infinity;
    for (const b of successes) if (b.at > after) mark(b.id, "maxAge");
  }

  const counts: [CountRule, number][] = [
    ["last", limit(rules.keepLast)],
    ["hourly", limit(rules.keepHourly)],
    ["daily", limit(rules.keepDaily)],
    ["weekly", limit(rules.keepWeekly)],
    ["monthly", limit(rules.keepMonthly)],
    ["yearly", limit(rules.keepYearly)],
  ];
  const walls = counts.some(([, n]) => n > 0) ? successes.map((b) => wallClock(b.at, timezone)) : [];
  for (const [rule, n] of counts) {
    let left = n;
    let lastKept: string | undefined;
    for (let i = 0; i < successes.length && left > 0; i++) {
      const period = PERIOD[rule](walls[i]!, i);
      if (period === lastKept && i !== oldest) continue;
      mark(successes[i]!.id, rule);
      lastKept = period;
      left--;
    }
  }

  const keep: string[] = [];
  const remove: string[] = [];
  for (const b of successes) (reasons[b.id] ? keep : remove).push(b.id);
  return { keep, remove, reasons };
}
