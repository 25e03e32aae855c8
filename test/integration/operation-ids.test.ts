import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * operationIds are what generated clients call their methods. test/fixtures/operation-ids.json
 * records the published ones: a served id may differ from it only with a CHANGELOG.md line
 * naming the change (`` `old` → `new` ``), and an operation may disappear only with one saying
 * "removed `old`"; a new operation must be added to it. An id merely mentioned in the
 * CHANGELOG (many are, in the notes that added them) does not excuse a change.
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

/** The published operations whose id changed, or that are gone, without a CHANGELOG line naming that change. */
function silentChanges(published: Record<string, string>, now: Record<string, string>, changelog: string): string[] {
  const lines = changelog.split("\n");
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return Object.entries(published).flatMap(([op, id]) => {
    const current = now[op];
    if (current === id) return [];
    const note = current === undefined ? new RegExp(`\\bremoved \`${literal(id)}\``, "i") : new RegExp(`\`${literal(id)}\` *(→|->) *\`${literal(current)}\``);
    if (lines.some((line) => note.test(line))) return [];
    return [`${op} was ${id}, now ${current ?? "gone"}: add a CHANGELOG.md line ${current ? `\`${id}\` → \`${current}\`` : `removed \`${id}\``}`];
  });
}

test("the guard: a rename or removal passes only with a CHANGELOG line naming it, not with the old id merely mentioned", () => {
  const published = { "GET /things": "listThings", "GET /things/{id}": "getThing" };
  const now = { "GET /things": "listAllThings" };
  const mentioned = "- `GET /things` (operationId `listThings`) and `getThing`: new.\n";
  expect(silentChanges(published, now, mentioned)).toEqual([
    "GET /things was listThings, now listAllThings: add a CHANGELOG.md line `listThings` → `listAllThings`",
    "GET /things/{id} was getThing, now gone: add a CHANGELOG.md line removed `getThing`",
  ]);
  // A line for another change does not do either.
  expect(silentChanges(published, now, `${mentioned}- \`listThings\` → \`findThings\`; \`getThing\` kept.\n`)).toHaveLength(2);
  const noted = `${mentioned}- operationId \`listThings\` → \`listAllThings\`.\n- Removed \`getThing\` (\`GET /things/{id}\`).\n`;
  expect(silentChanges(published, now, noted)).toEqual([]);
  expect(silentChanges(published, published, "")).toEqual([]);
});

test("published ids stay as they are, unless the CHANGELOG says otherwise; new ones are recorded", () => {
  const published = JSON.parse(readFileSync(join(REPO_ROOT, "test/fixtures/operation-ids.json"), "utf8")) as Record<string, string>;
  const changelogFile = join(REPO_ROOT, "CHANGELOG.md");
  const changelog = existsSync(changelogFile) ? readFileSync(changelogFile, "utf8") : "";
  expect(silentChanges(published, served, changelog)).toEqual([]);
  // The CHANGELOG names some ids in backticks (the notes that added them): renaming one silently still fails.
  const mentioned = Object.entries(published).filter(([, id]) => changelog.includes(`\`${id}\``));
  expect(mentioned.length).toBeGreaterThan(0);
  const renamed = { ...served, ...Object.fromEntries(mentioned.map(([op, id]) => [op, `${id}Renamed`])) };
  expect(silentChanges(published, renamed, changelog)).toHaveLength(mentioned.length);
  const unrecorded = Object.keys(served).filter((op) => !(op in published));
  expect(unrecorded).toEqual([]);
});
