import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { backupJobs } from "../../src/db/schema.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { sweepRetention } from "../../src/runner/apply-retention.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { tempDir } from "../helpers/tmp.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";

/** Retention through the real runner, store and managed disk: what the rules delete, and what they never do. */
let h: Harness;
let token: string;
let managedId: string;
const scratch = tempDir("snapdb-retention");
const DAY = 86_400_000;

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path });
  await h.runner.start();
  token = await h.token("org_retention");
  managedId = (await managedDestination(h, token)).id;
});

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  scratch.cleanup();
});

const managedFile = (key: string) => join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", key);

/** `count` successful backups of a fresh source under a policy that keeps them all, oldest first. */
async function backups(count: number, timezone = "UTC") {
  const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(scratch.path) });
  const policy = await createPolicy(h, token, managedId, { timezone, retention: { keepLast: 100 } });
  await attach(h, token, source.id, policy.id);
  const jobs = [];
  for (let i = 0; i < count; i++) jobs.push(await backupNow(h, token, source.id));
  expect(jobs.map((j) => j.status)).toEqual(Array(count).fill("succeeded"));
  return { policy, jobs };
}

/** Moves a backup's start time, which is what names its hour, day, … for retention. */
const startedAt = async (jobId: string, at: number) => await h.store.db.update(backupJobs).set({ startedAt: at }).where(eq(backupJobs.id, jobId));

/** Which of the jobs still have their file, after the sweep. */
async function stillStored(jobs: { id: string; objectKey: string }[]): Promise<string[]> {
  const kept: string[] = [];
  for (const j of jobs) {
    const now = await must(h, token, "GET", `/backup-jobs/${j.id}`);
    expect(existsSync(managedFile(j.objectKey))).toBe(now.fileDeletedAt === null);
    if (now.fileDeletedAt === null) kept.push(j.id);
  }
  return kept;
}

describe("retention in the runner", () => {
  test("maxAgeDays counts from the newest backup, not from now: a source whose backups stopped is not eaten away", async () => {
    const { policy, jobs } = await backups(3);
    await must(h, token, "PATCH", `/backup-policies/${policy.id}`, { retention: { keepLast: 0, maxAgeDays: 2 } });
    // The source's last backup was two months ago; the others one and three days before it.
    const newest = Date.now() - 60 * DAY;
    await startedAt(jobs[2]!.id, newest);
    await startedAt(jobs[1]!.id, newest - 1 * DAY);
    await startedAt(jobs[0]!.id, newest - 3 * DAY);
    await sweepRetention(h.store.db, h.storage, silentLogger);
    expect(await stillStored(jobs)).toEqual([jobs[1]!.id, jobs[2]!.id]);
    const actions = (await must(h, token, "GET", `/audit-log?targetId=${jobs[0]!.id}`)).items.map((e: any) => e.action);
    expect(actions).toContain("backup_file.deleted");
    // Sweeping again changes nothing.
    await sweepRetention(h.store.db, h.storage, silentLogger);
    expect(await stillStored(jobs)).toEqual([jobs[1]!.id, jobs[2]!.id]);
  });

  test("keepHourly -1 in the policy's zone: the newest of each hour, and the oldest backup while the rule has count left", async () => {
    // Kolkata is +05:30: 04:35Z, 04:50Z and 05:20Z are 10:05, 10:20 and 10:50 there, one hour.
    const { policy, jobs } = await backups(3, "Asia/Kolkata");
    await must(h, token, "PATCH", `/backup-policies/${policy.id}`, { retention: { keepLast: 0, keepHourly: -1 } });
    await startedAt(jobs[0]!.id, Date.parse("2026-01-10T04:35:00Z"));
    await startedAt(jobs[1]!.id, Date.parse("2026-01-10T04:50:00Z"));
    await startedAt(jobs[2]!.id, Date.parse("2026-01-10T05:20:00Z"));
    await sweepRetention(h.store.db, h.storage, silentLogger);
    expect(await stillStored(jobs)).toEqual([jobs[0]!.id, jobs[2]!.id]);
  });

  test("a backup stamped in the future is kept and does not drag the maxAgeDays window along", async () => {
    const { policy, jobs } = await backups(2);
    await must(h, token, "PATCH", `/backup-policies/${policy.id}`, { retention: { keepLast: 0, maxAgeDays: 1 } });
    // The newest is stamped in the future (a clock that ran ahead); the window reads from the older one.
    await startedAt(jobs[1]!.id, Date.now() + 30 * DAY);
    await startedAt(jobs[0]!.id, Date.now() - 10 * DAY);
    await sweepRetention(h.store.db, h.storage, silentLogger);
    expect(await stillStored(jobs)).toEqual([jobs[0]!.id, jobs[1]!.id]);
  });
});
