import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * docs/api.md (the API guide in this repository) and the served OpenAPI document describe
 * the same operations: every row of the guide's operation tables is served, and every
 * served operation has a row. Runs in a bare clone: nothing outside the repository is read.
 */
const GUIDE = join(import.meta.dir, "..", "..", "docs", "api.md");

function guideOperations(text: string): string[] {
  const ops: string[] = [];
  for (const m of text.matchAll(/^\| ((?:GET|POST|PUT|PATCH|DELETE)(?: \/ (?:GET|POST|PUT|PATCH|DELETE))*) \| `([^`]+)` \|/gm)) {
    for (const method of m[1]!.split(" / ")) ops.push(`${method} ${m[2]}`);
  }
  return ops;
}

let h: Harness;
let spec: any;
beforeAll(async () => {
  h = await createHarness();
  spec = (await h.call("GET", "/swagger/json")).body;
});
afterAll(() => h.close());

describe("docs/api.md and the served OpenAPI document", () => {
  test("list the same operations", () => {
    const documented = guideOperations(readFileSync(GUIDE, "utf8"));
    expect(documented.length).toBeGreaterThan(35);
    expect(new Set(documented).size).toBe(documented.length);
    const served = Object.entries(spec.paths as Record<string, object>).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    expect({ undocumented: served.filter((op) => !documented.includes(op)), unserved: documented.filter((op) => !served.includes(op)) }).toEqual({ undocumented: [], unserved: [] });
  });

  test("the list filters the guide names are query parameters", () => {
    const params = (path: string) => (spec.paths[path].get.parameters as { name: string }[]).map((p) => p.name);
    expect(params("/data-sources")).toEqual(expect.arrayContaining(["engine", "q", "cursor", "limit"]));
    expect(params("/attachments")).toEqual(expect.arrayContaining(["dataSourceId", "policyId", "enabled"]));
    expect(params("/backup-jobs")).toEqual(expect.arrayContaining(["dataSourceId", "policyId", "status", "trigger", "from", "to"]));
    expect(params("/restores")).toEqual(expect.arrayContaining(["dataSourceId", "status"]));
    expect(params("/audit-log")).toEqual(expect.arrayContaining(["action", "targetType", "targetId", "actorId", "from", "to"]));
    expect(params("/notification-deliveries")).toEqual(expect.arrayContaining(["channelId", "event", "status", "cursor", "limit"]));
  });
});
