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

const operations = () =>
  Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method, op })),
  );

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
});
