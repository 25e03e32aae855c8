import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { and, desc, eq } from "drizzle-orm";
import { auditEvents, backupJobs, walSegments } from "../../src/db/schema.ts";
import type { WalArchiver } from "../../src/runner/wal-archiver.ts";
import { harnessWalArchiver } from "../helpers/wal-archiver.ts";
import { MetricsRegistry } from "../../src/http/metrics.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startPostgres, startPostgresOn, type PgServer } from "../helpers/postgres.ts";
import { waitFor } from "../helpers/servers.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Point-in-time recovery end to end, on a real PostgreSQL 15: base backups with pg_basebackup,
 * WAL archived by pg_receivewal through the real archiver into the managed destination, a
 * restore to an instant between two commits, and PostgreSQL started (as the postgres user)
 * on the restored directory: every row committed up to the instant is there, none after.
 */
const ORG = "org_pitr";
const testStarted = Date.now();
const scratch = tempDir("snapdb-pitr");
const restoreRoot = join(scratch.path, "restores");
let pg: PgServer;
let h: Harness;
let token: string;
let archiver: WalArchiver;
let metrics: MetricsRegistry;
let source: any;
let policy: any;
let app: SQL;
const archiverLog: string[] = [];

/** Commits one row; `started` is before it began, `committed` after its commit returned (ms, rounded up). */
async function commitRow(id: number): Promise<{ started: number; committed: number }> {
  const started = Date.now();
  await app`INSERT INTO events (id, note) VALUES (${id}, ${`row ${id}`})`;
  return { started, committed: Date.now() + 1 };
}

/** An instant strictly between commit `i` and the start of commit `i + 1`. */
const between = (i: number) => Math.floor((commits[i]!.committed + commits[i + 1]!.started) / 2);

/** Finishes the server's current WAL segment (superuser only) so the archiver gets it. */
const switchWal = () => pg.psql("SELECT pg_switch_wal();");

async function waitForWindowTo(atLeast: number, ms = 60_000) {
  let last: any = null;
  await waitFor(
    `a recovery window reaching ${new Date(atLeast).toISOString()}`,
    async () => {
      last = (await h.call("GET", `/data-sources/${source.id}/recovery-window`, { token })).body;
      return last?.to !== null && Date.parse(last.to) >= atLeast;
    },
    ms,
  );
  return last as { from: string; to: string };
}

async function restoreTo(targetTime: number, dir: string) {
  const queued = await must(h, token, "POST", "/restores", { dataSourceId: source.id, targetTime: new Date(targetTime).toISOString(), targetDirectory: dir }, 202);
  return waitForStatus(h, token, `/restores/${queued.id}`, undefined, 120_000);
}

/** The ids a restored directory holds once PostgreSQL recovered and promoted it. */
async function idsIn(dir: string): Promise<number[]> {
  const server = await startPostgresOn(dir);
  if (process.env.PITR_DEBUG) console.log(server.log());
  try {
    // The source's archive_mode = on and archive_command came along in the backup; the restore turns archiving off.
    expect(server.psql("SHOW archive_mode;").trim()).toBe("off");
    return server.psql("SELECT id FROM events ORDER BY id;", "appdb").trim().split("\n").filter(Boolean).map(Number);
  } finally {
    await server.stop();
  }
}

