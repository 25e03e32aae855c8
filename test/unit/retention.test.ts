import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isoWeek, selectBackupsToKeep, type RetentionCandidate, type RetentionRules } from "../../src/runner/retention.ts";

const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Australia/Lord_Howe"];
const START = Date.UTC(2023, 0, 1);
const END = Date.UTC(2027, 0, 1);
const STATUSES = ["succeeded", "succeeded", "succeeded", "failed", "canceled", "queued", "running"];

const DAY = 86_400_000;
// Histories packed into a few days, a couple of months or years, so that every kind of
// period sees both collisions (several backups in one period) and gaps.
const history = fc
  .tuple(
    fc.integer({ min: START, max: END }),
    fc.constantFrom(3 * DAY, 60 * DAY, 4 * 365 * DAY),
    fc.array(fc.record({ status: fc.constantFrom(...STATUSES), offset: fc.double({ min: 0, max: 1, noNaN: true }) }), { maxLength: 80 }),
  )
  .map(([base, span, rows]) =>
    rows.map((r, i): RetentionCandidate => ({ id: `job_${String(i).padStart(4, "0")}`, status: r.status, at: base + Math.floor(r.offset * span) })),
  );
const n = fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined });
const rules = fc.record({
  keepLast: n,
  keepDaily: n,
  keepWeekly: n,
  keepMonthly: n,
  keepYearly: n,
  maxAgeDays: fc.option(fc.integer({ min: 1, max: 800 }), { nil: null }),
});
const now = fc.integer({ min: START, max: END + 4 * 365 * DAY });
const zone = fc.constantFrom(...ZONES);
const input = fc.tuple(history, rules, now, zone);

const successes = (h: RetentionCandidate[]) => h.filter((b) => b.status === "succeeded");
const newestFirst = (h: RetentionCandidate[]) => [...h].sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1));
const RULE_NAMES = ["keepLast", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly", "maxAgeDays"] as const;

describe("selectBackupsToKeep: properties over random histories", () => {
  test("the newest successful backup is always kept", () => {
    fc.assert(
      fc.property(input, ([h, r, t, z]) => {
        const ok = successes(h);
        const { keep } = selectBackupsToKeep(h, r, t, z);
        if (ok.length === 0) return keep.length === 0;
        return keep.includes(newestFirst(ok)[0]!.id);
      }),
    );
  });

  test("kept and removed partition the successful backups; nothing else appears", () => {
    fc.assert(
      fc.property(input, ([h, r, t, z]) => {
        const { keep, remove } = selectBackupsToKeep(h, r, t, z);
        const ok = new Set(successes(h).map((b) => b.id));
        expect(new Set(keep).size + new Set(remove).size).toBe(ok.size);
        for (const id of [...keep, ...remove]) expect(ok.has(id)).toBe(true);
        expect(keep.filter((id) => remove.includes(id))).toEqual([]);
      }),
    );
  });

  test("union: each rule's own keep set is inside the result, and the result is exactly their union", () => {
    fc.assert(
      fc.property(input, ([h, r, t, z]) => {
        const all = new Set(selectBackupsToKeep(h, r, t, z).keep);
        const union = new Set<string>();
        for (const name of RULE_NAMES) {
          const alone: RetentionRules = { [name]: r[name] };
          for (const id of selectBackupsToKeep(h, alone, t, z).keep) {
            expect(all.has(id)).toBe(true);
            union.add(id);
          }
        }
        expect([...all].sort()).toEqual([...union].sort());
      }),
    );
  });

  test("keepLast n alone keeps exactly the n newest successful backups", () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 20 }), now, zone, (h, k, t, z) => {
        const ok = newestFirst(successes(h));
        fc.pre(k <= ok.length);
        expect(selectBackupsToKeep(h, { keepLast: k }, t, z).keep).toEqual(ok.slice(0, k).map((b) => b.id));
      }),
    );
  });

  test("each periodic rule keeps at most n backups, one per distinct period", () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 12 }), now, zone, (h, k, t, z) => {
        const { reasons } = selectBackupsToKeep(h, { keepDaily: k, keepWeekly: k, keepMonthly: k, keepYearly: k }, t, z);
        for (const rule of ["daily", "weekly", "monthly", "yearly"] as const) {
          const kept = Object.entries(reasons).filter(([, why]) => why.includes(rule));
          expect(kept.length).toBeLessThanOrEqual(k);
        }
      }),
    );
  });

  test("idempotent: applied again to what it kept, it removes nothing", () => {
    fc.assert(
      fc.property(input, ([h, r, t, z]) => {
        const first = selectBackupsToKeep(h, r, t, z);
        const kept = h.filter((b) => first.keep.includes(b.id));
        const second = selectBackupsToKeep(kept, r, t, z);
        expect(second.remove).toEqual([]);
        expect(second.keep).toEqual(first.keep);
      }),
    );
  });

  test("failed, canceled, queued and running jobs never change the result", () => {
    fc.assert(
      fc.property(input, ([h, r, t, z]) => {
        const withOthers = selectBackupsToKeep(h, r, t, z);
        const onlyOk = selectBackupsToKeep(successes(h), r, t, z);
        expect(withOthers).toEqual(onlyOk);
      }),
    );
  });
});

const b = (id: string, iso: string, status = "succeeded"): RetentionCandidate => ({ id, status, at: Date.parse(iso) });

