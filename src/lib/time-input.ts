import { invalidInput } from "./errors.ts";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/** An RFC 3339 timestamp from input, as ms since epoch; anything else is INVALID_INPUT at `path`. */
export function parseTimestamp(value: string, path: string): number {
  const ms = RFC3339.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw invalidInput(path, `${path.slice(1)} must be an RFC 3339 timestamp, e.g. 2026-11-26T10:00:00Z`);
  return ms;
}
