import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { orgIdentity } from "../../src/crypto/org-keys.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { backupJobs, backupPolicies } from "../../src/db/schema.ts";
import { recoverInterruptedJobs } from "../../src/runner/recovery.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, silentLogger, type Harness } from "../helpers/harness.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { runCommands, wholeServerRestoreCommands } from "../helpers/readme.ts";
import { waitFor } from "../helpers/servers.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Whole-server backups of a real PostgreSQL server (`database: "*"`): every database plus
 * the roles, one job of several files, restored onto the server after everything was
 * dropped, compared with pg_dump / pg_dumpall of the original.
 */
let h: Harness;
let h2: Harness;
let pg: PgServer;
let token: string;
let token2: string;
let policyId: string;
let plainPolicyId: string;
let policy2Id: string;
const ORG = "org_whole_pg";
const ADMIN = { username: "snap_admin", password: "admin-pw-1" };
const READER = { username: "snap_reader", password: "reader-pw-1" };

const managedRoot = (x: Harness) => (x.config.managedStorage.type === "local" ? x.config.managedStorage.path : "");

function run(argv: string[], env: Record<string, string> = {}): string {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH!, ...env }, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv[0]} failed: ${r.stderr}`);
  return r.stdout.toString();
}

/** pg_dump's per-run random \restrict key is not content. */
const normalized = (text: string) =>
  text
    .split("\n")
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join("\n");

/** Plain-text pg_dump of one database WITH owners and grants: what a server restore must bring back. */
const pgDumpOf = (db: string, server = pg) =>
  normalized(run([join(server.binDir, "pg_dump"), "-h", server.host, "-p", String(server.port), "-U", ADMIN.username, "--", db], { PGPASSWORD: ADMIN.password }));

/** Roles, memberships, role settings (no passwords: compared on their own). */
const globalsOf = (server = pg) =>
  normalized(run([join(server.binDir, "pg_dumpall"), "-h", server.host, "-p", String(server.port), "-U", ADMIN.username, "--globals-only", "--no-role-passwords"], { PGPASSWORD: ADMIN.password }));

/** pg_dump connections to `db` (pg_dump names itself in application_name). */
const pgDumpsOn = (db: string) => Number(pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${db}' AND application_name = 'pg_dump';`).trim());

const databasesOf = () => pg.psql("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname;").trim().split("\n").filter(Boolean);

/** Every file under a folder of the managed destination (recursively), [] when it is gone. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

const WEIRD = "my db ü'\"x";
/** Read as a connection string anywhere, it would connect to `sales` instead. */
const CONNSTR = "dbname=sales";
const DATABASES = ["hr", "sales", WEIRD, CONNSTR];

function seed() {
  pg.psql(`CREATE ROLE ${ADMIN.username} SUPERUSER LOGIN PASSWORD '${ADMIN.password}';
    CREATE ROLE ${READER.username} LOGIN PASSWORD '${READER.password}' IN ROLE pg_read_all_data;
    CREATE ROLE alice LOGIN PASSWORD 'alice-pw' VALID UNTIL '2031-01-01' CONNECTION LIMIT 7;
    CREATE ROLE reporting NOLOGIN;
    GRANT reporting TO alice;
    ALTER ROLE alice SET work_mem = '8MB';
    CREATE DATABASE sales OWNER alice;
    CREATE DATABASE hr;
    CREATE DATABASE "my db ü'""x";
    CREATE DATABASE "dbname=sales";`);
  pg.psql(`CREATE TABLE only_here (x int); INSERT INTO only_here VALUES (42);`, CONNSTR);
  pg.psql(
    `SET ROLE alice;
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, note text, seen timestamptz);
    INSERT INTO customers (name, note, seen) SELECT 'c' || g || ' ü', CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('n', g) END, timestamptz '2024-01-01' + g * interval '1 hour' FROM generate_series(1, 500) g;
    CREATE VIEW recent AS SELECT id, name FROM customers WHERE id > 400;
    GRANT SELECT ON customers, recent TO reporting;`,
    "sales",
  );
  pg.psql(
    `CREATE SCHEMA payroll AUTHORIZATION reporting;
    CREATE TABLE payroll.salaries (who text PRIMARY KEY, amount numeric(10,2));
    INSERT INTO payroll.salaries SELECT 'p' || g, g * 100.5 FROM generate_series(1, 200) g;
    GRANT SELECT ON payroll.salaries TO alice;
    REVOKE CONNECT ON DATABASE hr FROM PUBLIC; GRANT CONNECT ON DATABASE hr TO alice;`,
    "hr",
  );
  pg.psql(`CREATE TABLE "odd ""name""" (k int, v text); INSERT INTO "odd ""name""" SELECT g, md5(g::text) FROM generate_series(1, 50) g;`, WEIRD);
}

