import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Database } from "bun:sqlite";
import { eq } from "drizzle-orm";
import { orgIdentity } from "../../src/crypto/org-keys.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { backupJobs, backupPolicies, storageDestinations } from "../../src/db/schema.ts";
import { recoverInterruptedJobs } from "../../src/runner/recovery.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { tempDir } from "../helpers/tmp.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";

let h: Harness;
let pg: PgServer;
let maria: MariaDbServer;
let s3: S3Server;
let token: string;
let managedId: string;
const scratch = tempDir("snapdb-runner");
const ORG = "org_runner";

const managedFile = (key: string) => join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", key);
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function run(argv: string[], stdin?: Uint8Array): Buffer {
  const r = Bun.spawnSync(argv, { stdin: stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  [pg, maria, s3] = await Promise.all([startPostgres(), startMariaDb(), startS3rver(["backups"])]);
  h = await createHarness({ SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path });
  await h.runner.start();
  token = await h.token(ORG);
  managedId = (await managedDestination(h, token)).id;
  pg.psql(
    `SET ROLE ${pg.user};
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, note text, born date, balance numeric(12,2), meta jsonb);
    INSERT INTO customers (name, note, born, balance, meta)
      SELECT 'name ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'ünïcødé ✓ ' || g END, date '2000-01-01' + g, g * 1.5, jsonb_build_object('g', g)
      FROM generate_series(1, 3000) g;
    CREATE INDEX customers_name ON customers (name);
    CREATE VIEW rich AS SELECT * FROM customers WHERE balance > 1000;`,
    pg.database,
  );
  maria.sql(
    `CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(100), body BLOB);
    INSERT INTO items (label, body) VALUES ('a', UNHEX('00FF10')), ('b', NULL), ('ç', 'text');`,
    maria.database,
  );
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([pg?.stop(), maria?.stop(), s3?.close()]);
  scratch.cleanup();
});

const pgSource = (password = pg.password) => createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password });