describe("selectBackupsToKeep: examples", () => {
  test("keepDaily in Berlin across the fall-back night: 02:30 CEST and 02:30 CET are one day", () => {
    const h = [
      b("a", "2026-10-24T00:30:00Z"), // 24 Oct 02:30 CEST
      b("b", "2026-10-25T00:30:00Z"), // 25 Oct 02:30 CEST
      b("c", "2026-10-25T01:30:00Z"), // 25 Oct 02:30 CET (same local day, newer)
      b("d", "2026-10-25T22:59:00Z"), // 25 Oct 23:59 CET
      b("e", "2026-10-25T23:00:00Z"), // 26 Oct 00:00 CET
    ];
    const kept = selectBackupsToKeep(h, { keepDaily: 3 }, Date.parse("2026-10-27T00:00:00Z"), "Europe/Berlin");
    expect(kept.keep).toEqual(["e", "d", "a"]);
    expect(kept.remove).toEqual(["c", "b"]);
    // The same instants fall on other days elsewhere: in UTC, b…e are all 25 Oct;
    // in New York a is 23 Oct, b and c are 24 Oct, d and e 25 Oct.
    expect(selectBackupsToKeep(h, { keepDaily: 3 }, 0, "UTC").keep).toEqual(["e", "a"]);
    expect(selectBackupsToKeep(h, { keepDaily: 3 }, 0, "America/New_York").keep).toEqual(["e", "c", "a"]);
  });

  test("keepDaily across spring forward: the short day is still one day", () => {
    const h = [b("x", "2026-03-28T22:59:00Z"), b("y", "2026-03-28T23:00:00Z"), b("z", "2026-03-29T21:59:00Z"), b("w", "2026-03-29T22:00:00Z")];
    // Berlin: x = 28 Mar 23:59 CET; y = 29 Mar 00:00 CET; z = 29 Mar 23:59 CEST; w = 30 Mar 00:00 CEST.
    expect(selectBackupsToKeep(h, { keepDaily: 3 }, 0, "Europe/Berlin").keep).toEqual(["w", "z", "x"]);
  });

  test("ISO weeks across week-year boundaries", () => {
    expect(isoWeek(2024, 12, 29)).toEqual({ year: 2024, week: 52 });
    expect(isoWeek(2024, 12, 30)).toEqual({ year: 2025, week: 1 });
    expect(isoWeek(2026, 12, 31)).toEqual({ year: 2026, week: 53 });
    expect(isoWeek(2027, 1, 3)).toEqual({ year: 2026, week: 53 });
    expect(isoWeek(2027, 1, 4)).toEqual({ year: 2027, week: 1 });
    expect(isoWeek(2021, 1, 3)).toEqual({ year: 2020, week: 53 });
    const h = [b("sun52", "2024-12-29T12:00:00Z"), b("mon01", "2024-12-30T12:00:00Z"), b("thu01", "2025-01-02T12:00:00Z")];
    expect(selectBackupsToKeep(h, { keepWeekly: 2 }, 0, "UTC").keep).toEqual(["thu01", "sun52"]);
    // 2026-W53 runs into January 2027: one week, its newest backup.
    const w53 = [b("thu", "2026-12-31T10:00:00Z"), b("sat", "2027-01-02T10:00:00Z"), b("mon", "2027-01-04T10:00:00Z")];
    expect(selectBackupsToKeep(w53, { keepWeekly: 5 }, 0, "UTC").keep).toEqual(["mon", "sat"]);
  });

  test("monthly and yearly periods follow the zone", () => {
    const h = [b("nye", "2025-12-31T23:30:00Z"), b("dec", "2025-12-15T12:00:00Z"), b("old", "2024-06-01T12:00:00Z")];
    // In Berlin the first is already 2026.
    expect(selectBackupsToKeep(h, { keepYearly: 2 }, 0, "Europe/Berlin").keep).toEqual(["nye", "dec"]);
    expect(selectBackupsToKeep(h, { keepYearly: 2 }, 0, "UTC").keep).toEqual(["nye", "old"]);
    expect(selectBackupsToKeep(h, { keepMonthly: 2 }, 0, "UTC").keep).toEqual(["nye", "old"]);
  });

  test("maxAgeDays keeps what is younger than d days; failed jobs are in neither list", () => {
    const t = Date.parse("2026-06-10T00:00:00Z");
    const h = [b("new", "2026-06-09T00:00:00Z", "failed"), b("d1", "2026-06-08T00:00:00Z"), b("d3", "2026-06-07T00:00:01Z"), b("d5", "2026-06-05T00:00:00Z")];
    const res = selectBackupsToKeep(h, { maxAgeDays: 3 }, t);
    expect(res.keep).toEqual(["d1", "d3"]);
    expect(res.remove).toEqual(["d5"]);
    expect(res.reasons.d1).toEqual(["newest", "maxAge"]);
  });

  test("with only failed jobs, or no rule that keeps anything, only the newest success survives", () => {
    expect(selectBackupsToKeep([b("f", "2026-01-01T00:00:00Z", "failed")], { keepLast: 3 }, 0)).toEqual({ keep: [], remove: [], reasons: {} });
    const h = [b("a", "2026-01-01T00:00:00Z"), b("b", "2026-01-02T00:00:00Z")];
    expect(selectBackupsToKeep(h, {}, 0).keep).toEqual(["b"]);
  });
});
