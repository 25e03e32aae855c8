import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { SCOPES } from "../../src/http/auth.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

let h: Harness;
let spec: any;
beforeAll(async () => {
  h = await createHarness();
  spec = (await h.call("GET", "/swagger/json")).body;
});
afterAll(() => h.close());

const operations = () => Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

describe("the served OpenAPI document", () => {
  test("is a valid OpenAPI 3 document", async () => {
    const result = await new Validator().validate(structuredClone(spec));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  test("declares bearer JWT auth and the error schema", () => {
    expect(spec.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    expect(spec.components.schemas.Error.required).toEqual(["code", "message"]);
    expect(spec.info.title).toBe("snapdb API");
  });

  test("every operation documents its errors; every secured one its scope and 401/403", () => {
    for (const { path, method, op } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      expect({ where, has500: !!op.responses?.["500"] }).toEqual({ where, has500: true });
      expect(op.responses["500"].content["application/json"].schema.$ref).toBe("#/components/schemas/Error");
      const scope = op["x-required-scope"];
      if (scope) {
        expect({ where, known: (SCOPES as readonly string[]).includes(scope) }).toEqual({ where, known: true });
        expect(op.security).toEqual([{ bearer: [] }]);
        expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["401", "403"]));
        expect(op.description).toContain(`Requires scope \`${scope}\``);
      } else {
        expect({ where, public: ["/healthz", "/readyz", "/metrics"].includes(path) || path.startsWith("/downloads/") }).toEqual({
          where,
          public: true,
        });
      }
      if (path.includes("{")) expect(Object.keys(op.responses)).toContain("404");
      // Input that can be invalid: parameters, or any body (every non-GET goes through the JSON parser).
      if (op.parameters?.length || method !== "get") expect({ where, has400: !!op.responses["400"] }).toEqual({ where, has400: true });
    }
  });

  test("lists the foundation's routes and hides the UI's own", () => {
    const paths = Object.keys(spec.paths);
    expect(paths).toEqual(expect.arrayContaining(["/audit-log", "/healthz", "/readyz", "/metrics"]));
    expect(paths.some((p) => p.startsWith("/swagger"))).toBe(false);
    const list = spec.paths["/audit-log"].get;
    const params = list.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(["cursor", "limit", "action", "targetType", "targetId", "actorId", "from", "to"]));
  });

  test("operation ids are unique", () => {
    const ids = operations().map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("a bad query value is refused in the document's terms: a boolean is true or false, limit an integer from 1 to 200, an enum its values", async () => {
    const token = await h.token("org_query_words");
    const either = (values: string[]) => `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
    const cases: { call: string; path: string; words: string }[] = [];
    for (const { path, method, op } of operations()) {
      for (const param of (op.parameters ?? []) as { in: string; name: string; schema: { type: string; enum?: string[]; minimum?: number; maximum?: number } }[]) {
        if (param.in !== "query") continue;
        const bad =
          param.schema.type === "boolean"
            ? { values: ["maybe", "1", "TRUE"], words: "must be true or false" }
            : param.schema.type === "integer"
              ? { values: ["1.5", "abc", "0", "-1", "201", "99999"], words: `must be an integer from ${param.schema.minimum} to ${param.schema.maximum}` }
              : param.schema.enum
                ? { values: ["nope"], words: `must be ${either(param.schema.enum)}` }
                : null;
        if (!bad) continue;
        const target = `${method.toUpperCase()} ${path.replace(/\{\w+\}/g, "nope_1")}`;
        for (const value of bad.values) cases.push({ call: `${target}?${param.name}=${value}`, path: `/${param.name}`, words: bad.words });
      }
    }
    expect(cases.filter((c) => c.words === "must be true or false").length).toBeGreaterThanOrEqual(4 * 3);
    for (const { call, path, words } of cases) {
      const [method, target] = call.split(" ") as [string, string];
      const res = await h.call(method, target, { token });
      const detail = res.body.details?.[0] ?? {};
      // The words may follow the field's name ("limit must be …"): they are what counts.
      expect({ call, status: res.status, path: detail.path, says: String(detail.message).endsWith(words) ? words : detail.message }).toEqual({ call, status: 400, path, says: words });
    }
  });
});