describe("backup runner", () => {
  test("PostgreSQL → managed local disk: pg custom dump, zstd, age; restorable by hand", async () => {
    const source = await pgSource();
    const policy = await createPolicy(h, token, managedId);
    await attach(h, token, source.id, policy.id);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    expect(job.error).toBeNull();
    expect(job.format).toEqual({ engine: "postgres", dump: "pg_custom", compression: "zstd", encrypted: true, ext: "dump.zst.age" });
    expect(job.objectKey).toMatch(new RegExp(`^${ORG}/${source.id}/\\d{4}/\\d{2}/\\d{2}/${job.id}\\.dump\\.zst\\.age$`));
    expect(job.sizeBytes).toBeGreaterThan(50_000);
    expect(job.storedBytes).toBeLessThan(job.sizeBytes);
    expect(job.progress).toEqual({ bytesIn: job.sizeBytes, bytesStored: job.storedBytes });
    const stored = readFileSync(managedFile(job.objectKey));
    expect(stored.length).toBe(job.storedBytes);
    expect(sha256(stored)).toBe(job.sha256);

    // The README's manual restore: age -d -i key | zstd -d | pg_restore.
    const keyFile = join(scratch.path, "org.key");
    writeFileSync(keyFile, `${await orgIdentity(h.store.db, new SecretBox(h.master), ORG)}\n`, { mode: 0o600 });
    const dump = run(["zstd", "-d", "-c"], run(["age", "-d", "-i", keyFile], stored));
    expect(dump.length).toBe(job.sizeBytes);
    const listing = run([join(pg.binDir, "pg_restore"), "--list"], dump).toString();
    expect(listing).toContain("TABLE public customers");
    expect(listing).toContain("VIEW public rich");
    expect(listing).toContain("INDEX public customers_name");
    // …and into a fresh database, with no snapdb code in the path: the data is all there.
    pg.psql(`CREATE DATABASE by_hand OWNER ${pg.user}`);
    const restore = Bun.spawnSync([join(pg.binDir, "pg_restore"), "--no-owner", "--exit-on-error", `--host=${pg.host}`, `--port=${pg.port}`, `--username=${pg.user}`, "--dbname=by_hand"], {
      stdin: dump,
      env: { PATH: process.env.PATH!, PGPASSWORD: pg.password },
      stderr: "pipe",
    });
    expect(restore.stderr.toString()).toBe("");
    expect(restore.exitCode).toBe(0);
    const digest = (db: string) =>
      pg.psql(`SELECT count(*), sum(balance), md5(string_agg(name || coalesce(note, '∅') || born || meta::text, ',' ORDER BY id)) FROM customers; SELECT count(*) FROM rich;`, db);
    expect(digest("by_hand")).toBe(digest(pg.database));

    const verify = await must(h, token, "POST", `/backup-jobs/${job.id}/verify`);
    expect(verify).toEqual({ ok: true, sizeBytes: job.sizeBytes, storedBytes: job.storedBytes, sha256: job.sha256 });

    const link = await must(h, token, "POST", `/backup-jobs/${job.id}/download-link`, { expiresInSeconds: 120 });
    const download = await h.app.handle(new Request(link.url));
    expect(download.status).toBe(200);
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(job.sha256);

    const actions = (await must(h, token, "GET", `/audit-log?targetId=${job.id}`)).items.map((e: any) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["backup_job.queued", "backup_job.started", "backup_job.completed", "backup_job.verified"]));
  });

  test("PostgreSQL → local, no compression, no encryption: the dump tool writes the file itself", async () => {
    const source = await pgSource();
    const policy = await createPolicy(h, token, managedId, { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } });
    await attach(h, token, source.id, policy.id);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    expect(job.format.ext).toBe("dump");
    const stored = readFileSync(managedFile(job.objectKey));
    expect(job.sizeBytes).toBe(stored.length);
    expect(job.storedBytes).toBe(stored.length);
    expect(job.progress).toEqual({ bytesIn: stored.length, bytesStored: stored.length });
    expect(sha256(stored)).toBe(job.sha256);
    expect(run([join(pg.binDir, "pg_restore"), "--list"], stored).toString()).toContain("TABLE public customers");
    const succeeded = h.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === "backup succeeded" && l.jobId === job.id);
    expect(succeeded?.pipeline).toBe("tools-to-file");
  });

  test("MariaDB → bring-your-own S3 (s3rver), gzip, unencrypted", async () => {
    const dst = await must(
      h,
      token,
      "POST",
      "/storage-destinations",
      {
        kind: "s3",
        name: "byo",
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: "backups",
        prefix: "team-a",
        forcePathStyle: true,
        auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      },
      201,
    );
    const source = await createSource(h, token, { engine: "mariadb", host: maria.host, port: maria.port, database: maria.database }, { username: maria.user, password: maria.password });
    const policy = await createPolicy(h, token, dst.id, { compression: { algorithm: "gzip", level: 6 }, encryption: { enabled: false, recipients: [] } });
    await attach(h, token, source.id, policy.id);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    expect(job.objectKey).toStartWith(`team-a/${ORG}/${source.id}/`);
    expect(job.objectKey).toEndWith(".sql.gz");
    const row = (await h.store.db.select().from(storageDestinations).where(eq(storageDestinations.id, dst.id)))[0]!;
    const object = await h.storage.driverFor(row).get(job.objectKey);
    const bytes = new Uint8Array(await new Response(object.body).arrayBuffer());
    expect(sha256(bytes)).toBe(job.sha256);
    const sqlText = run(["gzip", "-d", "-c"], bytes).toString();
    expect(sqlText).toContain("CREATE TABLE `items`");
    expect(sqlText).toContain("INSERT INTO `items`");
    expect(sqlText).not.toContain("CREATE DATABASE");
    expect((await must(h, token, "POST", `/backup-jobs/${job.id}/verify`)).ok).toBe(true);
  });

  test("SQLite: a consistent snapshot while a writer keeps writing", async () => {
    const file = join(scratch.path, "live.db");
    const live = new Database(file);
    live.run("PRAGMA journal_mode = WAL");
    live.run("CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT)");
    live.transaction(() => {
      for (let i = 0; i < 2000; i++) live.run("INSERT INTO events (payload) VALUES (?)", [`event ${i} ${"x".repeat(100)}`]);
    })();
    let writing = true;
    const writer = (async () => {
      while (writing) {
        live.run("INSERT INTO events (payload) VALUES ('late')");
        await Bun.sleep(1);
      }
    })();
    const source = await createSource(h, token, { engine: "sqlite", path: file });
    const policy = await createPolicy(h, token, managedId, { encryption: { enabled: false, recipients: [] } });
    await attach(h, token, source.id, policy.id);
    const job = await backupNow(h, token, source.id);
    writing = false;
    await writer;
    live.close();
    expect(job.status).toBe("succeeded");
    const restored = join(scratch.path, "restored.db");
    writeFileSync(restored, run(["zstd", "-d", "-c"], readFileSync(managedFile(job.objectKey))));
    const copy = new Database(restored, { readonly: true });
    expect((copy.query("PRAGMA integrity_check").get() as any).integrity_check).toBe("ok");
    const count = (copy.query("SELECT count(*) AS n FROM events").get() as any).n;
    expect(count).toBeGreaterThanOrEqual(2000);
    copy.close();
    expect(readdirTmp()).toEqual([]);
  });

  test("a dump that fails (wrong password) fails the job with DUMP_FAILED and leaves no file", async () => {
    const source = await pgSource("wrong-password");
    const policy = await createPolicy(h, token, managedId);
    await attach(h, token, source.id, policy.id);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("failed");
    expect(job.error.code).toBe("DUMP_FAILED");
    expect(job.error.message).toContain("password authentication failed");
    expect(job.error.message).not.toContain("wrong-password");
    expect(job.sha256).toBeNull();
    if (job.objectKey) expect(existsSync(managedFile(job.objectKey))).toBe(false);
    const actions = (await must(h, token, "GET", `/audit-log?targetId=${job.id}`)).items.map((e: any) => e.action);
    expect(actions).toContain("backup_job.failed");
  });

  test("cancel stops a running dump and removes its partial upload; timeout fails with TIMEOUT", async () => {
    await whileCustomersLocked(async () => {
      const source = await pgSource();
      const policy = await createPolicy(h, token, managedId);
      await attach(h, token, source.id, policy.id);
      const queued = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
      await waitForStatus(h, token, `/backup-jobs/${queued.id}`, ["running"]);
      // A second run of the same source while one runs is refused.
      expect((await h.call("POST", "/backup-jobs/run-now", { token, body: { dataSourceId: source.id } })).status).toBe(409);
      expect((await h.call("POST", `/backup-jobs/${queued.id}/cancel`, { token })).status).toBe(202);
      const canceled = await waitForStatus(h, token, `/backup-jobs/${queued.id}`);
      expect(canceled.status).toBe("canceled");
      expect(canceled.error.code).toBe("CANCELED");
      expect(existsSync(managedFile(canceled.objectKey))).toBe(false);
      expect((await h.call("POST", `/backup-jobs/${queued.id}/cancel`, { token })).status).toBe(409);

      const slow = await createPolicy(h, token, managedId, { timeoutSeconds: 60 });
      // The API's floor is 60 s; the runner honours whatever the row says, so shorten it here.
      await h.store.db.update(backupPolicies).set({ timeoutSeconds: 1 }).where(eq(backupPolicies.id, slow.id));
      const other = await pgSource();
      await attach(h, token, other.id, slow.id);
      const timedOut = await backupNow(h, token, other.id);
      expect(timedOut.status).toBe("failed");
      expect(timedOut.error.code).toBe("TIMEOUT");
    });
  });

  test("a dump tool killed mid-way fails the job with DUMP_FAILED and leaves no file", async () => {
    await whileCustomersLocked(async () => {
      const source = await pgSource();
      const policy = await createPolicy(h, token, managedId);
      await attach(h, token, source.id, policy.id);
      const job = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
      await waitForStatus(h, token, `/backup-jobs/${job.id}`, ["running"]);
      let pid: number | null = null;
      for (let i = 0; i < 100 && pid === null; i++) {
        pid = pgDumpPid(pg.port);
        if (pid === null) await Bun.sleep(50);
      }
      expect(pid).not.toBeNull();
      // The dump goes tool to tool, as in `pg_dump | zstd | age > file`: not through the daemon.
      const zstd = pipedAfter(pid!);
      expect(zstd?.name).toBe("zstd");
      const age = pipedAfter(zstd!.pid);
      expect(age?.name).toBe("age");
      const running = await must(h, token, "GET", `/backup-jobs/${job.id}`);
      const tempFile = readlinkSync(`/proc/${age!.pid}/fd/1`);
      expect(tempFile.startsWith(join(dirname(managedFile(running.objectKey)), ".snapdb-part-"))).toBe(true);
      process.kill(pid!, "SIGKILL");
      const failed = await waitForStatus(h, token, `/backup-jobs/${job.id}`);
      expect(failed.status).toBe("failed");
      expect(failed.error.code).toBe("DUMP_FAILED");
      expect(failed.error.message).toContain("SIGKILL");
      expect(existsSync(managedFile(failed.objectKey))).toBe(false);
    });
  });

  test("zstd killed mid-way fails the job with COMPRESSION_FAILED (not the dump's broken pipe) and leaves no file", async () => {
    const release = await holdTableLock(pg, pg.database, "customers", "ACCESS EXCLUSIVE");
    try {
      const source = await pgSource();
      const policy = await createPolicy(h, token, managedId);
      await attach(h, token, source.id, policy.id);
      const job = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
      let zstd: { pid: number; name: string } | null = null;
      for (let i = 0; i < 100 && zstd === null; i++) {
        const dumpPid = pgDumpPid(pg.port);
        zstd = dumpPid === null ? null : pipedAfter(dumpPid);
        if (zstd === null) await Bun.sleep(50);
      }
      expect(zstd?.name).toBe("zstd");
      process.kill(zstd!.pid, "SIGKILL");
      // The daemon kills pg_dump (still waiting on the lock) as soon as zstd is gone.
      await release();
      const failed = await waitForStatus(h, token, `/backup-jobs/${job.id}`);
      expect(failed.status).toBe("failed");
      expect(failed.error.code).toBe("COMPRESSION_FAILED");
      expect(failed.error.message).toContain("zstd was killed by SIGKILL");
      expect(existsSync(managedFile(failed.objectKey))).toBe(false);
    } finally {
      await release();
    }
  });

  test("a retryable storage failure is retried with backoff, then fails", async () => {
    const dead = await must(
      h,
      token,
      "POST",
      "/storage-destinations",
      {
        kind: "s3",
        name: "dead",
        endpoint: "http://127.0.0.1:9",
        region: "us-east-1",
        bucket: "nowhere",
        forcePathStyle: true,
        auth: { type: "accessKey", accessKeyId: "AKIA", secretAccessKey: "secret" },
      },
      201,
    );
    const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(scratch.path) });
    const policy = await createPolicy(h, token, dead.id, { retries: 1 });
    await attach(h, token, source.id, policy.id);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("failed");
    expect(job.error.code).toBe("STORAGE_UNREACHABLE");
    expect(job.attempt).toBe(2);
    const actions = (await must(h, token, "GET", `/audit-log?targetId=${job.id}`)).items.map((e: any) => e.action);
    expect(actions.filter((a: string) => a === "backup_job.started").length).toBe(2);
    expect(actions).toContain("backup_job.retry_scheduled");
  });

  test("retention keeps keepLast and deletes older files; delete-file keeps the job", async () => {
    const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(scratch.path) });
    const policy = await createPolicy(h, token, managedId, { retention: { keepLast: 1 } });
    await attach(h, token, source.id, policy.id);
    const first = await backupNow(h, token, source.id);
    const second = await backupNow(h, token, source.id);
    expect([first.status, second.status]).toEqual(["succeeded", "succeeded"]);
    // Retention runs right after the job is marked succeeded: give it a moment.
    let old = await must(h, token, "GET", `/backup-jobs/${first.id}`);
    for (let i = 0; i < 100 && old.fileDeletedAt === null; i++) {
      await Bun.sleep(20);
      old = await must(h, token, "GET", `/backup-jobs/${first.id}`);
    }
    expect(old.fileDeletedAt).not.toBeNull();
    expect(existsSync(managedFile(first.objectKey))).toBe(false);
    expect(existsSync(managedFile(second.objectKey))).toBe(true);
    expect((await h.call("POST", `/backup-jobs/${first.id}/download-link`, { token, body: {} })).status).toBe(409);

    expect((await h.call("DELETE", `/backup-jobs/${second.id}/file`, { token })).status).toBe(204);
    expect(existsSync(managedFile(second.objectKey))).toBe(false);
    const kept = await must(h, token, "GET", `/backup-jobs/${second.id}`);
    expect(kept.status).toBe("succeeded");
    expect(kept.fileDeletedAt).not.toBeNull();
    expect((await h.call("DELETE", `/backup-jobs/${second.id}/file`, { token })).status).toBe(204);
  });

  test("metrics: jobs by status, bytes, durations, last success per source, queue depth", async () => {
    const text = (await h.call("GET", "/metrics")).text;
    const succeeded = Number(text.match(/^snapdb_backup_jobs\{status="succeeded"\} (\d+)$/m)?.[1]);
    expect(succeeded).toBeGreaterThan(3);
    expect(text).toMatch(/^snapdb_backup_jobs\{status="failed"\} [1-9]\d*$/m);
    expect(text).toMatch(/^snapdb_runner_queue_depth \d+$/m);
    expect(text).toMatch(/^snapdb_backup_bytes_total\{kind="dump"\} [1-9]\d*$/m);
    expect(text).toMatch(/^snapdb_backup_duration_seconds_count [1-9]\d*$/m);
    expect(text).toMatch(/^snapdb_backup_last_success_timestamp_seconds\{data_source_id="ds_[0-9A-Z]{26}"\} \d{10}$/m);
    expect(text).toMatch(/^snapdb_backup_jobs_finished_total\{code="DUMP_FAILED",status="failed"\} [1-9]\d*$/m);
  });

  test("list filters and validation", async () => {
    const all = await must(h, token, "GET", "/backup-jobs?limit=200");
    expect(all.items.length).toBeGreaterThan(5);
    const failed = await must(h, token, "GET", "/backup-jobs?status=failed");
    expect(failed.items.every((j: any) => j.status === "failed")).toBe(true);
    expect((await h.call("GET", "/backup-jobs?status=weird", { token })).status).toBe(400);
    const bad = await h.call("POST", "/backup-jobs/run-now", { token, body: { dataSourceId: "ds_nope" } });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].path).toBe("/dataSourceId");
    expect((await h.call("POST", "/backup-jobs/job_nope/download-link", { token, body: { expiresInSeconds: 5 } })).status).toBe(400);
  });

  test("shutdown: a running backup is interrupted after the grace period and re-queued for a retry", async () => {
    await whileCustomersLocked(async () => {
      const source = await pgSource();
      const policy = await createPolicy(h, token, managedId, { retries: 1 });
      await attach(h, token, source.id, policy.id);
      const job = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
      const running = await waitForStatus(h, token, `/backup-jobs/${job.id}`, ["running"]);
      await h.runner.stop(100);
      const after = await must(h, token, "GET", `/backup-jobs/${job.id}`);
      expect(after.status).toBe("queued");
      expect(after.attempt).toBe(2);
      expect(after.error.code).toBe("INTERRUPTED");
      if (running.objectKey) expect(existsSync(managedFile(running.objectKey))).toBe(false);
      await must(h, token, "POST", `/backup-jobs/${job.id}/cancel`, undefined, 202);
      await h.runner.start();
    });
  });

  test("recovery: a job left running by a crash is failed and its stored object removed", async () => {
    const source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(scratch.path) });
    const key = `${ORG}/${source.id}/2026/01/01/job_crashed.sqlite.zst`;
    const file = managedFile(key);
    await Bun.write(file, "looks complete but was never recorded");
    await h.store.db
      .insert(backupJobs)
      .values({ id: "job_crashed", orgId: ORG, dataSourceId: source.id, destinationId: managedId, trigger: "manual", status: "running", queuedAt: Date.now(), startedAt: Date.now(), objectKey: key });
    const ids = await recoverInterruptedJobs(h.store.db, h.storage, h.runner ? silent() : silent());
    expect(ids).toEqual(["job_crashed"]);
    const row = (await h.store.db.select().from(backupJobs).where(eq(backupJobs.id, "job_crashed")))[0]!;
    expect(row.status).toBe("failed");
    expect(row.error?.code).toBe("INTERRUPTED");
    expect(existsSync(file)).toBe(false);
  });
});

