import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { findJob, listJobs } from "../../src/modules/jobs/service.ts";
import type { ServiceContext } from "../../src/lib/context.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-prepared");
afterAll(() => dir.cleanup());

const openFilesUnder = (path: string) =>
  readdirSync("/proc/self/fd")
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return "";
      }
    })
    .filter((target) => target.startsWith(path));

describe("prepared queries", () => {
  test("reused across calls with any filters; closing the store finalizes them and releases its files", async () => {
    const file = join(dir.path, "store.db");
    const store = openStore(file);
    migrate(store.sqlite);
    const ctx = { db: store.db, orgId: "org_a" } as ServiceContext;
    for (const filters of [{}, { status: "queued" as const }, { from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" }, {}]) {
      expect(await listJobs(ctx, filters, { limit: 10, beforeId: null })).toEqual({ items: [], hasMore: false });
    }
    expect(async () => findJob(store.db, "org_a", "job_x")).toThrow("backup job");
    expect(openFilesUnder(dir.path).length).toBeGreaterThan(0);
    store.close();
    expect(openFilesUnder(dir.path)).toEqual([]);
  });
});
