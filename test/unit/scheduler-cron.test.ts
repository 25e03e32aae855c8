import { describe, expect, test } from "bun:test";
import { canonicalZone, isValidCron, nextRunAfter, previousRunAtOrBefore } from "../../src/scheduler/cron.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const at = (s: string) => new Date(s).getTime();

function runs(cron: string, zone: string, from: string, n: number): string[] {
  const out: string[] = [];
  let ref = at(from);
  for (let i = 0; i < n; i++) {
    ref = nextRunAfter(cron, zone, ref)!;
    out.push(iso(ref)!);
  }
  return out;
}

describe("cron validation", () => {
  test("only 5-field expressions", () => {
    expect(isValidCron("15 2 * * *")).toBe(true);
    expect(isValidCron("*/15 0-6 1,15 JAN-MAR MON-FRI")).toBe(true);
    for (const bad of ["0 15 2 * * *", "@hourly", "@daily", "* * * *", "60 * * * *", "* 24 * * *", "* * 32 * *", "x * * * *", "", "* * * * * * *"]) {
      expect({ bad, ok: isValidCron(bad) }).toEqual({ bad, ok: false });
    }
  });

  test("IANA zones only, canonical spelling", () => {
    expect(canonicalZone("UTC")).toBe("UTC");
    expect(canonicalZone("america/new_york")).toBe("America/New_York");
    expect(canonicalZone("Etc/GMT+1")).toBe("Etc/GMT+1");
    for (const bad of ["+01:00", "Mars/Olympus", "Europe/Berlin ", "", "-0500"]) expect(canonicalZone(bad)).toBeNull();
  });
});

describe("DST: Europe/Berlin `30 2 * * *`, as croner documents for fixed-time jobs", () => {
  test("spring forward 2026-03-29: 02:30 does not exist, the run happens at 03:00 CEST, once", () => {
    expect(runs("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3)).toEqual([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:00:00.000Z", // the gap: 03:00 CEST, the first valid time after it
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
    ]);
  });

  test("fall back 2026-10-25: 02:30 happens twice, the run happens once (the first)", () => {
    expect(runs("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z", 3)).toEqual([
      "2026-10-24T00:30:00.000Z", // 02:30 CEST
      "2026-10-25T00:30:00.000Z", // 02:30 CEST, first occurrence; not again at 01:30Z
      "2026-10-26T01:30:00.000Z", // 02:30 CET
    ]);
  });

  test("an interval job runs on both occurrences of the repeated hour and skips the gap", () => {
    expect(runs("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 4)).toEqual([
      "2026-10-25T00:00:00.000Z", // 02:00 CEST
      "2026-10-25T01:00:00.000Z", // 02:00 CET
      "2026-10-25T02:00:00.000Z", // 03:00 CET
      "2026-10-25T03:00:00.000Z",
    ]);
    expect(runs("0 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", 2)).toEqual([
      "2026-03-29T01:00:00.000Z", // 03:00 CEST (02:00 does not exist)
      "2026-03-29T02:00:00.000Z",
    ]);
  });

  test("previous run (the catch-up reference) is inclusive of the given instant", () => {
    expect(iso(previousRunAtOrBefore("0 * * * *", "UTC", at("2026-05-01T10:00:00Z")))).toBe("2026-05-01T10:00:00.000Z");
    expect(iso(previousRunAtOrBefore("0 * * * *", "UTC", at("2026-05-01T10:59:59.900Z")))).toBe("2026-05-01T10:00:00.000Z");
    expect(iso(previousRunAtOrBefore("30 2 * * *", "Europe/Berlin", at("2026-10-25T12:00:00Z")))).toBe("2026-10-25T00:30:00.000Z");
  });
});
