import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * Every operation that ../shared/API.md (the contract, beside the repository) names is in
 * the served OpenAPI document, with the filters it lists.
 */
const API_MD = join(import.meta.dir, "..", "..", "..", "shared", "API.md");

function contractOperations(text: string): string[] {
  const ops: string[] = [];
  for (const m of text.matchAll(/^\| ((?:GET|POST|PUT|PATCH|DELETE)(?: \/ (?:GET|POST|PUT|PATCH|DELETE))*) \| `([^`]+)` \|/gm)) {
    for (const method of m[1]!.split(" / ")) ops.push(`${method} ${m[2]}`);
  }
  // Stated in prose rather than in a table.
  for (const op of ["POST /backup-policies", "GET /backup-policies", "GET /backup-policies/{id}", "PATCH /backup-policies/{id}", "DELETE /backup-policies/{id}"]) ops.push(op);
  for (const op of ["GET /audit-log", "GET /healthz", "GET /readyz", "GET /metrics"]) ops.push(op);
  return ops;
}

let h: Harness;
let spec: any;
beforeAll(async () => {
  h = await createHarness();
  spec = (await h.call("GET", "/swagger/json")).body;
});
afterAll(() => h.close());

describe.skipIf(!existsSync(API_MD))("the API.md contract", () => {
  test("every operation of API.md is served and documented", () => {
    const ops = contractOperations(readFileSync(API_MD, "utf8"));
    expect(ops.length).toBeGreaterThan(35);
    const served = new Set(
      Object.entries(spec.paths as Record<string, object>).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`)),
    );
    expect(ops.filter((op) => !served.has(op))).toEqual([]);
  });

  test("list filters of API.md are query parameters", () => {
    const params = (path: string) => (spec.paths[path].get.parameters as { name: string }[]).map((p) => p.name);
    expect(params("/data-sources")).toEqual(expect.arrayContaining(["engine", "q", "cursor", "limit"]));
    expect(params("/attachments")).toEqual(expect.arrayContaining(["dataSourceId", "policyId", "enabled"]));
    expect(params("/backup-jobs")).toEqual(expect.arrayContaining(["dataSourceId", "policyId", "status", "trigger", "from", "to"]));
    expect(params("/restores")).toEqual(expect.arrayContaining(["dataSourceId", "status"]));
    expect(params("/audit-log")).toEqual(expect.arrayContaining(["action", "targetType", "targetId", "actorId", "from", "to"]));
  });
});
