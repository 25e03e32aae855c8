import { describe, expect, test } from "bun:test";
import { AppError } from "../../src/lib/errors.ts";
import { checkRetention, storedRetention } from "../../src/modules/policies/validate.ts";

/** The service's own check, behind the route schema: callers that skip HTTP get the same rules. */
function refusal(input: Record<string, number | null>): { code: string; paths: string[] } | null {
  try {
    checkRetention(input);
    return null;
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return { code: err.code, paths: (err.details ?? []).map((d) => d.path) };
  }
}

describe("checkRetention", () => {
  test("counts are integers from -1 to 100000; -1 is a rule that keeps something", () => {
    expect(checkRetention({ keepHourly: -1 })).toEqual({ keepLast: 0, keepHourly: -1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepYearly: 0, maxAgeDays: null });
    for (const field of ["keepLast", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly"]) {
      for (const value of [-2, 0.5, -1.5, 100_001, Number.NaN, Infinity]) {
        expect({ field, value, got: refusal({ keepLast: 1, [field]: value }) }).toEqual({ field, value, got: { code: "INVALID_INPUT", paths: [`/retention/${field}`] } });
      }
    }
  });

  test("maxAgeDays is an integer from 1, or null; an all-zero retention is refused on /retention", () => {
    for (const value of [0, -1, 2.5]) expect(refusal({ maxAgeDays: value })).toEqual({ code: "INVALID_INPUT", paths: ["/retention/maxAgeDays"] });
    expect(refusal({ keepLast: 0, keepHourly: null, maxAgeDays: null })).toEqual({ code: "INVALID_INPUT", paths: ["/retention"] });
    expect(refusal({ maxAgeDays: 7 })).toBeNull();
  });

  test("a stored retention without keepHourly reads as keepHourly 0", () => {
    expect(storedRetention({ keepLast: 3, keepDaily: 7, keepWeekly: 0, keepMonthly: 0, keepYearly: 0, maxAgeDays: null })).toEqual({
      keepLast: 3,
      keepHourly: 0,
      keepDaily: 7,
      keepWeekly: 0,
      keepMonthly: 0,
      keepYearly: 0,
      maxAgeDays: null,
    });
  });
});