beforeAll(async () => {
  pg = await startPostgres();
  seed();
  h = await createHarness({ SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "2" });
  await h.runner.start();
  token = await h.token(ORG);
  const managed = await managedDestination(h, token);
  policyId = (await createPolicy(h, token, managed.id)).id;
  plainPolicyId = (await createPolicy(h, token, managed.id, { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } })).id;
  // A second daemon-like app dumping two parts at once.
  h2 = await createHarness({ SNAPDB_RUNNER_PARTS_CONCURRENCY: "2" });
  await h2.runner.start();
  token2 = await h2.token(ORG);
  policy2Id = (await createPolicy(h2, token2, (await managedDestination(h2, token2)).id)).id;
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  await h2?.runner.stop(1000);
  h?.close();
  h2?.close();
  await pg?.stop();
});

const serverSource = (x: Harness, tok: string, extra: Record<string, unknown> = {}, creds = ADMIN) =>
  createSource(x, tok, { engine: "postgres", host: pg.host, port: pg.port, database: "*", ...extra }, creds);

describe("whole-server PostgreSQL backups", () => {
  test("every database and the roles, one job of parts; after dropping them all, a restore brings back each database (owners, grants) and the roles", async () => {
    const source = await serverSource(h, token, { options: { includeRolePasswords: true } });
    await attach(h, token, source.id, policyId);
    const beforeDumps: Record<string, string> = Object.fromEntries(DATABASES.map((d) => [d, pgDumpOf(d)]));
    const beforeGlobals = globalsOf();
    const aliceHash = pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice';").trim();
    const salesOwner = pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'sales';").trim();
    // The database's own grants (CONNECT revoked from PUBLIC) and settings are part of what comes back.
    pg.psql("ALTER DATABASE sales SET statement_timeout = '5min';");
    const databaseAcls = () =>
      pg.psql("SELECT datname, (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(datacl) a), pg_encoding_to_char(encoding) FROM pg_database WHERE datname IN ('hr', 'sales') ORDER BY 1;");
    const databaseSettings = () => pg.psql("SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'sales';");
    const [aclsBefore, settingsBefore] = [databaseAcls(), databaseSettings()];
    expect(aclsBefore).toContain("alice=c/");

    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    const names = job.parts.map((p: any) => p.name);
    expect(names[0]).toBe(":globals");
    for (const d of ["appdb", "postgres", ...DATABASES]) expect(names).toContain(d);
    expect(names).not.toContain("template0");
    expect(names).not.toContain("template1");
    expect(job.objectKey.endsWith(`/${job.id}/`)).toBe(true);
    expect(job.sha256).toBeNull();
    for (const p of job.parts) {
      expect(p.objectKey.startsWith(job.objectKey)).toBe(true);
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(existsSync(join(managedRoot(h), p.objectKey))).toBe(true);
    }
    expect(job.sizeBytes).toBe(job.parts.reduce((n: number, p: any) => n + p.sizeBytes, 0));
    expect(job.storedBytes).toBe(job.parts.reduce((n: number, p: any) => n + p.storedBytes, 0));
    // A name of anything but [A-Za-z0-9_-] is encoded in the key.
    const weird = job.parts.find((p: any) => p.name === WEIRD);
    expect(weird.objectKey).toMatch(/\/dbx-[A-Za-z0-9_-]+\.dump\.zst\.age$/);

    // Drop every database and role the backup holds (the login's own role stays).
    for (const d of [...DATABASES, "appdb"]) pg.psql(`DROP DATABASE "${d.replace(/"/g, '""')}";`);
    pg.psql("DROP ROLE alice; DROP ROLE reporting; DROP ROLE snapdb_test;");
    expect(databasesOf()).not.toContain("sales");

    const created = await must(h, token, "POST", "/restores", { backupJobId: job.id }, 202);
    expect(created.databases).toEqual(job.parts.filter((p: any) => p.kind === "database").map((p: any) => p.name));
    const restore = await waitForStatus(h, token, `/restores/${created.id}`);
    expect(restore.error).toBeNull();
    expect(restore.status).toBe("succeeded");
    // The login's own role (and postgres) existed on the target: tolerated, and said so.
    expect(restore.notes.join(" ")).toContain("snap_admin");

    for (const d of DATABASES) expect({ d, dump: pgDumpOf(d) }).toEqual({ d, dump: beforeDumps[d]! });
    expect(globalsOf()).toBe(beforeGlobals);
    expect(pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice';").trim()).toBe(aliceHash);
    expect(pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'sales';").trim()).toBe(salesOwner);
    expect(databaseAcls()).toBe(aclsBefore);
    expect(databaseSettings()).toBe(settingsBefore);

    // Each part verifies on its own; without ?part= the answer lists them.
    const noPart = await h.call("POST", `/backup-jobs/${job.id}/verify`, { token });
    expect(noPart.status).toBe(400);
    expect(noPart.body.details[0].path).toBe("/part");
    expect(noPart.body.message).toContain('"sales"');
    const verified = await must(h, token, "POST", `/backup-jobs/${job.id}/verify?part=${encodeURIComponent(WEIRD)}`);
    expect(verified).toMatchObject({ ok: true, sha256: weird.sha256, storedBytes: weird.storedBytes });
    const unknown = await h.call("POST", `/backup-jobs/${job.id}/verify?part=nope`, { token });
    expect(unknown.status).toBe(400);
    const link = await must(h, token, "POST", `/backup-jobs/${job.id}/download-link?part=${encodeURIComponent(":globals")}`, { expiresInSeconds: 60 });
    const res = await h.app.handle(new Request(link.url.replace(/^https?:\/\/[^/]+/, "http://localhost")));
    expect(res.status).toBe(200);
    expect(Number((await res.arrayBuffer()).byteLength)).toBe(job.parts[0].storedBytes);
    expect((await h.call("POST", `/backup-jobs/${job.id}/download-link`, { token, body: {} })).status).toBe(400);

    // Deleting the job's file deletes every part, and the job's folder.
    await must(h, token, "DELETE", `/backup-jobs/${job.id}/file`, undefined, 204);
    expect(filesUnder(join(managedRoot(h), job.objectKey))).toEqual([]);
    expect(existsSync(join(managedRoot(h), job.objectKey))).toBe(false);
  }, 120_000);

  test("the globals file has no role passwords unless includeRolePasswords", async () => {
    const source = await serverSource(h, token, { excludeDatabases: ["*"] });
    await attach(h, token, source.id, plainPolicyId);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    expect(job.parts.map((p: any) => p.name)).toEqual([":globals"]);
    const text = readFileSync(join(managedRoot(h), job.parts[0].objectKey), "utf8");
    expect(text).toContain("CREATE ROLE alice;");
    expect(text).toContain("GRANT reporting TO alice");
    expect(text).not.toMatch(/PASSWORD/);
  }, 60_000);

  test("databases are found at each run: one created since is in, excluded ones (names and globs) are out", async () => {
    const source = await serverSource(h, token, { excludeDatabases: ["hr", "my db*", "pos?gres", "dbname=*"] });
    await attach(h, token, source.id, policyId);
    const first = await backupNow(h, token, source.id);
    expect(first.parts.map((p: any) => p.name)).toEqual([":globals", "appdb", "sales"]);
    pg.psql("CREATE DATABASE newcomer; CREATE DATABASE zz_template IS_TEMPLATE true; CREATE DATABASE zz_closed ALLOW_CONNECTIONS false;");
    try {
      const second = await backupNow(h, token, source.id);
      expect(second.status).toBe("succeeded");
      expect(second.parts.map((p: any) => p.name)).toEqual([":globals", "appdb", "newcomer", "sales"]);
    } finally {
      pg.psql("DROP DATABASE newcomer; ALTER DATABASE zz_template IS_TEMPLATE false; DROP DATABASE zz_template; DROP DATABASE zz_closed;");
    }
  }, 60_000);

  test("a database dropped while the job runs is skipped with a note; the job succeeds", async () => {
    pg.psql("CREATE DATABASE aa_first; CREATE DATABASE zz_goes;");
    pg.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);", "aa_first");
    const source = await serverSource(h, token, { excludeDatabases: ["appdb", "hr", "sales", "postgres", "my*", "dbname=*"] });
    await attach(h, token, source.id, policyId);
    const release = await holdTableLock({ host: pg.host, port: pg.port, user: ADMIN.username, password: ADMIN.password }, "aa_first", "t", "ACCESS EXCLUSIVE");
    try {
      const queued = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
      // pg_dump of aa_first waits on the lock; zz_goes is next.
      const until = Date.now() + 30_000;
      while (Number(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'aa_first' AND wait_event_type = 'Lock';").trim()) === 0) {
        if (Date.now() > until) throw new Error("pg_dump never waited on the lock");
        await Bun.sleep(50);
      }
      const running = await must(h, token, "GET", `/backup-jobs/${queued.id}`);
      expect(running.parts.map((p: any) => p.name)).toEqual([":globals", "aa_first", "zz_goes"]);
      pg.psql("DROP DATABASE zz_goes;");
      await release();
      const job = await waitForStatus(h, token, `/backup-jobs/${queued.id}`);
      expect(job.status).toBe("succeeded");
      const gone = job.parts.find((p: any) => p.name === "zz_goes");
      expect(gone).toMatchObject({ objectKey: null, sha256: null });
      expect(gone.note).toContain("dropped");
      expect(job.parts.find((p: any) => p.name === "aa_first").sha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await release();
      pg.psql("DROP DATABASE aa_first;");
    }
  }, 60_000);

  test("a part that fails fails the job, and every part already stored is removed", async () => {
    pg.psql("CREATE DATABASE zz_secret; REVOKE CONNECT ON DATABASE zz_secret FROM PUBLIC;");
    try {
      // The reader may read every table (pg_read_all_data) but not connect to zz_secret: its dump fails, last.
      const source = await serverSource(h, token, { excludeDatabases: ["hr"] }, READER);
      await attach(h, token, source.id, policyId);
      const job = await backupNow(h, token, source.id);
      expect(job.status).toBe("failed");
      expect(job.error.code).toBe("DUMP_FAILED");
      expect(job.error.message).toContain('database "zz_secret"');
      // The parts before it had been stored (their figures say so), and none is left.
      expect(job.parts.find((p: any) => p.name === "sales").sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(filesUnder(join(managedRoot(h), job.objectKey))).toEqual([]);
      expect(existsSync(join(managedRoot(h), job.objectKey))).toBe(false);
    } finally {
      pg.psql("DROP DATABASE zz_secret;");
    }
  }, 60_000);

  test("a part held on a lock past the policy's timeout fails the job with TIMEOUT: no part is left (not the ones already stored), no pg_dump left waiting", async () => {
    pg.psql("CREATE DATABASE aa_ok; CREATE DATABASE zz_locked;");
    pg.psql("CREATE TABLE a (x int); INSERT INTO a VALUES (1), (2);", "aa_ok");
    pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);", "zz_locked");
    const release = await holdTableLock({ host: pg.host, port: pg.port, user: ADMIN.username, password: ADMIN.password }, "zz_locked", "t", "ACCESS EXCLUSIVE");
    try {
      const source = await serverSource(h, token, { excludeDatabases: ["appdb", "hr", "sales", "postgres", "my*", "dbname=*"] });
      const slow = await createPolicy(h, token, (await managedDestination(h, token)).id);
      // The API's floor is 60 s; the runner honours whatever the row says, so shorten it here.
      await h.store.db.update(backupPolicies).set({ timeoutSeconds: 3 }).where(eq(backupPolicies.id, slow.id));
      await attach(h, token, source.id, slow.id);
      const job = await backupNow(h, token, source.id);
      expect(job.status).toBe("failed");
      expect(job.error.code).toBe("TIMEOUT");
      expect(job.parts.map((p: any) => p.name)).toEqual([":globals", "aa_ok", "zz_locked"]);
      // The globals and aa_ok had been stored (their figures say so) before zz_locked waited on the lock.
      for (const name of [":globals", "aa_ok"]) expect(job.parts.find((p: any) => p.name === name).sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(job.parts.find((p: any) => p.name === "zz_locked").sha256).toBeNull();
      expect(filesUnder(join(managedRoot(h), job.objectKey))).toEqual([]);
      expect(existsSync(join(managedRoot(h), job.objectKey))).toBe(false);
      // The lock is still held: pg_dump was stopped and its query canceled, not left waiting on it.
      await waitFor("no pg_dump on zz_locked", () => pgDumpsOn("zz_locked") === 0, 5_000);
      expect(Number(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'zz_locked' AND wait_event_type = 'Lock';").trim())).toBe(0);
    } finally {
      await release();
      pg.psql("DROP DATABASE aa_ok; DROP DATABASE zz_locked;");
    }
  }, 60_000);

  test("with partsConcurrency 2 a failing part stops the part still running (held on a lock): the job fails at once, nothing stored", async () => {
    pg.psql("CREATE DATABASE aa_locked; CREATE DATABASE ab_secret; REVOKE CONNECT ON DATABASE ab_secret FROM PUBLIC;");
    pg.psql(`CREATE TABLE t (id int); INSERT INTO t VALUES (1); GRANT SELECT ON t TO ${READER.username};`, "aa_locked");
    const release = await holdTableLock({ host: pg.host, port: pg.port, user: ADMIN.username, password: ADMIN.password }, "aa_locked", "t", "ACCESS EXCLUSIVE");
    try {
      const source = await createSource(
        h2,
        token2,
        { engine: "postgres", host: pg.host, port: pg.port, database: "*", excludeDatabases: ["appdb", "hr", "sales", "postgres", "my*", "dbname=*"] },
        READER,
      );
      await attach(h2, token2, source.id, policy2Id);
      const job = await backupNow(h2, token2, source.id);
      expect(job.status).toBe("failed");
      expect(job.error.message).toContain('database "ab_secret"');
      // The lock is still held: aa_locked's dump was stopped, not waited for.
      expect(job.parts.find((p: any) => p.name === "aa_locked").sha256).toBeNull();
      expect(filesUnder(join(managedRoot(h2), job.objectKey))).toEqual([]);
    } finally {
      await release();
      pg.psql("DROP DATABASE aa_locked; DROP DATABASE ab_secret;");
    }
  }, 60_000);

  test("partsConcurrency is capped by runner.maxConcurrent: with 2 and 2 a part goes on while another waits on a lock, with maxConcurrent 1 it does not", async () => {
    pg.psql("CREATE DATABASE aa_held; CREATE DATABASE ab_next;");
    pg.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);", "aa_held");
    pg.psql("CREATE TABLE u (id int); INSERT INTO u VALUES (1);", "ab_next");
    const h3 = await createHarness({ SNAPDB_RUNNER_MAX_CONCURRENT: "1", SNAPDB_RUNNER_PARTS_CONCURRENCY: "2" });
    await h3.runner.start();
    const exclude = { excludeDatabases: ["appdb", "hr", "sales", "postgres", "my*", "dbname=*"] };
    const lockWaits = () => Number(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'aa_held' AND wait_event_type = 'Lock';").trim());
    /** Starts a job with aa_held locked; once its pg_dump waits on the lock, `whileHeld` looks; then the lock goes and the job must succeed. */
    const runHeld = async (x: Harness, tok: string, policy: string, whileHeld: (jobId: string) => Promise<void>) => {
      const source = await createSource(x, tok, { engine: "postgres", host: pg.host, port: pg.port, database: "*", ...exclude }, ADMIN);
      await attach(x, tok, source.id, policy);
      const release = await holdTableLock({ host: pg.host, port: pg.port, user: ADMIN.username, password: ADMIN.password }, "aa_held", "t", "ACCESS EXCLUSIVE");
      try {
        const queued = await must(x, tok, "POST", "/backup-jobs/run-now", { dataSourceId: source.id }, 202);
        await waitFor("pg_dump of aa_held waiting on the lock", () => lockWaits() > 0, 30_000);
        await whileHeld(queued.id);
        await release();
        const job = await waitForStatus(x, tok, `/backup-jobs/${queued.id}`);
        expect(job.status).toBe("succeeded");
        expect(job.parts.map((p: any) => p.name)).toEqual([":globals", "aa_held", "ab_next"]);
      } finally {
        await release();
      }
    };
    const nextStored = async (x: Harness, tok: string, jobId: string) => (await must(x, tok, "GET", `/backup-jobs/${jobId}`)).parts.find((p: any) => p.name === "ab_next").sha256 !== null;
    try {
      // maxConcurrent 2 (the default), partsConcurrency 2: ab_next is dumped while aa_held waits.
      let took = 0;
      await runHeld(h2, token2, policy2Id, async (jobId) => {
        const started = Date.now();
        await waitFor("ab_next stored while aa_held waits", () => nextStored(h2, token2, jobId), 30_000);
        took = Date.now() - started;
      });
      // maxConcurrent 1: one part at a time, whatever partsConcurrency says. Given several
      // times what ab_next took above, it neither connects nor gets stored while aa_held waits.
      const token3 = await h3.token(ORG);
      const policy3 = await createPolicy(h3, token3, (await managedDestination(h3, token3)).id);
      await runHeld(h3, token3, policy3.id, async (jobId) => {
        const until = Date.now() + Math.max(2_000, 4 * took);
        while (Date.now() < until) {
          expect(pgDumpsOn("ab_next")).toBe(0);
          expect(await nextStored(h3, token3, jobId)).toBe(false);
          await Bun.sleep(100);
        }
        expect(lockWaits()).toBe(1);
      });
    } finally {
      await h3.runner.stop(1000);
      h3.close();
      pg.psql("DROP DATABASE aa_held; DROP DATABASE ab_next;");
    }
  }, 120_000);

  test("verify on a whole server lists the databases a backup would take and flags the ones the login cannot read", async () => {
    pg.psql("CREATE DATABASE zz_hidden; REVOKE CONNECT ON DATABASE zz_hidden FROM PUBLIC;");
    try {
      const admin = await serverSource(h, token, { excludeDatabases: ["my*", "dbname=*"] });
      const ok = await must(h, token, "POST", `/data-sources/${admin.id}/verify`);
      expect(ok).toMatchObject({ ok: true, databases: ["appdb", "hr", "postgres", "sales", "zz_hidden"], unreadable: [] });
      const reader = await serverSource(h, token, {}, READER);
      const flagged = await must(h, token, "POST", `/data-sources/${reader.id}/verify`);
      expect(flagged.ok).toBe(false);
      expect(flagged.error.code).toBe("DATABASE_UNREADABLE");
      expect(flagged.unreadable).toEqual(["hr", "zz_hidden"]);
      expect(flagged.databases).toContain("sales");
      expect(flagged.serverVersion).toMatch(/^\d+/);
      // Role passwords need a superuser: without one the globals part is flagged too.
      const withPasswords = await serverSource(h, token, { excludeDatabases: ["hr", "zz_*"], options: { includeRolePasswords: true } }, READER);
      const globals = await must(h, token, "POST", `/data-sources/${withPasswords.id}/verify`);
      expect(globals).toMatchObject({ ok: false, error: { code: "DATABASE_UNREADABLE" }, unreadable: [":globals"] });
    } finally {
      pg.psql("DROP DATABASE zz_hidden;");
    }
  }, 60_000);

  test("retention keeps or deletes a whole-server backup as one: every part of a pruned job goes; a cascade delete of the source takes the rest", async () => {
    const managed = await managedDestination(h, token);
    const keepOne = await createPolicy(h, token, managed.id, { retention: { keepLast: 1 } });
    const source = await serverSource(h, token, { excludeDatabases: ["my*", "hr", "postgres", "dbname=*"] });
    await attach(h, token, source.id, keepOne.id);
    const first = await backupNow(h, token, source.id);
    expect(filesUnder(join(managedRoot(h), first.objectKey)).length).toBe(first.parts.length);
    const second = await backupNow(h, token, source.id);
    expect(second.status).toBe("succeeded");
    // Retention runs right after the success is recorded: its deletes may still be under way.
    await waitFor("retention", () => !existsSync(join(managedRoot(h), first.objectKey)), 10_000);
    expect((await must(h, token, "GET", `/backup-jobs/${first.id}`)).fileDeletedAt).not.toBeNull();
    expect(filesUnder(join(managedRoot(h), second.objectKey)).length).toBe(second.parts.length);
    await must(h, token, "DELETE", `/data-sources/${source.id}?cascade=true`, undefined, 204);
    expect(existsSync(join(managedRoot(h), second.objectKey))).toBe(false);
  }, 60_000);

  test("crash recovery removes every part of an interrupted whole-server job, and its temp files", async () => {
    const source = await serverSource(h, token, { excludeDatabases: ["my*", "hr", "postgres", "dbname=*"] });
    await attach(h, token, source.id, policyId);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    const folder = join(managedRoot(h), job.objectKey);
    expect(filesUnder(folder).length).toBe(job.parts.length);
    // As a kill -9 leaves it: the row still running, a part's upload cut short beside the others.
    writeFileSync(join(folder, `.snapdb-part-db-sales.dump.zst.age.abcdef123456`), "partial");
    await h.store.db.update(backupJobs).set({ status: "running" }).where(eq(backupJobs.id, job.id));
    await recoverInterruptedJobs(h.store.db, h.storage, silentLogger);
    expect(filesUnder(folder)).toEqual([]);
    const after = await must(h, token, "GET", `/backup-jobs/${job.id}`);
    expect(after).toMatchObject({ status: "failed", error: { code: "INTERRUPTED" } });
  }, 60_000);
});

describe("whole-server restores: choices and refusals", () => {
  let job: any;
  let source: any;
  beforeAll(async () => {
    source = await serverSource(h, token, { excludeDatabases: ["my*", "hr", "postgres", "dbname=*"] });
    await attach(h, token, source.id, policyId);
    job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
  }, 60_000);

  test("a non-empty database on the target is a 409 naming it, unless clean; databases picks which", async () => {
    const refused = await h.call("POST", "/restores", { token, body: { backupJobId: job.id } });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toContain('"sales"');
    const unknown = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, databases: ["sales", "nope"] } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.details[0].path).toBe("/databases/1");
    const renamed = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDatabase: "x" } });
    expect(renamed.status).toBe(400);

    const before = pgDumpOf("sales");
    pg.psql("SET ROLE alice; DELETE FROM customers WHERE id > 10;", "sales");
    const r = await must(h, token, "POST", "/restores", { backupJobId: job.id, databases: ["sales"], clean: true }, 202);
    expect(r.databases).toEqual(["sales"]);
    const done = await waitForStatus(h, token, `/restores/${r.id}`);
    expect(done.error).toBeNull();
    expect(pgDumpOf("sales")).toBe(before);
  }, 60_000);

  test("databases is refused for a one-file backup; a one-file backup restored into a whole-server source needs targetDatabase", async () => {
    const one = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "sales" }, ADMIN);
    await attach(h, token, one.id, policyId);
    const single = await backupNow(h, token, one.id);
    const bad = await h.call("POST", "/restores", { token, body: { backupJobId: single.id, databases: ["sales"] } });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].path).toBe("/databases");
    const noName = await h.call("POST", "/restores", { token, body: { backupJobId: single.id, targetDataSourceId: source.id } });
    expect(noName.status).toBe(400);
    expect(noName.body.details[0].path).toBe("/targetDatabase");
    const partOnOne = await h.call("POST", `/backup-jobs/${single.id}/verify?part=sales`, { token });
    expect(partOnOne.status).toBe(400);
  }, 60_000);
});

