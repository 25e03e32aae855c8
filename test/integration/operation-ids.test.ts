import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * operationIds are what generated clients call their methods. test/fixtures/operation-ids.json
 * records the published ones: a served id may differ from it (or an operation disappear)
 * only with a CHANGELOG.md line naming the old id; a new operation must be added to it.
 */
let h: Harness;
let served: Record<string, string>;
beforeAll(async () => {
  h = await createHarness();
  const spec = (await h.call("GET", "/swagger/json")).body;
  served = Object.fromEntries(
    Object.entries(spec.paths as Record<string, Record<string, { operationId: string }>>).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op.operationId]),
    ),
  );
});
afterAll(() => h.close());

test("every operation has a readable camelCase id, unique in the document", () => {
  const bad = Object.entries(served).filter(([, id]) => !/^[a-z][A-Za-z0-9]+$/.test(id ?? ""));
  expect(bad).toEqual([]);
  const ids = Object.values(served);
  expect(new Set(ids).size).toBe(ids.length);
});

test("published ids stay as they are, unless the CHANGELOG says otherwise; new ones are recorded", () => {
  const published = JSON.parse(readFileSync(join(REPO_ROOT, "test/fixtures/operation-ids.json"), "utf8")) as Record<string, string>;
  const changelogFile = join(REPO_ROOT, "CHANGELOG.md");
  const changelog = existsSync(changelogFile) ? readFileSync(changelogFile, "utf8") : "";
  const changedSilently = Object.entries(published).filter(([op, id]) => served[op] !== id && !changelog.includes(`\`${id}\``)).map(([op, id]) => `${op} was ${id}, now ${served[op] ?? "gone"}`);
  expect(changedSilently).toEqual([]);
  const unrecorded = Object.keys(served).filter((op) => !(op in published));
  expect(unrecorded).toEqual([]);
});
