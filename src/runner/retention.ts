/**
 * Which backups retention keeps: a pure function with the semantics of restic's `forget`
 * (see API.md, Backup policies). The caller passes the backup jobs of one data source under
 * one policy; only `succeeded` ones count. Nothing here touches storage or the clock.
 */
export interface RetentionRules {
  keepLast?: number | null;
  keepDaily?: number | null;
  keepWeekly?: number | null;
  keepMonthly?: number | null;
  keepYearly?: number | null;
  maxAgeDays?: number | null;
}

export interface RetentionCandidate {
  id: string;
  status: string;
  /** When the backup was taken (ms): its start time, which names its day/week/month/year. */
  at: number;
}

export type RetentionReason = "newest" | "last" | "daily" | "weekly" | "monthly" | "yearly" | "maxAge";

export interface RetentionDecision {
  /** Successful backups to keep, newest first. */
  keep: string[];
  /** Successful backups retention may delete, newest first. Other statuses are in neither list. */
  remove: string[];
  /** Why each kept backup is kept (a backup can be kept by several rules). */
  reasons: Record<string, RetentionReason[]>;
}

const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: timezone, year: "numeric", month: "numeric", day: "numeric", hourCycle: "h23" });
    formatters.set(timezone, f);
  }
  return f;
}

/** The calendar date of an instant in a zone. */
export function localDate(ms: number, timezone: string): { year: number; month: number; day: number } {
  const parts = formatter(timezone).formatToParts(new Date(ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return { year: get("year"), month: get("month"), day: get("day") };
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

type Bucket = (ms: number, timezone: string) => string;
const pad = (n: number) => String(n).padStart(2, "0");
const BUCKETS: Record<"daily" | "weekly" | "monthly" | "yearly", Bucket> = {
  daily: (ms, tz) => {
    const d = localDate(ms, tz);
    return `${d.year}-${pad(d.month)}-${pad(d.day)}`;
  },
  weekly: (ms, tz) => {
    const d = localDate(ms, tz);
    const w = isoWeek(d.year, d.month, d.day);
    return `${w.year}-W${pad(w.week)}`;
  },
  monthly: (ms, tz) => {
    const d = localDate(ms, tz);
    return `${d.year}-${pad(d.month)}`;
  },
  yearly: (ms, tz) => String(localDate(ms, tz).year),
};

const count = (n: number | null | undefined) => (n && n > 0 ? Math.floor(n) : 0);

/** Newest first; equal times fall back to the (time-sortable) id so the order is total. */
const newestFirst = (a: RetentionCandidate, b: RetentionCandidate) => b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

export function selectBackupsToKeep(
  backups: readonly RetentionCandidate[],
  rules: RetentionRules,
  now: number,
  timezone = "UTC",
): RetentionDecision {
  const successes = backups.filter((b) => b.status === "succeeded").sort(newestFirst);
  const reasons: Record<string, RetentionReason[]> = {};
  const mark = (id: string, reason: RetentionReason) => (reasons[id] ??= []).push(reason);

  if (successes[0]) mark(successes[0].id, "newest");
  successes.slice(0, count(rules.keepLast)).forEach((b) => mark(b.id, "last"));

  const periodic: [RetentionReason & keyof typeof BUCKETS, number][] = [
    ["daily", count(rules.keepDaily)],
    ["weekly", count(rules.keepWeekly)],
    ["monthly", count(rules.keepMonthly)],
    ["yearly", count(rules.keepYearly)],
  ];
  for (const [rule, n] of periodic) {
    if (n === 0) continue;
    // Newest first, so the first backup seen in a period is that period's newest.
    const seen = new Set<string>();
    for (const b of successes) {
      if (seen.size >= n) break;
      const key = BUCKETS[rule](b.at, timezone);
      if (seen.has(key)) continue;
      seen.add(key);
      mark(b.id, rule);
    }
  }

  const maxAge = count(rules.maxAgeDays);
  if (maxAge > 0) {
    for (const b of successes) if (now - b.at < maxAge * DAY_MS) mark(b.id, "maxAge");
  }

  const keep: string[] = [];
  const remove: string[] = [];
  for (const b of successes) (reasons[b.id] ? keep : remove).push(b.id);
  return { keep, remove, reasons };
}
