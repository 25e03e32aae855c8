import { invalidInput } from "./errors.ts";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

const RFC3339_SHAPE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i;
const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The two decimal digits of `s` at `i` (the shape was checked). */
const twoDigits = (s: string, i: number) => (s.charCodeAt(i) - 48) * 10 + s.charCodeAt(i + 1) - 48;

/**
 * Whether `value` is an RFC 3339 date-time (JSON Schema's `date-time`) naming a real instant:
 * month 1–12, a day the month has (leap years counted), hour ≤ 23, minute ≤ 59, second ≤ 60
 * (a leap second), offset ≤ 23:59. A pattern test and digit arithmetic, no captures and no
 * Date parsing: it runs for every timestamp of every answer.
 */
export function isRfc3339(value: string): boolean {
  if (!RFC3339_SHAPE.test(value)) return false;
  const year = twoDigits(value, 0) * 100 + twoDigits(value, 2);
  const month = twoDigits(value, 5);
  const day = twoDigits(value, 8);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month]!)) return false;
  if (twoDigits(value, 11) > 23 || twoDigits(value, 14) > 59 || twoDigits(value, 17) > 60) return false;
  const end = value.length;
  const zulu = value.charCodeAt(end - 1) === 90 || value.charCodeAt(end - 1) === 122; // Z or z
  return zulu || (twoDigits(value, end - 5) <= 23 && twoDigits(value, end - 2) <= 59);
}

/** An RFC 3339 timestamp from input, as ms since epoch; anything else is INVALID_INPUT at `path`. */
export function parseTimestamp(value: string, path: string): number {
  const ms = RFC3339.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw invalidInput(path, `${path.slice(1)} must be an RFC 3339 timestamp, e.g. 2026-11-26T10:00:00Z`);
  return ms;
}