/**
 * Runs `fn` while another session holds an exclusive lock on `customers`: a pg_dump started
 * meanwhile waits on the lock, so a test can act on a backup that is reliably `running`.
 */
async function whileCustomersLocked(fn: () => Promise<void>): Promise<void> {
  const release = await holdTableLock(pg, pg.database, "customers", "ACCESS EXCLUSIVE");
  try {
    await fn();
  } finally {
    await release();
  }
}

/** The pid of the pg_dump our runner started against this server (its argv names the port). */
function pgDumpPid(port: number): number | null {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv[0]?.endsWith("pg_dump") && argv.includes(`--port=${port}`)) return Number(entry);
    } catch {}
  }
  return null;
}

/** The child of this process (the harness runs the runner in-process) whose stdin is `pid`'s stdout. */
function pipedAfter(pid: number): { pid: number; name: string } | null {
  const out = readlinkSync(`/proc/${pid}/fd/1`);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${entry}/stat`, "utf8"));
      if (Number(stat?.[2]) !== process.pid) continue;
      if (readlinkSync(`/proc/${entry}/fd/0`) === out) return { pid: Number(entry), name: stat![1]! };
    } catch {}
  }
  return null;
}

function silent() {
  return { debug() {}, info() {}, warn() {}, error() {}, child: () => silent() } as any;
}

function readdirTmp(): string[] {
  const dir = join(h.config.dataDir, "tmp");
  return existsSync(dir) ? readdirSync(dir) : [];
}
