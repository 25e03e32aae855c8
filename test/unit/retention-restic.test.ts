import { describe, expect, test } from "bun:test";
import { selectBackupsToKeep, type RetentionReason, type RetentionRules } from "../../src/runner/retention.ts";
import vectors from "../fixtures/restic-forget/vectors.json";

/**
 * restic's own `forget` test vectors (see test/fixtures/restic-forget/README.md), run in UTC
 * as restic runs them. The only difference allowed: snapdb never drops the newest backup.
 */
interface Case {
  vector: string;
  resticPolicy: string;
  rules: RetentionRules;
  keep: string[];
  matches: Record<string, string[]>;
}

const candidates = vectors.snapshots.map((s) => ({ id: s.id, status: "succeeded", at: Date.parse(s.time) }));
const newest = [...candidates].sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1))[0]!.id;
// Long after every snapshot, so none of them is "in the future".
const NOW = Date.parse("2030-01-01T00:00:00Z");

/** restic's reason texts ("daily snapshot", "oldest daily snapshot", "within 2d") as ours. */
function ourReason(match: string): RetentionReason {
  if (match.startsWith("within ")) return "maxAge";
  const rule = match.replace(/^oldest /, "").replace(/ snapshot$/, "");
  const known: Record<string, RetentionReason> = { last: "last", hourly: "hourly", daily: "daily", weekly: "weekly", monthly: "monthly", yearly: "yearly" };
  if (!known[rule]) throw new Error(`unknown restic reason ${match}`);
  return known[rule];
}

describe("retention equals restic's forget on restic's test vectors", () => {
  test("the fixture holds all 40 of restic's vectors, each run or skipped for a stated reason", () => {
    const all = [...vectors.cases, ...vectors.skipped].map((c) => Number(c.vector.replace("policy_keep_snapshots_", ""))).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(vectors.cases.length).toBe(25);
    expect(vectors.timezone).toBe("UTC");
  });

  for (const c of vectors.cases as Case[]) {
    test(`${c.vector} ${c.resticPolicy}`, () => {
      const decision = selectBackupsToKeep(candidates, c.rules, NOW, "UTC");
      const expected = c.keep.includes(newest) ? c.keep : [newest, ...c.keep];
      expect(decision.keep).toEqual(expected);
      expect(decision.keep.length + decision.remove.length).toBe(candidates.length);
      for (const id of c.keep) {
        const ours: RetentionReason[] = decision.reasons[id]!.filter((r) => r !== "newest");
        const theirs: RetentionReason[] = c.matches[id]!.map(ourReason);
        expect({ id, reasons: ours }).toEqual({ id, reasons: theirs });
      }
    });
  }

  test("vector 0 (no rule) is where the newest-backup floor shows: restic keeps nothing, snapdb the newest", () => {
    const empty = (vectors.cases as Case[]).find((c) => c.vector === "policy_keep_snapshots_0")!;
    expect(empty.keep).toEqual([]);
    expect(selectBackupsToKeep(candidates, empty.rules, NOW, "UTC").keep).toEqual([newest]);
  });
});