beforeAll(async () => {
  // The postgres OS user must reach the restored directories.
  chmodSync(scratch.path, 0o755);
  mkdirSync(restoreRoot, { mode: 0o755 });
  pg = await startPostgres({ replication: true });
  // What production has: WAL archiving of its own. Pending on the source (archive_mode needs
  // a restart), but in its postgresql.auto.conf, so in every base backup of it.
  pg.psql(`ALTER SYSTEM SET archive_mode = 'on'; ALTER SYSTEM SET archive_command = 'cp %p /nonexistent/production-archive/%f';`);
  h = await createHarness({ SNAPDB_ALLOWED_RESTORE_ROOTS: restoreRoot });
  token = await h.token(ORG);
  metrics = new MetricsRegistry();
  archiver = harnessWalArchiver(h, { log: archiverLog, metrics });
  app = new SQL({ url: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`, max: 1 });
  await app`CREATE TABLE events (id int PRIMARY KEY, note text)`;
  const destination = await managedDestination(h, token);
  source = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
  policy = await createPolicy(h, token, destination.id, { method: "physical", fastCheckpoint: true });
  await attach(h, token, source.id, policy.id);
  await h.runner.start();
  archiver.start();
}, 60_000);

afterAll(async () => {
  if (process.env.PITR_DEBUG) console.log(archiverLog.join("\n"));
  await archiver?.stop();
  await app?.close();
  h?.close();
  await pg?.stop();
  scratch.cleanup();
});

const commits: { started: number; committed: number }[] = [];
let baseBackup: any;

describe("point-in-time recovery", () => {
  test("no base backup yet: the window is empty", async () => {
    const res = await h.call("GET", `/data-sources/${source.id}/recovery-window`, { token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ from: null, to: null });
  });

  test("a base backup records its WAL range, and the archive makes a window", async () => {
    commits[0] = await commitRow(0);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    expect(job.format).toMatchObject({ engine: "postgres", dump: "pg_basebackup_tar", compression: "zstd", encrypted: true });
    expect(job.objectKey).toEndWith(".tar.zst.age");
    expect(job.physical).toMatchObject({ timeline: 1, label: `snapdb ${job.id}` });
    expect(job.physical.startLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    baseBackup = job;
    for (let i = 1; i <= 6; i++) {
      commits[i] = await commitRow(i);
      await Bun.sleep(40);
    }
    if (process.env.PITR_DEBUG) console.log("commits", commits);
    switchWal();
    const window = await waitForWindowTo(commits[6]!.started);
    expect(Date.parse(window.from)).toBe(Date.parse(job.physical.stoppedAt));
    // Every archived object is under the source's wal/ prefix, compressed and encrypted.
    const rows = await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id));
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.objectKey).toMatch(new RegExp(`/${source.id}/wal/${r.name}\\.zst\\.age$`));
    // The spool keeps no finished segment once it is archived, only the partial one.
    const spool = readdirSync(join(h.dataDir, "wal-spool", source.id));
    expect(spool.filter((n) => !n.endsWith(".partial"))).toEqual([]);
  }, 120_000);

  test("a restore to an instant between two commits has every row up to it and none after", async () => {
    const target = between(3);
    const dir = join(restoreRoot, "between");
    const restore = await restoreTo(target, dir);
    expect(restore).toMatchObject({ status: "succeeded", targetDirectory: dir, targetTime: new Date(target).toISOString(), error: null });
    expect(existsSync(join(dir, "recovery.signal"))).toBe(true);
    const conf = readFileSync(join(dir, "postgresql.auto.conf"), "utf8");
    expect(conf).toContain("restore_command = 'cp pg_wal_archive/%f %p'");
    expect(conf).toContain(`recovery_target_time = '${new Date(target).toISOString().replace("T", " ").replace("Z", "")}+00'`);
    expect(conf).toContain("recovery_target_action = 'promote'");
    // Appended after the source's own settings (the last line of a setting wins).
    expect(conf.indexOf("archive_mode = 'off'")).toBeGreaterThan(conf.lastIndexOf("archive_mode = 'on'"));
    // The job's start is the backup's own: its backup_label's START WAL LOCATION, as restored.
    const label = readFileSync(join(dir, "backup_label"), "utf8");
    const startLine = /^START WAL LOCATION: (\S+) \(file ([0-9A-F]{24})\)$/m.exec(label)!;
    expect(baseBackup.physical).toMatchObject({
      startLsn: startLine[1],
      startWalFile: startLine[2],
      checkpointLsn: /^CHECKPOINT LOCATION: (\S+)$/m.exec(label)![1],
      backupLabel: label,
    });
    expect(label).toContain(`LABEL: snapdb ${baseBackup.id}\n`);
    expect(await idsIn(dir)).toEqual([0, 1, 2, 3]);
  }, 180_000);

  test("a restore to the window's end replays all of the archive, without a target, and is promoted", async () => {
    const window = await waitForWindowTo(commits[6]!.started);
    const dir = join(restoreRoot, "at-end");
    const restore = await restoreTo(Date.parse(window.to), dir);
    expect(restore).toMatchObject({ status: "succeeded", error: null });
    const conf = readFileSync(join(dir, "postgresql.auto.conf"), "utf8");
    // PostgreSQL 13+ would refuse a target time it never reaches ("recovery ended before configured recovery target was reached").
    expect(conf).not.toContain("recovery_target");
    expect(conf).toContain("is at or after the last archived transaction: all of the archived WAL is replayed");
    expect(await idsIn(dir)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  }, 180_000);

  test("a target outside the window is 400 and the message gives the window", async () => {
    const window = (await h.call("GET", `/data-sources/${source.id}/recovery-window`, { token })).body;
    for (const at of [Date.parse(window.from) - 1, Date.parse(window.to) + 60_000]) {
      const res = await h.call("POST", "/restores", {
        token,
        body: { dataSourceId: source.id, targetTime: new Date(at).toISOString(), targetDirectory: join(restoreRoot, "never") },
      });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("INVALID_INPUT");
      expect(res.body.details[0].path).toBe("/targetTime");
      expect(res.body.message).toContain(`the recovery window is ${window.from} to ${window.to}`);
    }
    expect(existsSync(join(restoreRoot, "never"))).toBe(false);
  });

  test("the target directory must be inside an allowed root and empty", async () => {
    const window = (await h.call("GET", `/data-sources/${source.id}/recovery-window`, { token })).body;
    const body = (targetDirectory: string) => ({ token, body: { dataSourceId: source.id, targetTime: window.to, targetDirectory } });
    const outside = await h.call("POST", "/restores", body(join(scratch.path, "elsewhere")));
    expect(outside.status).toBe(400);
    expect(outside.body.details[0].path).toBe("/targetDirectory");
    const sneaky = await h.call("POST", "/restores", body(`${restoreRoot}/../elsewhere`));
    expect(sneaky.status).toBe(400);
    const full = join(restoreRoot, "full");
    mkdirSync(full);
    writeFileSync(join(full, "keep.txt"), "mine");
    const conflict = await h.call("POST", "/restores", body(full));
    expect(conflict.status).toBe(409);
    expect(readFileSync(join(full, "keep.txt"), "utf8")).toBe("mine");
  });

  test("pg_receivewal killed mid-stream: restarted, no WAL lost (the slot kept it), no gap", async () => {
    const receiver = archiver.receiverOf(source.id)!;
    const before = receiver.state.restarts;
    const pid = receiver.state.pid!;
    expect(pid).toBeGreaterThan(0);
    // Rows committed into the segment pg_receivewal is writing when it dies.
    commits[7] = await commitRow(7);
    process.kill(pid, "SIGKILL");
    // While it is down (the restart waits a second): more commits, finished segments and a
    // checkpoint, which recycles every segment no slot holds.
    for (let i = 8; i <= 10; i++) {
      commits[i] = await commitRow(i);
      await Bun.sleep(40);
      switchWal();
    }
    pg.psql("CHECKPOINT;");
    expect(receiver.state.receiving).toBe(false);
    await waitFor("pg_receivewal restarted", () => receiver.state.restarts > before && receiver.state.receiving, 30_000);
    commits[11] = await commitRow(11);
    switchWal();
    await waitForWindowTo(commits[11]!.started);
    const gaps = await h.store.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, ORG), eq(auditEvents.action, "wal_archive.gap")));
    expect(gaps).toEqual([]);
    const segnos = (await h.store.db.select({ segno: walSegments.segno }).from(walSegments).where(eq(walSegments.dataSourceId, source.id))).map((r) => r.segno!).sort((a, b) => a - b);
    expect(segnos).toEqual(segnos.map((_, i) => segnos[0]! + i));
    const target = between(9);
    const dir = join(restoreRoot, "after-kill");
    expect((await restoreTo(target, dir)).status).toBe("succeeded");
    expect(await idsIn(dir)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }, 180_000);

  test("a changed byte in an archived segment fails the restore, and what it wrote is removed", async () => {
    const managed = h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "";
    const window = (await h.call("GET", `/data-sources/${source.id}/recovery-window`, { token })).body;
    // The newest segment is one every restore to `to` needs.
    const [newest] = await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id)).orderBy(desc(walSegments.segno)).limit(1);
    const file = join(managed, newest!.objectKey);
    const original = readFileSync(file);
    const changed = Buffer.from(original);
    const at = Math.floor(changed.length / 2);
    changed.writeUInt8(changed.readUInt8(at) ^ 0x01, at);
    writeFileSync(file, changed);
    try {
      const dir = join(restoreRoot, "tampered");
      const restore = await restoreTo(Date.parse(window.to), dir);
      expect(restore.status).toBe("failed");
      expect(["DECRYPT_FAILED", "CHECKSUM_MISMATCH"]).toContain(restore.error.code);
      expect(restore.error.message).toContain(`the directory ${dir} that the restore had created was removed`);
      expect(existsSync(dir)).toBe(false);
    } finally {
      writeFileSync(file, original);
    }
  }, 60_000);

  test("metrics: receiver up, slot retained bytes, last archive time and segment, lag in bytes and seconds", async () => {
    await Bun.sleep(400);
    const text = await metrics.render();
    expect(text).toContain(`snapdb_wal_receiver_up{data_source_id="${source.id}"} 1`);
    expect(text).toMatch(new RegExp(`snapdb_wal_slot_retained_bytes\\{data_source_id="${source.id}"\\} \\d+`));
    expect(text).toMatch(new RegExp(`snapdb_wal_last_archived_timestamp_seconds\\{data_source_id="${source.id}"\\} \\d+`));
    expect(text).toMatch(new RegExp(`snapdb_wal_archive_lag_bytes\\{data_source_id="${source.id}"\\} \\d+`));
    // The newest archived segment, by number: the one the store recorded last.
    const [newest] = await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id)).orderBy(desc(walSegments.segno)).limit(1);
    expect(text).toContain(`snapdb_wal_last_archived_segment{data_source_id="${source.id}"} ${newest!.segno}\n`);
    const lagSeconds = new RegExp(`^snapdb_wal_archive_lag_seconds\\{data_source_id="${source.id}"\\} ([0-9.e+-]+)$`, "m").exec(text);
    expect(lagSeconds).not.toBeNull();
    // Caught up to within the current, unfinished segment: not older than this test file.
    expect(Number(lagSeconds![1])).toBeGreaterThanOrEqual(0);
    expect(Number(lagSeconds![1])).toBeLessThan((Date.now() - testStarted) / 1000 + 1);
    // initdb's default: no cap on what the slot may hold, said as -1.
    expect(text).toContain(`snapdb_wal_slot_keep_limit_bytes{data_source_id="${source.id}"} -1`);
  });

  test("verify warns about max_slot_wal_keep_size = -1 and a role without REPLICATION; quiet once fixed", async () => {
    const verify = async () => (await must(h, token, "POST", `/data-sources/${source.id}/verify`)) as { ok: boolean; warnings?: string[] };
    const first = await verify();
    expect(first.ok).toBe(true);
    expect(first.warnings).toEqual([expect.stringContaining("max_slot_wal_keep_size is -1 (unlimited)")]);
    pg.psql(`ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'; SELECT pg_reload_conf();`);
    await Bun.sleep(200);
    expect((await verify()).warnings).toBeUndefined();
    pg.psql(`ALTER ROLE ${pg.user} NOREPLICATION;`);
    try {
      expect((await verify()).warnings).toEqual([expect.stringContaining("lacks the REPLICATION attribute")]);
    } finally {
      pg.psql(`ALTER ROLE ${pg.user} REPLICATION;`);
    }
    await waitFor("the archiver's view of the new limit", async () => (await metrics.render()).includes(`snapdb_wal_slot_keep_limit_bytes{data_source_id="${source.id}"} 1073741824`), 10_000);
  });

  test("a base backup is not a dump: restoring it by backupJobId is refused", async () => {
    const job = (await h.store.db.select().from(backupJobs).where(eq(backupJobs.dataSourceId, source.id)))[0]!;
    const res = await h.call("POST", "/restores", { token, body: { backupJobId: job.id } });
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe("/backupJobId");
  });

  test("detached: archiving stops, the slot is dropped (the server keeps no WAL for it), the spool goes", async () => {
    const slot = archiver.receiverOf(source.id)!.slot;
    const slots = () => pg.psql(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${slot}';`).trim();
    expect(slots()).toBe("1");
    const [att] = (await must(h, token, "GET", `/attachments?dataSourceId=${source.id}`)).items;
    await must(h, token, "DELETE", `/attachments/${att.id}`, undefined, 204);
    const stopped = () =>
      h.store.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, ORG), eq(auditEvents.action, "wal_archive.stopped")));
    // The audit event is written once the archiver is done with the source: slot dropped, spool removed.
    await waitFor("the archiver to let go of the source", async () => archiver.receiverOf(source.id) === undefined && (await stopped()).length > 0, 30_000);
    expect(slots()).toBe("0");
    expect(existsSync(join(h.dataDir, "wal-spool", source.id))).toBe(false);
    expect((await stopped()).map((e) => e.metadata)).toEqual([{ slot, slotDropped: true }]);
  }, 60_000);

  test("deleting the data source deletes its archived WAL too", async () => {
    const rows = await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id));
    expect(rows.length).toBeGreaterThan(0);
    const managed = h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "";
    expect(rows.every((r) => existsSync(join(managed, r.objectKey)))).toBe(true);
    await must(h, token, "DELETE", `/data-sources/${source.id}?cascade=true`, undefined, 204);
    expect(await h.store.db.select().from(walSegments).where(eq(walSegments.dataSourceId, source.id))).toEqual([]);
    expect(rows.filter((r) => existsSync(join(managed, r.objectKey)))).toEqual([]);
  });
});
