/**
 * A gap in the WAL archive, made the way it happens in production: archiving is paused (the
 * physical attachment disabled) while the source keeps writing, and the operator's
 * `max_slot_wal_keep_size` (32 MB here) makes PostgreSQL invalidate snapdb's slot at the
 * next checkpoint instead of keeping WAL without bound. Archiving resumed, snapdb says what
 * happened once each (the slot reset, the gap), counts it, ends the recovery window before
 * the pause, and opens a new window with the next base backup.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { and, asc, eq } from "drizzle-orm";
import { SQL } from "bun";
import { auditEvents, walSegments } from "../../src/db/schema.ts";
import type { WalArchiver } from "../../src/runner/wal-archiver.ts";
import { harnessWalArchiver } from "../helpers/wal-archiver.ts";
import { MetricsRegistry } from "../../src/http/metrics.ts";
import { parseSegmentName, segmentName } from "../../src/engines/wal-names.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { waitFor } from "../helpers/servers.ts";

const ORG = "org_pitr_gap";
const SEGMENT = 16 * 1024 * 1024;
let pg: PgServer;
let h: Harness;
let token: string;
let archiver: WalArchiver;
let metrics: MetricsRegistry;
let app: SQL;
const archiverLog: string[] = [];

const auditOf = (action: string) =>
  h.store.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.orgId, ORG), eq(auditEvents.action, action)))
    .orderBy(asc(auditEvents.id));
const windowOf = async (id: string): Promise<{ from: string | null; to: string | null }> => must(h, token, "GET", `/data-sources/${id}/recovery-window`);

beforeAll(async () => {
  pg = await startPostgres({ replication: true });
  pg.psql("ALTER SYSTEM SET max_slot_wal_keep_size = '32MB'; SELECT pg_reload_conf();");
  h = await createHarness();
  token = await h.token(ORG);
  metrics = new MetricsRegistry();
  archiver = harnessWalArchiver(h, { log: archiverLog, metrics });
  app = new SQL({ url: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`, max: 1 });
  await app`CREATE TABLE events (id int PRIMARY KEY, pad text)`;
  await h.runner.start();
  archiver.start();
}, 60_000);

afterAll(async () => {
  if (process.env.PITR_DEBUG) console.log(archiverLog.join("\n"));
  await archiver?.stop();
  await app?.close();
  h?.close();
  await pg?.stop();
});

test("the slot invalidated by max_slot_wal_keep_size while archiving is paused: one slot reset, one gap, the window ends before the pause", async () => {
  const destination = await managedDestination(h, token);
  const source = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
  const policy = await createPolicy(h, token, destination.id, { method: "physical", fastCheckpoint: true });
  const attachment = await attach(h, token, source.id, policy.id);
  expect((await backupNow(h, token, source.id)).status).toBe("succeeded");
  await app`INSERT INTO events VALUES (1, 'before the pause')`;
  pg.psql("SELECT pg_switch_wal();");
  await waitFor("a window", async () => (await windowOf(source.id)).to !== null, 60_000);
  const before = await windowOf(source.id);
  const slot = archiver.receiverOf(source.id)!.slot;
  const archivedBefore = (await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id))).map((s) => s.name).sort();

  // Paused: the slot stays and holds WAL, up to the operator's cap.
  const pausedAt = Date.now();
  await must(h, token, "PATCH", `/attachments/${attachment.id}`, { enabled: false });
  await waitFor("archiving paused", () => archiver.receiverOf(source.id) === undefined, 10_000);
  for (let i = 0; i < 6; i++) {
    await app`INSERT INTO events VALUES (${100 + i}, ${"x".repeat(1000)})`;
    pg.psql("SELECT pg_switch_wal();");
  }
  pg.psql("CHECKPOINT;");
  // The cap took effect: 96 MB past the slot, PostgreSQL gave up the slot's WAL rather than keep it.
  expect(pg.psql(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = '${slot}';`).trim()).toBe("lost");

  await must(h, token, "PATCH", `/attachments/${attachment.id}`, { enabled: true });
  await app`INSERT INTO events VALUES (200, 'after')`;
  pg.psql("SELECT pg_switch_wal();");
  await waitFor("the gap recorded", async () => (await auditOf("wal_archive.gap")).length > 0, 60_000).catch((err) => {
    throw new Error(`${err.message}\n${archiverLog.slice(-30).join("\n")}`);
  });
  await app`INSERT INTO events VALUES (201, 'after')`;
  pg.psql("SELECT pg_switch_wal();");
  await waitFor(
    "archiving past the gap",
    async () => {
      const names = (await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id))).length;
      return names >= archivedBefore.length + 2;
    },
    60_000,
  );

  // The slot came back reserving WAL again, said once: in the audit log and the daemon's log.
  const resets = await auditOf("wal_archive.slot_reset");
  expect(resets.map((e) => ({ targetId: e.targetId, slot: (e.metadata as any).slot }))).toEqual([{ targetId: source.id, slot }]);
  expect((resets[0]!.metadata as any).reason).toContain("lost");
  expect(archiverLog.some((l) => l.includes("replication slot") && l.includes(source.id) && /"level":"error"/.test(l))).toBe(true);
  expect(pg.psql(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = '${slot}';`).trim()).toBe("reserved");

  // One gap: from the last segment received before the pause to the first after it, the
  // six switched segments (and more) in between.
  const gaps = await auditOf("wal_archive.gap");
  expect(gaps).toHaveLength(1);
  const gap = gaps[0]!.metadata as { after: string; before: string; missingSegments: number; firstMissing: string };
  const segno = (name: string) => parseSegmentName(name, SEGMENT)!.segno;
  expect(gap.after >= archivedBefore.at(-1)!).toBe(true);
  expect(gap.missingSegments).toBeGreaterThanOrEqual(6);
  expect(gap.firstMissing).toBe(segmentName(1, segno(gap.after) + 1, SEGMENT));
  expect(segno(gap.before) - segno(gap.after) - 1).toBe(gap.missingSegments);
  const archived = new Set((await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id))).map((s) => s.segno));
  expect([archived.has(segno(gap.after)), archived.has(segno(gap.firstMissing)), archived.has(segno(gap.before) - 1), archived.has(segno(gap.before))]).toEqual([true, false, false, true]);
  expect(await metrics.render()).toContain(`snapdb_wal_gaps_total{data_source_id="${source.id}"} 1`);

  // The window stops at the gap: it ends before the pause, from the same base backup.
  const atGap = await windowOf(source.id);
  expect(atGap.from).toBe(before.from);
  expect(Date.parse(atGap.to!)).toBeLessThan(pausedAt);

  // A base backup after the gap opens a new window.
  expect((await backupNow(h, token, source.id)).status).toBe("succeeded");
  await app`INSERT INTO events VALUES (300, 'new window')`;
  pg.psql("SELECT pg_switch_wal();");
  await waitFor(
    "a new window",
    async () => {
      const w = await windowOf(source.id);
      return w.from !== before.from && Date.parse(w.from!) > pausedAt && Date.parse(w.to!) >= Date.parse(w.from!);
    },
    60_000,
  );
  expect(await auditOf("wal_archive.gap")).toHaveLength(1);
  expect(await auditOf("wal_archive.slot_reset")).toHaveLength(1);
}, 240_000);
