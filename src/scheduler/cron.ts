import { Cron, type CronOptions } from "croner";

/**
 * The schedule language of policies: classic 5-field cron (minute hour day month weekday),
 * parsed and evaluated by croner in the policy's IANA time zone. Nicknames (`@daily`) and
 * 6/7-field patterns are refused so that what a user writes means the same to any cron.
 */
export const CRON_MESSAGE = "scheduleCron must be a valid 5-field cron expression";

const FIVE_FIELDS = /^\S+(\s+\S+){4}$/;

/** Croner options every timer and every computation shares, so the API's `nextRunAt` is what the timer does. */
export function cronOptions(timezone: string): CronOptions {
  return { mode: "5-part", timezone, paused: true };
}

/**
 * What is wrong with a schedule, in words a user can act on, or null when it is a valid
 * 5-field expression that fires. A pattern that can never match (`0 3 31 2 *`, February
 * 31st) is refused too: accepted, it would give an attachment that silently never runs.
 */
export function cronProblem(expression: string): string | null {
  const trimmed = expression.trim();
  if (trimmed.startsWith("@")) return "nicknames such as @daily are not accepted; write the 5 fields (e.g. 0 0 * * *)";
  if (!FIVE_FIELDS.test(trimmed)) {
    const n = trimmed ? trimmed.split(/\s+/).length : 0;
    return `it has ${n} field${n === 1 ? "" : "s"}; write minute hour day-of-month month day-of-week (e.g. 15 2 * * *)`;
  }
  let probe: Cron;
  try {
    probe = new Cron(trimmed, cronOptions("UTC"));
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).replace(/^CronPattern:\s*/i, "");
  }
  try {
    if (probe.nextRun() === null) return "it never fires (no date matches it, e.g. February 31st)";
  } finally {
    probe.stop();
  }
  return null;
}

export function isValidCron(expression: string): boolean {
  return cronProblem(expression) === null;
}

/** Normalises spacing: `" 15  2 * * *"` is stored as `"15 2 * * *"`. */
export const normaliseCron = (expression: string): string => expression.trim().split(/\s+/).join(" ");

// IANA names only: Intl also accepts offsets such as "+01:00", which are not zones.
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

/** The canonical spelling of an IANA zone name, or null when it is not one. */
export function canonicalZone(zone: string): string | null {
  if (!ZONE_NAME.test(zone)) return null;
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** The first run strictly after `from` (ms), or null if the pattern never fires again. */
export function nextRunAfter(expression: string, timezone: string, from: number): number | null {
  const cron = new Cron(expression, cronOptions(timezone));
  try {
    return cron.nextRun(new Date(from))?.getTime() ?? null;
  } finally {
    cron.stop();
  }
}

/** The latest run at or before `at` (ms), or null. */
export function previousRunAtOrBefore(expression: string, timezone: string, at: number): number | null {
  const cron = new Cron(expression, cronOptions(timezone));
  try {
    // previousRuns looks strictly before its reference; +1 s makes a run exactly at `at` count,
    // and the second candidate covers a run that falls inside that extra second.
    const runs = cron.previousRuns(2, new Date(at + 1000)).map((d) => d.getTime());
    return runs.find((ms) => ms <= at) ?? null;
  } finally {
    cron.stop();
  }
}