describe("the README's by-hand restore of a whole-server backup", () => {
  let pg2: PgServer;
  beforeAll(async () => {
    // A new server, as after losing the old one: only its superuser (the one psql logs in as).
    pg2 = await startPostgres();
    pg2.psql(`CREATE ROLE ${ADMIN.username} SUPERUSER LOGIN PASSWORD '${ADMIN.password}';`);
  }, 120_000);
  afterAll(async () => {
    await pg2?.stop();
  });

  test("its PostgreSQL commands, run as written in the backup's folder onto a new server, bring back the roles and the database", async () => {
    const { postgres: commands } = wholeServerRestoreCommands();
    expect(commands.length).toBeGreaterThan(1);
    const source = await serverSource(h, token, { excludeDatabases: ["my*", "hr", "postgres", "appdb", "dbname=*"] });
    await attach(h, token, source.id, policyId);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    // The README's files are this job's: the globals and sales, zstd then age.
    expect(job.parts.map((p: any) => p.objectKey.split("/").pop())).toEqual(["globals.sql.zst.age", "db-sales.dump.zst.age"]);
    expect(databasesOf()).toContain("sales");

    const home = tempDir("snapdb-readme");
    try {
      writeFileSync(join(home.path, "snapdb-acme.key"), `${await orgIdentity(h.store.db, new SecretBox(h.master), ORG)}\n`, { mode: 0o600 });
      const env = { PATH: `${pg2.binDir}:${process.env.PATH}`, HOME: home.path, PGHOST: pg2.host, PGPORT: String(pg2.port), PGUSER: ADMIN.username, PGPASSWORD: ADMIN.password };
      const ran = runCommands(commands, join(managedRoot(h), job.objectKey), env);
      for (const r of ran) {
        expect({ command: r.command, exitCode: r.exitCode }).toEqual({ command: r.command, exitCode: 0 });
        // psql goes on past roles that exist (the login's own, and the new server's); nothing else fails.
        for (const line of r.stderr.split("\n").filter((l) => /ERROR/.test(l))) expect(line).toMatch(/ERROR:\s+role "(snap_admin|snapdb_test|postgres)" already exists/);
      }
    } finally {
      home.cleanup();
    }
    expect(pgDumpOf("sales", pg2)).toBe(pgDumpOf("sales"));
    expect(globalsOf(pg2)).toBe(globalsOf());
    const database = (server: PgServer) =>
      server.psql(
        "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datacl, (SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) FROM pg_database d WHERE datname = 'sales';",
      );
    expect(database(pg2)).toBe(database(pg));
    expect(database(pg2)).toContain("alice");
  }, 120_000);
});

