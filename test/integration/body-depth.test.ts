import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * JSON nested thousands of levels deep overflowed the stack in body validation (a 500). The
 * body parser caps the depth before anything walks the value: 400 INVALID_INPUT instead.
 */
let h: Harness;
let token: string;

beforeAll(async () => {
  h = await createHarness();
  token = await h.token("org_deep");
});
afterAll(() => h.close());

const DEEP = 20_000;
const deepArray = "[".repeat(DEEP) + "]".repeat(DEEP);
const deepObject = '{"a":'.repeat(DEEP) + "1" + "}".repeat(DEEP);

describe("JSON nesting depth", () => {
  for (const [name, rawBody] of [
    ["a 20000-deep array as the body", deepArray],
    ["a 20000-deep object as the body", deepObject],
    ["a 20000-deep array in a field", `{"name":"x","engine":"postgres","host":${deepArray}}`],
    ["a 20000-deep object in a field", `{"name":${deepObject}}`],
  ] as const) {
    test(`${name} → 400 INVALID_INPUT on POST routes`, async () => {
      for (const path of ["/data-sources", "/backup-policies", "/storage-destinations"]) {
        const res = await h.call("POST", path, { token, rawBody });
        expect({ path, status: res.status, code: res.body?.code }).toEqual({ path, status: 400, code: "INVALID_INPUT" });
        expect(res.body.message).toContain("nested deeper than 64");
      }
    });
  }

  test("brackets inside strings don't count; 64 levels are still fine", async () => {
    const inString = await h.call("POST", "/data-sources", { token, rawBody: JSON.stringify({ name: "[".repeat(DEEP), engine: "nope" }) });
    expect(inString.status).toBe(400);
    expect(inString.body.message).not.toContain("nested");
    const ok = '{"a":'.repeat(63) + "1" + "}".repeat(63);
    const res = await h.call("POST", "/data-sources", { token, rawBody: ok });
    expect(res.status).toBe(400);
    expect(res.body.message).not.toContain("nested");
    expect(res.body.details?.length).toBeGreaterThan(0);
  });

  test("the app still answers afterwards", async () => {
    expect((await h.call("GET", "/healthz")).status).toBe(200);
  });
});
