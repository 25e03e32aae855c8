import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import { auditEvents, backupJobs, storageDestinations, walSegments } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { applyRetention } from "../../src/runner/apply-retention.ts";
import { segmentName } from "../../src/engines/wal-names.ts";
import { planPointInTime, recoveryWindowOf } from "../../src/runner/recovery-window.ts";
import { createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * The recovery window and the WAL a restore takes, from the rows the archiver and the base
 * backups write (inserted here as the runner would), over a real migrated store; and the
 * WAL half of a physical policy's retention, over the real managed disk.
 */
const ORG = "org_window";
const SEG = 16 * 1024 * 1024;
const T0 = Date.parse("2026-11-26T10:00:00.000Z");
let h: Harness;
let token: string;
let destinationId: string;

beforeAll(async () => {
  h = await createHarness();
  token = await h.token(ORG);
  destinationId = (await managedDestination(h, token)).id;
});
afterAll(() => h.close());

async function newSource() {
  return (await createSource(h, token, { engine: "postgres", host: "127.0.0.1", port: 5432, database: "app" })).id as string;
}

/** A succeeded base backup of `ds` needing segments start..stop, consistent at `stoppedAt`. */
async function baseBackup(ds: string, start: number, stop: number, stoppedAt: number, policyId: string | null = null, objectKey = `k/${newId("job")}`) {
  const id = newId("job");
  await h.store.db.insert(backupJobs).values({
    id,
    orgId: ORG,
    dataSourceId: ds,
    policyId,
    destinationId,
    trigger: "manual",
    status: "succeeded",
    queuedAt: stoppedAt - 1000,
    startedAt: stoppedAt - 1000,
    finishedAt: stoppedAt,
    objectKey,
    sha256: "0".repeat(64),
    format: { engine: "postgres", dump: "pg_basebackup_tar", compression: "zstd", encrypted: true },
    physical: {
      label: `snapdb ${id}`,
      slot: "s",
      timeline: 1,
      walSegmentSize: SEG,
      startLsn: "0/0",
      stopLsn: "0/0",
      startSegno: start,
      stopSegno: stop,
      startWalFile: segmentName(1, start, SEG),
      stopWalFile: segmentName(1, stop, SEG),
      startedAt: new Date(stoppedAt - 1000).toISOString(),
      stoppedAt: new Date(stoppedAt).toISOString(),
    },
  });
  return id;
}

/** An archived segment whose last transaction ended at `lastXactMs` (plus `extraUs` µs). */
async function segment(ds: string, segno: number, lastXactMs: number | null, extraUs = 0, objectKey = `w/${ds}/${segno}`) {
  await h.store.db.insert(walSegments).values({
    dataSourceId: ds,
    name: segmentName(1, segno, SEG),
    orgId: ORG,
    timeline: 1,
    segno,
    startLsn: "0/0",
    destinationId,
    objectKey,
    sizeBytes: SEG,
    storedBytes: 1,
    sha256: "0".repeat(64),
    format: { compression: "zstd", encrypted: true },
    lastXactAtUs: lastXactMs === null ? null : lastXactMs * 1000 + extraUs,
    archivedAt: T0,
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("the recovery window", () => {
  test("from the end of the base backup to the end of the last archived transaction, rounded up", async () => {
    const ds = await newSource();
    await baseBackup(ds, 2, 3, T0 + 1000);
    await segment(ds, 1, T0 - 5000);
    await segment(ds, 2, T0 + 500);
    await segment(ds, 3, T0 + 2000);
    await segment(ds, 4, T0 + 9000, 250);
    await segment(ds, 5, null);
    expect(await must(h, token, "GET", `/data-sources/${ds}/recovery-window`)).toEqual({ from: iso(T0 + 1000), to: iso(T0 + 9001) });
  });

  test("a base backup whose WAL is not all archived yet gives no window", async () => {
    const ds = await newSource();
    await baseBackup(ds, 2, 3, T0 + 1000);
    await segment(ds, 2, T0 + 500);
    expect(await recoveryWindowOf(h.store.db, ds)).toBeNull();
    expect(await must(h, token, "GET", `/data-sources/${ds}/recovery-window`)).toEqual({ from: null, to: null });
  });

  test("a gap ends the window; a base backup after the gap starts a new one", async () => {
    const ds = await newSource();
    await baseBackup(ds, 2, 2, T0 + 1000);
    await segment(ds, 2, T0 + 1500);
    await segment(ds, 3, T0 + 3000);
    // segment 4 is missing
    await segment(ds, 5, T0 + 6000);
    expect(await must(h, token, "GET", `/data-sources/${ds}/recovery-window`)).toEqual({ from: iso(T0 + 1000), to: iso(T0 + 3000) });
    await baseBackup(ds, 5, 6, T0 + 7000);
    await segment(ds, 6, T0 + 8000);
    expect(await must(h, token, "GET", `/data-sources/${ds}/recovery-window`)).toEqual({ from: iso(T0 + 7000), to: iso(T0 + 8000) });
  });

  test("older base backups reaching the same unbroken WAL push `from` back", async () => {
    const ds = await newSource();
    await baseBackup(ds, 1, 1, T0 + 100);
    await baseBackup(ds, 3, 3, T0 + 3100);
    for (let s = 1; s <= 4; s++) await segment(ds, s, T0 + s * 1000 + 500);
    const window = (await recoveryWindowOf(h.store.db, ds))!;
    expect({ from: iso(window.from), to: iso(window.to) }).toEqual({ from: iso(T0 + 100), to: iso(T0 + 4500) });
    // A target picks the newest base backup that ended before it, and the WAL from its start
    // through the first segment with a transaction after the target.
    const early = planPointInTime(window, T0 + 2000)!;
    expect(early.backup.info.startSegno).toBe(1);
    expect(early.segments.map((s) => s.segno)).toEqual([1, 2]);
    expect(early.untilEnd).toBe(false);
    const late = planPointInTime(window, T0 + 3200)!;
    expect(late.backup.info.startSegno).toBe(3);
    expect(late.segments.map((s) => s.segno)).toEqual([3]);
    // At `to`: everything archived is replayed, no target time.
    const end = planPointInTime(window, window.to)!;
    expect(end.untilEnd).toBe(true);
    expect(end.segments.map((s) => s.segno)).toEqual([3, 4]);
    expect(planPointInTime(window, window.from - 1)).toBeNull();
    expect(planPointInTime(window, window.to + 1)).toBeNull();
  });

  test("no transaction since the base backup: the window is the instant it ended", async () => {
    const ds = await newSource();
    await segment(ds, 7, T0 - 100);
    await baseBackup(ds, 7, 8, T0 + 5000);
    await segment(ds, 8, null);
    expect(await must(h, token, "GET", `/data-sources/${ds}/recovery-window`)).toEqual({ from: iso(T0 + 5000), to: iso(T0 + 5000) });
  });

  test("a deleted base backup file does not count", async () => {
    const ds = await newSource();
    const job = await baseBackup(ds, 2, 2, T0 + 1000);
    await segment(ds, 2, T0 + 2000);
    expect(await recoveryWindowOf(h.store.db, ds)).not.toBeNull();
    await h.store.db.update(backupJobs).set({ fileDeletedAt: T0 }).where(eq(backupJobs.id, job));
    expect(await recoveryWindowOf(h.store.db, ds)).toBeNull();
  });
});

describe("retention of a physical policy", () => {
  test("keeps the WAL its kept base backups need, and deletes the older WAL (rows and objects)", async () => {
    const ds = await newSource();
    const policy = await createPolicy(h, token, destinationId, { method: "physical", retention: { keepLast: 1 } });
    const destination = (await h.store.db.select().from(storageDestinations).where(eq(storageDestinations.id, destinationId)))[0]!;
    const driver = h.storage.driverFor(destination);
    const root = h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "";
    const put = async (key: string) => void (await driver.put(key, new Blob(["x"]).stream()));
    const keyOf = (segno: number) => h.storage.walObjectKeyFor(destination, { dataSourceId: ds, name: segmentName(1, segno, SEG), ext: "zst.age" });
    const oldKey = h.storage.objectKeyFor(destination, { dataSourceId: ds, jobId: newId("job"), ext: "tar.zst.age", at: new Date(T0) });
    const newKey = h.storage.objectKeyFor(destination, { dataSourceId: ds, jobId: newId("job"), ext: "tar.zst.age", at: new Date(T0 + 5000) });
    await put(oldKey);
    await put(newKey);
    const old = await baseBackup(ds, 2, 2, T0 + 1000, policy.id, oldKey);
    const kept = await baseBackup(ds, 5, 5, T0 + 5000, policy.id, newKey);
    for (let s = 1; s <= 7; s++) {
      await put(keyOf(s));
      await segment(ds, s, T0 + s * 1000, 0, keyOf(s));
    }
    const removed = await applyRetention(h.store.db, h.storage, silentLogger, { dataSourceId: ds, policyId: policy.id });
    expect(removed).toEqual([old]);
    const left = (await h.store.db.select({ segno: walSegments.segno }).from(walSegments).where(eq(walSegments.dataSourceId, ds))).map((r) => r.segno);
    expect(left.sort()).toEqual([5, 6, 7]);
    for (let s = 1; s <= 7; s++) expect({ s, stored: existsSync(join(root, keyOf(s))) }).toEqual({ s, stored: s >= 5 });
    expect(existsSync(join(root, newKey))).toBe(true);
    const pruned = await h.store.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.targetId, ds), eq(auditEvents.action, "wal_archive.pruned")));
    expect(pruned.map((e) => e.metadata)).toEqual([{ reason: "retention", segments: 4, first: segmentName(1, 1, SEG), last: segmentName(1, 4, SEG), keptFromSegno: 5 }]);
    void kept;
    // The window now starts at the kept base backup.
    expect(iso((await recoveryWindowOf(h.store.db, ds))!.from)).toBe(iso(T0 + 5000));
  });
});
