import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isRfc3339 } from "../../src/lib/time-input.ts";

describe("isRfc3339", () => {
  test("RFC 3339 date-times naming real instants pass", () => {
    for (const ok of ["2026-11-29T19:00:00Z", "2026-11-29T19:00:00.123Z", "2024-02-29T00:00:00+05:30", "2026-12-31T23:59:60Z", "2026-01-01t00:00:00z", "2000-02-29T00:00:00-00:00"]) {
      expect({ ok, is: isRfc3339(ok) }).toEqual({ ok, is: true });
    }
  });

  test("other forms and impossible fields fail", () => {
    for (const bad of [
      "",
      "2026-11-29T19:00Z",
      "2026-11-29 19:00:00Z",
      "2026-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-00-10T00:00:00Z",
      "2026-11-00T00:00:00Z",
      "2026-11-29T24:00:00Z",
      "2026-11-29T23:60:00Z",
      "2026-11-29T23:59:61Z",
      "2026-11-29T19:00:00+24:00",
      "2026-11-29T19:00:00",
      "x2026-11-29T19:00:00Z",
      "2026-11-29T19:00:00Zx",
      "Sun Nov 29 2026 19:00:00 GMT+0000 (Coordinated Universal Time)",
    ]) {
      expect({ bad, is: isRfc3339(bad) }).toEqual({ bad, is: false });
    }
  });

  test("every instant toISOString makes (years 0–9999) passes", () => {
    fc.assert(
      fc.property(fc.integer({ min: -62167219200000, max: 253402300799999 }), (ms) => isRfc3339(new Date(ms).toISOString())),
      { numRuns: 2000 },
    );
  });
});