describe("whole-server data sources: validation", () => {
  test("excludeDatabases and includeRolePasswords belong to database *; patterns are checked", async () => {
    const base = { name: "v-1", engine: "postgres", host: "db.example.com" };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, database: "app", excludeDatabases: ["x"] }, "/excludeDatabases"],
      [{ ...base, database: "*", excludeDatabases: ["a\u0001"] }, "/excludeDatabases/0"],
      [{ ...base, database: "*", excludeDatabases: [""] }, "/excludeDatabases/0"],
      [{ ...base, database: "app", options: { includeRolePasswords: true } }, "/options/includeRolePasswords"],
      [{ ...base, engine: "mariadb", database: "*", options: { includeRolePasswords: true } }, "/options/includeRolePasswords"],
      [{ name: "v-2", engine: "sqlite", path: "/x.db", excludeDatabases: ["a"] }, "/excludeDatabases"],
    ];
    for (const [body, path] of cases) {
      const res = await h.call("POST", "/data-sources", { token, body });
      expect({ body, status: res.status, paths: res.body.details?.map((d: any) => d.path) }).toMatchObject({ body, status: 400, paths: expect.arrayContaining([path]) });
    }
    const ok = await must(h, token, "POST", "/data-sources", { ...base, database: "*", excludeDatabases: ["tmp_*", "x?"] }, 201);
    expect(ok.excludeDatabases).toEqual(["tmp_*", "x?"]);
    const patch = await h.call("PATCH", `/data-sources/${ok.id}`, { token, body: { database: "app" } });
    expect(patch.status).toBe(400);
    const cleared = await must(h, token, "PATCH", `/data-sources/${ok.id}`, { database: "app", excludeDatabases: [] });
    expect(cleared.excludeDatabases).toEqual([]);
  });
});
