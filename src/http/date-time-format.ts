import { FormatRegistry } from "@sinclair/typebox";
import { isRfc3339 } from "../lib/time-input.ts";

/**
 * The `date-time` format every answer's timestamps are checked against. Elysia registers a
 * loose one (an unanchored pattern that also takes JavaScript's `Date#toString` and
 * `DD/MM/YYYY` forms, then a `Date` parse): 90 % of the response check of a page of 50 jobs.
 * This one is RFC 3339 exactly, as the document promises, and costs a regex and a few
 * comparisons. Only response schemas use `date-time` (time filters in queries are plain
 * strings, parsed by parseTimestamp). Set unconditionally: whichever module loads first,
 * this is the check that runs.
 */
export function useStrictDateTimeFormat(): void {
  FormatRegistry.Set("date-time", isRfc3339);
}
