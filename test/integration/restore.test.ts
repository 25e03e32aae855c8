import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { eq } from "drizzle-orm";
import { newAgeIdentity } from "../../src/crypto/age.ts";
import { ORG_KEY_AAD } from "../../src/crypto/org-keys.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { orgKeys, restores } from "../../src/db/schema.ts";
import { sqliteTempPath } from "../../src/engines/sqlite-restore.ts";
import { recoverInterruptedRestores } from "../../src/runner/recovery.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, silentLogger, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

let h: Harness;
let pg: PgServer;
let maria: MariaDbServer;
let token: string;
let policyId: string;
const scratch = tempDir("snapdb-restore");
const ORG = "org_restore";

const managedFile = (key: string) => join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", key);

function run(argv: string[], env: Record<string, string> = {}): string {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH!, ...env }, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv[0]} failed: ${r.stderr}`);
  return r.stdout.toString();
}

/** A plain-text pg_dump (schema and data) with pg_dump's per-run random \restrict key removed. */
const pgDumpOf = (db: string) =>
  run([join(pg.binDir, "pg_dump"), "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "--no-owner", "--no-privileges", db], { PGPASSWORD: pg.password })
    .split("\n")
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join("\n");

const mariaDumpOf = (db: string) =>
  run(["mariadb-dump", "--no-defaults", `--socket=${maria.socket}`, "-uroot", "--default-character-set=utf8mb4", "--skip-dump-date", "--compact", "--hex-blob", "--routines", db]);

/** MariaDB SQL as the test user over TCP (views get the user the restore runs as for DEFINER). */
function mariaAs(statements: string, db: string) {
  const r = Bun.spawnSync(["mariadb", "--no-defaults", "--protocol=TCP", "--default-character-set=utf8mb4", "-h", maria.host, "-P", String(maria.port), "-u", maria.user, db], {
    stdin: Buffer.from(statements),
    env: { PATH: process.env.PATH!, MYSQL_PWD: maria.password },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`mariadb failed: ${r.stderr}`);
  return r.stdout.toString();
}

/** A `.dump`-like text of a SQLite file: schema, then every row of every table in rowid order. */
function sqliteDumpOf(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    const schema = db.query("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as { type: string; name: string; sql: string }[];
    const out = schema.map((s) => s.sql);
    for (const t of schema.filter((s) => s.type === "table")) {
      for (const row of db.query(`SELECT * FROM "${t.name}" ORDER BY rowid`).values()) {
        out.push(JSON.stringify(row.map((v) => (v instanceof Uint8Array ? `x'${Buffer.from(v).toString("hex")}'` : v))));
      }
    }
    return out.join("\n");
  } finally {
    db.close();
  }
}

const restore = (body: Record<string, unknown>, status = 202) => must(h, token, "POST", "/restores", body, status);
const restoreAndWait = async (body: Record<string, unknown>) => waitForStatus(h, token, `/restores/${(await restore(body)).id}`);

beforeAll(async () => {
  [pg, maria] = await Promise.all([startPostgres(), startMariaDb()]);
  // Two of the org's jobs may run at once, so a restore that waits does so for its target, not for the org's limit.
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path, SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "2" });
  await h.runner.start();
  token = await h.token(ORG);
  const managed = await managedDestination(h, token);
  policyId = (await createPolicy(h, token, managed.id)).id;

  pg.psql(`ALTER ROLE ${pg.user} CREATEDB; CREATE DATABASE pg_copy OWNER ${pg.user};`);
  pg.psql(
    `SET ROLE ${pg.user};
    CREATE TABLE people (id bigserial PRIMARY KEY, name text NOT NULL, note text, born date, seen timestamptz, balance numeric(14,4),
      active boolean, tags text[], meta jsonb, uid uuid, photo bytea);
    INSERT INTO people (name, note, born, seen, balance, active, tags, meta, uid)
      SELECT 'nom ' || g || ' ünïcødé ✓ 日本語 🐘', CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('x', g % 300) END, date '1990-01-01' + g,
        timestamptz '2024-01-01 00:00+00' + g * interval '37 minutes', g * 3.1415, g % 2 = 0, ARRAY['a' || g, NULL, 'ç'],
        jsonb_build_object('g', g, 'nested', jsonb_build_array(g, 'ö', NULL)), md5(g::text)::uuid
      FROM generate_series(1, 4000) g;
    UPDATE people SET photo = decode(repeat(md5(id::text), 32768), 'hex') WHERE id <= 3;
    CREATE INDEX people_name ON people (name);
    CREATE UNIQUE INDEX people_uid ON people (uid);
    CREATE TABLE notes (id int PRIMARY KEY, person bigint REFERENCES people(id), body text);
    INSERT INTO notes SELECT g, g, 'note ' || g FROM generate_series(1, 500) g;
    CREATE VIEW rich AS SELECT id, name FROM people WHERE balance > 10000;`,
    pg.database,
  );

  maria.sql(`GRANT ALL ON *.* TO '${maria.user}'@'127.0.0.1'; GRANT ALL ON *.* TO '${maria.user}'@'localhost'; FLUSH PRIVILEGES; CREATE DATABASE appdb_copy;`);
  mariaAs(
    `CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(200) CHARACTER SET utf8mb4, price DECIMAL(12,3), big BIGINT,
      at DATETIME(3), doc JSON, body LONGBLOB, flag TINYINT(1), KEY items_label (label)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
    INSERT INTO items (label, price, big, at, doc, body, flag)
      SELECT CONCAT('étiquette ', seq, ' 🐬 ✓'), IF(seq % 7 = 0, NULL, seq * 1.125), seq * 1000000007, '2024-01-01 00:00:00' + INTERVAL seq MINUTE,
        JSON_OBJECT('n', seq, 's', 'ü'), IF(seq % 9 = 0, NULL, UNHEX(MD5(seq))), seq % 2
      FROM seq_1_to_4000;
    UPDATE items SET body = REPEAT(UNHEX(MD5(id)), 65536) WHERE id <= 3;
    CREATE TABLE tags (item INT, tag VARCHAR(20), PRIMARY KEY (item, tag), CONSTRAINT fk_item FOREIGN KEY (item) REFERENCES items(id));
    INSERT INTO tags SELECT seq, 'ç' FROM seq_1_to_300;
    CREATE VIEW cheap AS SELECT id, label FROM items WHERE price < 100;`,
    maria.database,
  );
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([pg?.stop(), maria?.stop()]);
  scratch.cleanup();
});

async function backedUp(body: Record<string, unknown>, credentials?: { username: string; password: string }) {
  const source = await createSource(h, token, body, credentials);
  await attach(h, token, source.id, policyId);
  const job = await backupNow(h, token, source.id);
  expect(job.status).toBe("succeeded");
  return { source, job };
}

const pgCreds = () => ({ username: pg.user, password: pg.password });
const mariaCreds = () => ({ username: maria.user, password: maria.password });

describe("restores: PostgreSQL", () => {
  let job: any;
  let copy: any;
  let original: string;
  beforeAll(async () => {
    ({ job } = await backedUp({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, pgCreds()));
    copy = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "pg_copy" }, pgCreds());
    original = pgDumpOf(pg.database);
  }, 60_000);

  test("round trip into a fresh database of another data source: dumps are equal", async () => {
    const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id });
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(done).toMatchObject({ sourceDataSourceId: job.dataSourceId, targetDataSourceId: copy.id, targetDatabase: "pg_copy", clean: false });
    expect(done.progress.bytesRead).toBe(job.storedBytes);
    expect(done.progress.bytesWritten).toBe(job.sizeBytes);
    expect(original).toContain("nom 1 ünïcødé ✓ 日本語 🐘");
    expect(pgDumpOf("pg_copy")).toBe(original);
    const actions = (await must(h, token, "GET", `/audit-log?targetId=${done.id}`)).items.map((e: any) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["restore.queued", "restore.started", "restore.completed"]));
    const listed = await must(h, token, "GET", `/restores?dataSourceId=${copy.id}&status=succeeded`);
    expect(listed.items.map((r: any) => r.id)).toEqual([done.id]);
  });

  test("non-empty target without clean → 409 and untouched; clean brings a changed target back", async () => {
    pg.psql("DELETE FROM notes WHERE id > 100; UPDATE people SET name = 'changed' WHERE id < 50;", "pg_copy");
    const changed = pgDumpOf("pg_copy");
    const refused = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDataSourceId: copy.id } });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("CONFLICT");
    expect(pgDumpOf("pg_copy")).toBe(changed);
    const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id, clean: true });
    expect(done.status).toBe("succeeded");
    expect(pgDumpOf("pg_copy")).toBe(original);
  });

  test("targetDatabase creates and fills a new database on the same server", async () => {
    const done = await restoreAndWait({ backupJobId: job.id, targetDatabase: "pg_new" });
    expect(done.status).toBe("succeeded");
    expect(done.targetDataSourceId).toBe(job.dataSourceId);
    expect(pgDumpOf("pg_new")).toBe(original);
    expect((await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDatabase: "bad name;" } })).status).toBe(400);
  });

  test("cancel mid-restore: pg_restore's single transaction is rolled back, the target unchanged", async () => {
    pg.psql("UPDATE people SET note = 'before cancel' WHERE id = 1;", "pg_copy");
    const before = pgDumpOf("pg_copy");
    // A reader holding a lock makes pg_restore --clean wait at its first DROP: a restore caught mid-way.
    const release = await holdTableLock(pg, "pg_copy", "notes", "ACCESS SHARE");
    const queued = await restore({ backupJobId: job.id, targetDataSourceId: copy.id, clean: true });
    await waitForStatus(h, token, `/restores/${queued.id}`, ["running"]);
    await Bun.sleep(300);
    expect((await h.call("POST", `/restores/${queued.id}/cancel`, { token })).status).toBe(202);
    const canceled = await waitForStatus(h, token, `/restores/${queued.id}`);
    await release();
    expect(canceled.status).toBe("canceled");
    expect(canceled.error.code).toBe("CANCELED");
    expect(canceled.error.message).toContain("rolled it back");
    // The killed pg_restore's backend rolls back once it gets the lock and sees its client gone.
    for (let i = 0; i < 100 && pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'pg_copy' AND pid <> pg_backend_pid();").trim() !== "0"; i++) await Bun.sleep(50);
    expect(pgDumpOf("pg_copy")).toBe(before);
    expect((await h.call("POST", `/restores/${queued.id}/cancel`, { token })).status).toBe(409);
  });

  test("a restore into a source waits while a backup of it runs (one job per data source, both tables)", async () => {
    const release = await holdTableLock(pg, "pg_copy", "notes", "ACCESS EXCLUSIVE");
    let backup: any;
    try {
      await attach(h, token, copy.id, policyId).catch(() => {});
      backup = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId: copy.id, policyId }, 202);
      await waitForStatus(h, token, `/backup-jobs/${backup.id}`, ["running"]);
      const queued = await restore({ backupJobId: job.id, targetDataSourceId: copy.id, clean: true });
      await Bun.sleep(700);
      expect((await must(h, token, "GET", `/restores/${queued.id}`)).status).toBe("queued");
      await release();
      const done = await waitForStatus(h, token, `/restores/${queued.id}`);
      expect(done.status).toBe("succeeded");
      const finished = await must(h, token, "GET", `/backup-jobs/${backup.id}`);
      expect(finished.status).toBe("succeeded");
      expect(Date.parse(done.startedAt)).toBeGreaterThanOrEqual(Date.parse(finished.finishedAt));
      expect(pgDumpOf("pg_copy")).toBe(original);
    } finally {
      await release();
    }
  });

  test("one corrupt byte in the stored file → CHECKSUM_MISMATCH, nothing committed", async () => {
    const file = managedFile(job.objectKey);
    const bytes = readFileSync(file);
    const i = Math.floor(bytes.length / 2);
    bytes[i] = bytes[i]! ^ 0x01;
    writeFileSync(file, bytes);
    try {
      const done = await restoreAndWait({ backupJobId: job.id, targetDatabase: "pg_corrupt" });
      expect(done.status).toBe("failed");
      expect(done.error.code).toBe("CHECKSUM_MISMATCH");
      expect(pg.psql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public';", "pg_corrupt").trim()).toBe("0");
    } finally {
      bytes[i] = bytes[i]! ^ 0x01;
      writeFileSync(file, bytes);
    }
  });
});

describe("restores: MariaDB", () => {
  let job: any;
  let copy: any;
  let original: string;
  beforeAll(async () => {
    ({ job } = await backedUp({ engine: "mariadb", host: maria.host, port: maria.port, database: maria.database }, mariaCreds()));
    copy = await createSource(h, token, { engine: "mysql", host: maria.host, port: maria.port, database: "appdb_copy" }, mariaCreds());
    original = mariaDumpOf(maria.database);
  }, 60_000);

  test("round trip into another database (a mysql-engine source: same family): dumps are equal", async () => {
    const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id });
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(original).toContain("étiquette 1 🐬 ✓");
    expect(mariaDumpOf("appdb_copy")).toBe(original);
  });

  test("non-empty without clean → 409; clean over a changed target (extra table too) brings it back", async () => {
    maria.sql("DELETE FROM tags WHERE item > 10; UPDATE items SET label = 'x' WHERE id < 20; CREATE TABLE extra (id INT);", "appdb_copy");
    const changed = mariaDumpOf("appdb_copy");
    expect((await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDataSourceId: copy.id } })).status).toBe(409);
    expect(mariaDumpOf("appdb_copy")).toBe(changed);
    const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id, clean: true });
    expect(done.status).toBe("succeeded");
    expect(mariaDumpOf("appdb_copy")).toBe(original);
  });

  test("targetDatabase creates and fills a new database", async () => {
    const done = await restoreAndWait({ backupJobId: job.id, targetDatabase: "maria_new" });
    expect(done.status).toBe("succeeded");
    expect(mariaDumpOf("maria_new")).toBe(original);
  });

  test("cancel mid-restore reports that the target may be partially restored", async () => {
    // A global read lock makes the mysql client wait at its first write: a restore caught mid-way.
    maria.sql("CREATE DATABASE maria_cancel;");
    const locker = Bun.spawn(["mariadb", "--no-defaults", `--socket=${maria.socket}`, "-uroot"], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
    locker.stdin.write("FLUSH TABLES WITH READ LOCK;\n");
    await locker.stdin.flush();
    await Bun.sleep(200);
    const queued = await restore({ backupJobId: job.id, targetDatabase: "maria_cancel" });
    await waitForStatus(h, token, `/restores/${queued.id}`, ["running"]);
    await Bun.sleep(300);
    await must(h, token, "POST", `/restores/${queued.id}/cancel`, undefined, 202);
    const canceled = await waitForStatus(h, token, `/restores/${queued.id}`);
    locker.stdin.write("UNLOCK TABLES;\n");
    await locker.stdin.end();
    await locker.exited;
    expect(canceled.status).toBe("canceled");
    expect(canceled.error.message).toContain("may be partially restored");
  });

  test("a backup of another engine family → 400", async () => {
    const pgTarget = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "pg_copy" }, pgCreds());
    const res = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDataSourceId: pgTarget.id, clean: true } });
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe("/targetDataSourceId");
  });
});

describe("restores: SQLite", () => {
  let job: any;
  let original: string;
  const file = () => join(scratch.path, "app.db");
  beforeAll(async () => {
    const db = new Database(file());
    db.run("PRAGMA journal_mode = WAL");
    db.run("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, n INTEGER, data BLOB, note TEXT)");
    db.run("CREATE INDEX things_name ON things (name)");
    db.run("CREATE VIEW top AS SELECT id, name FROM things WHERE score > 100");
    const insert = db.prepare("INSERT INTO things (name, score, n, data, note) VALUES (?, ?, ?, ?, ?)");
    db.transaction(() => {
      for (let i = 1; i <= 3000; i++) {
        const data = i <= 2 ? randomBytes(65536) : i % 4 === 0 ? null : new Uint8Array([i & 255, 0, 255]);
        insert.run(`nom ${i} ünïcødé ✓ 🗄️`, i % 3 === 0 ? null : i * 0.5, i * 1_000_000_007, data, i % 5 === 0 ? null : "x".repeat(i % 200));
      }
      for (let k = 0; k < 15; k++) insert.run(`big ${k}`, 1, 2, randomBytes(65536), "y".repeat(1 << 20));
    })();
    db.close();
    ({ job } = await backedUp({ engine: "sqlite", path: file() }));
    original = sqliteDumpOf(file());
  }, 60_000);

  const target = async (name: string) => createSource(h, token, { engine: "sqlite", path: join(scratch.path, name) });

  test("round trip into a new path: same rows, sound file, no temp file left", async () => {
    const fresh = await target("copy.db");
    const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: fresh.id });
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(done.targetDatabase).toBeNull();
    expect(sqliteDumpOf(fresh.path)).toBe(original);
    expect(readdirSync(scratch.path).filter((f) => f.includes("snapdb-restore"))).toEqual([]);
  });

  test("non-empty without clean → 409; clean replaces a changed file; targetDatabase → 400", async () => {
    const copy = await target("copy2.db");
    await restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id });
    const db = new Database(copy.path);
    db.run("DELETE FROM things WHERE id > 10; CREATE TABLE extra (x)");
    db.close();
    const changed = readFileSync(copy.path);
    expect((await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDataSourceId: copy.id } })).status).toBe(409);
    expect(readFileSync(copy.path).equals(changed)).toBe(true);
    expect((await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDataSourceId: copy.id, targetDatabase: "x" } })).status).toBe(400);
    const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id, clean: true });
    expect(done.status).toBe("succeeded");
    expect(sqliteDumpOf(copy.path)).toBe(original);
  });

  test("cancel mid-restore leaves the target file as it was and removes the temp file", async () => {
    // ~32 MB of random bytes: a restore that takes long enough to be caught running.
    const bigPath = join(scratch.path, "big.db");
    const big = new Database(bigPath);
    big.run("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)");
    big.transaction(() => {
      for (let i = 0; i < 32; i++) big.run("INSERT INTO blobs (data) VALUES (?)", [randomBytes(1 << 20)]);
    })();
    big.close();
    const { job: bigJob } = await backedUp({ engine: "sqlite", path: bigPath });
    const copy = await target("copy3.db");
    const seed = new Database(copy.path);
    seed.run("CREATE TABLE keep (x)");
    seed.close();
    const before = readFileSync(copy.path);
    const queued = await restore({ backupJobId: bigJob.id, targetDataSourceId: copy.id, clean: true });
    // Cancel as soon as bytes flow (live progress), before the file can be renamed into place.
    for (let i = 0; i < 20_000; i++) {
      const now = (await h.call("GET", `/restores/${queued.id}`, { token })).body;
      if (now.status !== "queued" && (now.progress.bytesRead > 0 || now.status !== "running")) break;
    }
    await must(h, token, "POST", `/restores/${queued.id}/cancel`, undefined, 202);
    const canceled = await waitForStatus(h, token, `/restores/${queued.id}`);
    expect(canceled.status).toBe("canceled");
    expect(canceled.error.message).toContain("the target file is unchanged");
    expect(readFileSync(copy.path).equals(before)).toBe(true);
    expect(readdirSync(scratch.path).filter((f) => f.includes("snapdb-restore"))).toEqual([]);
  });

  test("the wrong age identity → DECRYPT_FAILED, target untouched", async () => {
    const row = (await h.store.db.select().from(orgKeys).where(eq(orgKeys.orgId, ORG)))[0]!;
    const other = await newAgeIdentity();
    const sealed = new SecretBox(h.master).seal(other.identity, ORG_KEY_AAD(ORG));
    await h.store.db.update(orgKeys).set({ identityCiphertext: sealed.ciphertext, identityKeyId: sealed.keyId }).where(eq(orgKeys.orgId, ORG));
    try {
      const fresh = await target("wrong-key.db");
      const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: fresh.id });
      expect(done.status).toBe("failed");
      expect(done.error.code).toBe("DECRYPT_FAILED");
      expect(existsSync(fresh.path)).toBe(false);
    } finally {
      await h.store.db.update(orgKeys).set(row).where(eq(orgKeys.orgId, ORG));
    }
  });

  test("recovery: a restore left running by a crash is failed INTERRUPTED and its temp file removed", async () => {
    const fresh = await target("crashed.db");
    const id = "rst_crashed";
    const tmp = sqliteTempPath(fresh.path, id);
    writeFileSync(tmp, "half a database");
    await h.store.db
      .insert(restores)
      .values({ id, orgId: ORG, backupJobId: job.id, sourceDataSourceId: job.dataSourceId, targetDataSourceId: fresh.id, status: "running", queuedAt: Date.now(), startedAt: Date.now() });
    expect(await recoverInterruptedRestores(h.store.db, silentLogger)).toEqual([id]);
    const row = await must(h, token, "GET", `/restores/${id}`);
    expect(row.status).toBe("failed");
    expect(row.error.code).toBe("INTERRUPTED");
    expect(existsSync(tmp)).toBe(false);
  });

  test("validation: unknown job, deleted file, unknown fields", async () => {
    expect((await h.call("POST", "/restores", { token, body: { backupJobId: "job_nope" } })).body.details[0].path).toBe("/backupJobId");
    expect((await h.call("POST", "/restores", { token, body: { backupJobId: job.id, extra: 1 } })).status).toBe(400);
    expect((await h.call("GET", "/restores?status=weird", { token })).status).toBe(400);
    expect((await h.call("GET", "/restores/rst_nope", { token })).status).toBe(404);
  });
});
