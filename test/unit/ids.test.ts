import { describe, expect, test } from "bun:test";
import { isId, lowestIdAt, newId } from "../../src/lib/ids.ts";

describe("ids", () => {
  test("prefixed and well-formed", () => {
    const id = newId("ds");
    expect(id).toMatch(/^ds_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(isId(id, "ds")).toBe(true);
    expect(isId(id, "pol")).toBe(false);
    expect(isId("ds_../../etc", "ds")).toBe(false);
  });

  test("strictly increasing within one millisecond and across time", () => {
    const ids = Array.from({ length: 5000 }, () => newId("job"));
    const sorted = [...ids].sort();
    expect(ids).toEqual(sorted);
    expect(new Set(ids).size).toBe(ids.length);
    const later = newId("job", Date.now() + 1000);
    expect(later > ids.at(-1)!).toBe(true);
  });

  test("time-sortable: the lowest id of a time sorts before ids minted at it", () => {
    const t = Date.now() + 5000;
    const before = newId("aud", t - 1);
    const at = newId("aud", t);
    expect(before < lowestIdAt("aud", t)).toBe(true);
    expect(lowestIdAt("aud", t) <= at).toBe(true);
  });
});
