import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isoWeek, minusCalendarDays, selectBackupsToKeep, wallClock, type RetentionCandidate, type RetentionRules } from "../../src/runner/retention.ts";

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
  .map(([base, span, rows]) => rows.map((r, i): RetentionCandidate => ({ id: `job_${String(i).padStart(4, "0")}`, status: r.status, at: base + Math.floor(r.offset * span) })));
// Counts include -1 (no limit) now and then.
const n = fc.option(fc.oneof({ arbitrary: fc.integer({ min: 0, max: 12 }), weight: 4 }, { arbitrary: fc.constant(-1), weight: 1 }), { nil: undefined });
const rules = fc.record({
  keepLast: n,
  keepHourly: n,
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
const COUNT_NAMES = ["keepLast", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly"] as const;
const RULE_NAMES = [...COUNT_NAMES, "maxAgeDays"] as const;
const subset = (a: string[], b: string[]) => a.filter((id) => !b.includes(id));

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

  test("each count rule keeps at most n backups", () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 12 }), now, zone, (h, k, t, z) => {
        const all = { keepLast: k, keepHourly: k, keepDaily: k, keepWeekly: k, keepMonthly: k, keepYearly: k };
        const { reasons } = selectBackupsToKeep(h, all, t, z);
        for (const rule of ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const) {
          const kept = Object.entries(reasons).filter(([, why]) => why.includes(rule));
          expect(kept.length).toBeLessThanOrEqual(k);
        }
      }),
    );
  });

  test("monotone: raising one count (or making it -1), or maxAgeDays, never keeps less", () => {
    const raise = fc.record({ rule: fc.constantFrom(...RULE_NAMES), by: fc.integer({ min: 1, max: 10 }), unlimited: fc.boolean() });
    fc.assert(
      fc.property(input, raise, ([h, r, t, z], { rule, by, unlimited }) => {
        const before = r[rule];
        const more: RetentionRules = rule === "maxAgeDays" ? { ...r, maxAgeDays: (before ?? 0) + by } : { ...r, [rule]: unlimited || before === -1 ? -1 : (before ?? 0) + by };
        const less = selectBackupsToKeep(h, r, t, z).keep;
        expect(subset(less, selectBackupsToKeep(h, more, t, z).keep)).toEqual([]);
      }),
    );
  });

  test("-1 keeps at least what any count n keeps, rule by rule", () => {
    fc.assert(
      fc.property(history, fc.constantFrom(...COUNT_NAMES), fc.integer({ min: 0, max: 100 }), now, zone, (h, rule, k, t, z) => {
        const some = selectBackupsToKeep(h, { [rule]: k }, t, z).keep;
        const all = selectBackupsToKeep(h, { [rule]: -1 }, t, z).keep;
        expect(subset(some, all)).toEqual([]);
      }),
    );
  });

  test("keepLast -1 keeps every successful backup", () => {
    fc.assert(
      fc.property(history, now, zone, (h, t, z) => {
        expect(selectBackupsToKeep(h, { keepLast: -1 }, t, z).remove).toEqual([]);
      }),
    );
  });

  test("a count rule with count left at the oldest backup keeps it", () => {
    fc.assert(
      fc.property(history, fc.constantFrom(...COUNT_NAMES), now, zone, (h, rule, t, z) => {
        const ok = newestFirst(successes(h));
        fc.pre(ok.length > 0);
        // n larger than the number of backups: the rule never runs out.
        expect(selectBackupsToKeep(h, { [rule]: ok.length + 1 }, t, z).keep).toContain(ok.at(-1)!.id);
      }),
    );
  });

  test("maxAgeDays reads from the newest backup, not from now: a later now changes nothing", () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 800 }), fc.integer({ min: 1, max: 10 * 365 * DAY }), zone, (h, d, later, z) => {
        const ok = successes(h);
        fc.pre(ok.length > 0);
        const newest = Math.max(...ok.map((b) => b.at));
        const soon = selectBackupsToKeep(h, { maxAgeDays: d }, newest + 1, z);
        expect(selectBackupsToKeep(h, { maxAgeDays: d }, newest + later, z)).toEqual(soon);
      }),
    );
  });

  test("minusCalendarDays: d days back on the zone's clock, so d × 24 h give or take the zone's offset changes", () => {
    fc.assert(
      fc.property(fc.integer({ min: START, max: END }), fc.integer({ min: 1, max: 800 }), zone, (t, d, z) => {
        const back = minusCalendarDays(t, d, z);
        const plain = t - d * DAY;
        if (z === "UTC" || z === "Asia/Kolkata") expect(back).toBe(plain);
        expect(Math.abs(back - plain)).toBeLessThanOrEqual(3 * 3_600_000);
        // The clock reads the same time d days earlier, or (that time skipped by a DST change,
        // none of these zones does so at midnight) up to an hour later the same day.
        const [w, v] = [wallClock(t, z), wallClock(back, z)];
        const wanted = Date.UTC(w.year, w.month - 1, w.day - d, w.hour, w.minute, w.second);
        const got = Date.UTC(v.year, v.month - 1, v.day, v.hour, v.minute, v.second);
        expect(got - wanted).toBeGreaterThanOrEqual(0);
        expect(got - wanted).toBeLessThanOrEqual(3_600_000);
        expect(new Date(got).getUTCDate()).toBe(new Date(wanted).getUTCDate());
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
    // keepWeekly still has count left at the oldest backup (thu, same week as sat): kept too.
    expect(selectBackupsToKeep(w53, { keepWeekly: 5 }, 0, "UTC").keep).toEqual(["mon", "sat", "thu"]);
    expect(selectBackupsToKeep(w53, { keepWeekly: 2 }, 0, "UTC").keep).toEqual(["mon", "sat"]);
  });

  test("monthly and yearly periods follow the zone", () => {
    const h = [b("nye", "2025-12-31T23:30:00Z"), b("dec", "2025-12-15T12:00:00Z"), b("old", "2024-06-01T12:00:00Z")];
    // In Berlin the first is already 2026.
    expect(selectBackupsToKeep(h, { keepYearly: 2 }, 0, "Europe/Berlin").keep).toEqual(["nye", "dec"]);
    expect(selectBackupsToKeep(h, { keepYearly: 2 }, 0, "UTC").keep).toEqual(["nye", "old"]);
    expect(selectBackupsToKeep(h, { keepMonthly: 2 }, 0, "UTC").keep).toEqual(["nye", "old"]);
  });

  test("maxAgeDays keeps what is after the newest success moved back d days, whatever now is; failed jobs are in neither list", () => {
    const h = [b("new", "2026-06-09T00:00:00Z", "failed"), b("d1", "2026-06-08T00:00:00Z"), b("d3", "2026-06-05T00:00:01Z"), b("d5", "2026-06-05T00:00:00Z")];
    for (const t of [Date.parse("2026-06-10T00:00:00Z"), Date.parse("2030-01-01T00:00:00Z")]) {
      const res = selectBackupsToKeep(h, { maxAgeDays: 3 }, t);
      // The window is 2026-06-05T00:00:00Z, exclusive, counted from d1 (the newest success).
      expect(res.keep).toEqual(["d1", "d3"]);
      expect(res.remove).toEqual(["d5"]);
      expect(res.reasons.d1).toEqual(["newest", "maxAge"]);
    }
  });

  test("maxAgeDays counts calendar days on the zone's clock: across spring forward one day is 23 hours", () => {
    // Newest: 29 Mar 2026 12:00 CEST (10:00Z). One day back on Berlin's clock: 28 Mar 12:00 CET (11:00Z).
    const h = [b("newest", "2026-03-29T10:00:00Z"), b("in", "2026-03-28T11:00:01Z"), b("edge", "2026-03-28T11:00:00Z"), b("out", "2026-03-28T10:30:00Z")];
    const t = Date.parse("2026-04-01T00:00:00Z");
    expect(selectBackupsToKeep(h, { maxAgeDays: 1 }, t, "Europe/Berlin").keep).toEqual(["newest", "in"]);
    // In UTC the same day is 24 hours: 28 Mar 10:00Z.
    expect(selectBackupsToKeep(h, { maxAgeDays: 1 }, t, "UTC").keep).toEqual(["newest", "in", "edge", "out"]);
  });

  test("maxAgeDays resolves a skipped or repeated wall time as restic (Go's time.Date) does", () => {
    // 30 Mar 02:30 CEST minus one day is 29 Mar 02:30, skipped in Berlin: it becomes 03:30 CEST (01:30Z).
    expect(new Date(minusCalendarDays(Date.parse("2026-03-30T00:30:00Z"), 1, "Europe/Berlin")).toISOString()).toBe("2026-03-29T01:30:00.000Z");
    // 26 Oct 02:30 CET minus one day is 25 Oct 02:30, which happens twice: the later one, CET (01:30Z).
    expect(new Date(minusCalendarDays(Date.parse("2026-10-26T01:30:00Z"), 1, "Europe/Berlin")).toISOString()).toBe("2026-10-25T01:30:00.000Z");
    // Month and year ends roll over like AddDate: 1 Mar minus 1 day is 28 Feb (2026) or 29 Feb (2028).
    expect(new Date(minusCalendarDays(Date.parse("2026-03-01T05:06:07.089Z"), 1, "UTC")).toISOString()).toBe("2026-02-28T05:06:07.089Z");
    expect(new Date(minusCalendarDays(Date.parse("2028-03-01T05:06:07Z"), 1, "UTC")).toISOString()).toBe("2028-02-29T05:06:07.000Z");
    expect(new Date(minusCalendarDays(Date.parse("2026-01-01T00:00:00Z"), 366, "UTC")).toISOString()).toBe("2024-12-31T00:00:00.000Z");
  });

  test("maxAgeDays: a backup stamped in the future does not move the window (restic reads from the newest one before now)", () => {
    const h = [b("future", "2026-07-01T00:00:00Z"), b("a", "2026-06-09T00:00:00Z"), b("b", "2026-06-08T12:00:00Z"), b("c", "2026-06-07T00:00:00Z")];
    const t = Date.parse("2026-06-10T00:00:00Z");
    // Window from a: after 8 Jun 00:00Z. The future backup is still the newest and kept.
    expect(selectBackupsToKeep(h, { maxAgeDays: 1 }, t).keep).toEqual(["future", "a", "b"]);
    // Once now has passed it, it anchors the window.
    expect(selectBackupsToKeep(h, { maxAgeDays: 1 }, Date.parse("2026-07-02T00:00:00Z")).keep).toEqual(["future"]);
    // With every backup in the future there is no anchor and restic keeps them all.
    expect(selectBackupsToKeep(h, { maxAgeDays: 1 }, Date.parse("2026-01-01T00:00:00Z")).remove).toEqual([]);
  });

  test("keepHourly: hours on the zone's clock; the hour repeated at fall-back is one hour, as in restic", () => {
    // Kolkata is +05:30: its hours start at :30 UTC.
    const k = [b("k3", "2026-05-01T05:29:00Z"), b("k2", "2026-05-01T04:31:00Z"), b("k1", "2026-05-01T04:29:00Z")];
    expect(selectBackupsToKeep(k, { keepHourly: 2 }, 0, "Asia/Kolkata").keep).toEqual(["k3", "k1"]);
    expect(selectBackupsToKeep(k, { keepHourly: 2 }, 0, "UTC").keep).toEqual(["k3", "k2"]);
    // Berlin, 25 Oct 2026: 02:10 CEST (00:10Z), 02:50 CEST (00:50Z), 02:10 CET (01:10Z) all read 02:xx.
    const dst = [b("cet", "2026-10-25T01:10:00Z"), b("cest2", "2026-10-25T00:50:00Z"), b("cest1", "2026-10-25T00:10:00Z"), b("one", "2026-10-24T23:59:00Z")];
    expect(selectBackupsToKeep(dst, { keepHourly: 2 }, 0, "Europe/Berlin").keep).toEqual(["cet", "one"]);
    expect(selectBackupsToKeep(dst, { keepHourly: 2 }, 0, "UTC").keep).toEqual(["cet", "cest2"]);
  });

  test("-1 has no limit; other negatives switch a rule off, as in restic", () => {
    const h = [b("a", "2026-01-03T00:00:00Z"), b("b", "2026-01-02T00:00:00Z"), b("c", "2026-01-01T12:00:00Z"), b("d", "2026-01-01T00:00:00Z")];
    expect(selectBackupsToKeep(h, { keepDaily: -1 }, 0).keep).toEqual(["a", "b", "c", "d"]);
    expect(selectBackupsToKeep(h, { keepDaily: 2 }, 0).keep).toEqual(["a", "b"]);
    expect(selectBackupsToKeep(h, { keepDaily: -2, keepLast: -5 }, 0).keep).toEqual(["a"]);
  });

  test("with only failed jobs, or no rule that keeps anything, only the newest success survives", () => {
    expect(selectBackupsToKeep([b("f", "2026-01-01T00:00:00Z", "failed")], { keepLast: 3 }, 0)).toEqual({ keep: [], remove: [], reasons: {} });
    const h = [b("a", "2026-01-01T00:00:00Z"), b("b", "2026-01-02T00:00:00Z")];
    expect(selectBackupsToKeep(h, {}, 0).keep).toEqual(["b"]);
  });
});
