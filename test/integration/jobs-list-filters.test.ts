import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { backupJobs } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createPolicyVia, seedDataSource } from "../helpers/policies-seed.ts";

/**
 * `GET /backup-jobs` builds one prepared query per combination of filters and reuses it.
 * Every combination (and the cursor) is walked page by page here and compared with the same
 * filter applied to all rows in the test, so a query reused for the wrong combination, or a
 * placeholder bound to the wrong value, shows.
 */
let h: Harness;
let token: string;
const ORG = "org_filters";
const T0 = Date.parse("2026-03-01T00:00:00Z");
const HOUR = 3600_000;
type Row = { id: string; dataSourceId: string; policyId: string; status: string; trigger: string; queuedAt: number };
const rows: Row[] = [];
let sources: string[] = [];
let policies: string[] = [];

beforeAll(async () => {
  h = await createHarness();
  token = await h.token(ORG);
  sources = [await seedDataSource(h, ORG), await seedDataSource(h, ORG)];
  policies = [(await createPolicyVia(h, ORG)).id, (await createPolicyVia(h, ORG)).id];
  const statuses = ["queued", "running", "succeeded", "failed", "canceled"] as const;
  for (let i = 0; i < 60; i++) {
    const queuedAt = T0 + i * HOUR;
    const row = {
      id: newId("job", queuedAt),
      dataSourceId: sources[i % 2]!,
      policyId: policies[Math.floor(i / 2) % 2]!,
      status: statuses[i % 5]!,
      trigger: i % 3 ? "schedule" : "manual",
      queuedAt,
    } as const;
    await h.store.db.insert(backupJobs).values({ ...row, orgId: ORG });
    rows.push(row);
  }
  // Another org's jobs never show.
  const other = await seedDataSource(h, "org_elsewhere");
  await h.store.db.insert(backupJobs).values({ id: newId("job", T0 + HOUR), orgId: "org_elsewhere", dataSourceId: other, trigger: "manual", status: "queued", queuedAt: T0 + HOUR });
});
afterAll(() => h?.close());

async function walk(query: Record<string, string>): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const qs = new URLSearchParams({ ...query, limit: "7", ...(cursor ? { cursor } : {}) });
    const res = await h.call("GET", `/backup-jobs?${qs}`, { token });
    expect(res.status).toBe(200);
    ids.push(...res.body.items.map((j: { id: string }) => j.id));
    cursor = res.body.cursors.next;
    if (!cursor) return ids;
  }
  throw new Error("too many pages");
}

describe("GET /backup-jobs filters", () => {
  test("every combination of filters, across pages, matches the rows it names", async () => {
    const from = new Date(T0 + 10 * HOUR).toISOString();
    const to = new Date(T0 + 45 * HOUR).toISOString();
    const filters: [string, string, (r: Row) => boolean][] = [
      ["dataSourceId", sources[1]!, (r) => r.dataSourceId === sources[1]],
      ["policyId", policies[0]!, (r) => r.policyId === policies[0]],
      ["status", "failed", (r) => r.status === "failed"],
      ["trigger", "manual", (r) => r.trigger === "manual"],
      ["from", from, (r) => r.queuedAt >= T0 + 10 * HOUR],
      ["to", to, (r) => r.queuedAt < T0 + 45 * HOUR],
    ];
    // Twice over: the second pass runs on queries the first one prepared.
    for (let pass = 0; pass < 2; pass++) {
      for (let mask = 0; mask < 1 << filters.length; mask++) {
        const chosen = filters.filter((_, i) => mask & (1 << i));
        const query = Object.fromEntries(chosen.map(([k, v]) => [k, v]));
        const expected = rows
          .filter((r) => chosen.every(([, , keep]) => keep(r)))
          .map((r) => r.id)
          .sort()
          .reverse();
        expect({ query, ids: await walk(query) }).toEqual({ query, ids: expected });
      }
    }
  });

  test("the same filter with other values gives other rows (values are bound, not baked in)", async () => {
    for (const status of ["queued", "succeeded", "canceled"]) {
      expect(await walk({ status })).toEqual(
        rows
          .filter((r) => r.status === status)
          .map((r) => r.id)
          .sort()
          .reverse(),
      );
    }
    for (const dataSourceId of sources) {
      expect(await walk({ dataSourceId, status: "running" })).toEqual(
        rows
          .filter((r) => r.dataSourceId === dataSourceId && r.status === "running")
          .map((r) => r.id)
          .sort()
          .reverse(),
      );
    }
  });
});
