import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { createHash } from "node:crypto";
import { newAgeIdentity } from "../../src/crypto/age.ts";
import { ORG_KEY_AAD, orgIdentity } from "../../src/crypto/org-keys.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { backupJobs, orgKeys } from "../../src/db/schema.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { targetOf } from "../../src/modules/data-sources/credentials.ts";
import { createRunner } from "../../src/runner/create.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

// Restores of zstd backups run as one chain of tools (`age -d | zstd -d | pg_restore`), the
// daemon feeding the stored file in and checking its sha256 on the way. These tests look at
// the chain from outside: the daemon's log line, the tools' /proc entries while they run,
// the target database, and the files left behind.

let h: Harness;
let pg: PgServer;
let maria: MariaDbServer;
let token: string;
let zstdAge: any;
let zstdOnly: any;
let gzipAge: any;
const ORG = "org_rchain";

const managedFile = (key: string) => join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", key);
const logOf = (restoreId: string, msg: string) => h.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === msg && l.restoreId === restoreId);

function run(argv: string[], env: Record<string, string> = {}): string {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH!, ...env }, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv[0]} failed: ${r.stderr}`);
  return r.stdout.toString();
}

const pgDumpOf = (db: string) =>
  run([join(pg.binDir, "pg_dump"), "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "--no-owner", "--no-privileges", db], { PGPASSWORD: pg.password })
    .split("\n")
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join("\n");

const restore = (body: Record<string, unknown>) => must(h, token, "POST", "/restores", body, 202);
const restoreAndWait = async (body: Record<string, unknown>) => waitForStatus(h, token, `/restores/${(await restore(body)).id}`);

/** This process's children (the tools: setpriv execs them, so they keep its pid) with their argv. */
function children(): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid) continue;
      out.push({ pid: Number(name), argv: readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").filter(Boolean) });
    } catch {}
  }
  return out;
}

/** Every regular file under `dir` whose bytes contain `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    try {
      if (statSync(path).isFile() && readFileSync(path).includes(needle)) found.push(path);
    } catch {}
  }
  return found;
}

/** The stored file changed in place, its recorded sha256 and size made to match: a backup that was bad when written. */
async function storeAsRecorded(job: any, change: (bytes: Buffer) => void): Promise<() => void> {
  const file = managedFile(job.objectKey);
  const original = readFileSync(file);
  const bytes = Buffer.from(original);
  change(bytes);
  writeFileSync(file, bytes);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await h.store.db.update(backupJobs).set({ sha256, storedBytes: bytes.length }).where(eq(backupJobs.id, job.id));
  return async () => {
    writeFileSync(file, original);
    await h.store.db.update(backupJobs).set({ sha256: job.sha256, storedBytes: job.storedBytes }).where(eq(backupJobs.id, job.id));
  };
}

/** The org's identity swapped for a stranger's (the backups were encrypted to the real one). */
async function withStrangerIdentity<T>(work: () => Promise<T>): Promise<T> {
  const row = (await h.store.db.select().from(orgKeys).where(eq(orgKeys.orgId, ORG)))[0]!;
  const other = await newAgeIdentity();
  const sealed = new SecretBox(h.master).seal(other.identity, ORG_KEY_AAD(ORG));
  await h.store.db.update(orgKeys).set({ identityCiphertext: sealed.ciphertext, identityKeyId: sealed.keyId }).where(eq(orgKeys.orgId, ORG));
  try {
    return await work();
  } finally {
    await h.store.db.update(orgKeys).set(row).where(eq(orgKeys.orgId, ORG));
  }
}

beforeAll(async () => {
  [pg, maria] = await Promise.all([startPostgres(), startMariaDb()]);
  h = await createHarness({ SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "2" });
  await h.runner.start();
  token = await h.token(ORG);
  const managed = await managedDestination(h, token);
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB; CREATE DATABASE chain_copy OWNER ${pg.user};`);
  // ~5 MB of hex that compresses about 2:1: the stored file is larger than the pipes between
  // the tools, so they are all still running while pg_restore waits on a lock.
  pg.psql(
    `SET ROLE ${pg.user};
    CREATE TABLE lines (id int PRIMARY KEY, body text NOT NULL);
    INSERT INTO lines SELECT g, md5(random()::text) || md5(random()::text) FROM generate_series(1, 80000) g;
    CREATE INDEX lines_body ON lines (body);
    CREATE TABLE tiny (id int PRIMARY KEY REFERENCES lines(id));
    INSERT INTO tiny VALUES (1), (2);`,
    pg.database,
  );
  const source = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
  const policy = async (extra: Record<string, unknown>) => {
    const p = await createPolicy(h, token, managed.id, extra);
    await attach(h, token, source.id, p.id);
    return p.id as string;
  };
  const ids = [await policy({}), await policy({ encryption: { enabled: false, recipients: [] } }), await policy({ compression: { algorithm: "gzip", level: 6 } })];
  const jobs: any[] = [];
  for (const id of ids) jobs.push(await backupNow(h, token, source.id, id));
  [zstdAge, zstdOnly, gzipAge] = jobs;
  for (const job of jobs) expect(job.status).toBe("succeeded");
  expect(zstdAge.format).toMatchObject({ compression: "zstd", encrypted: true });
  expect(zstdOnly.format).toMatchObject({ compression: "zstd", encrypted: false });
  expect(gzipAge.format).toMatchObject({ compression: "gzip", encrypted: true });
}, 180_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([pg?.stop(), maria?.stop()]);
});

describe("restore chain: PostgreSQL", () => {
  let original: string;
  let copy: any;
  beforeAll(async () => {
    original = pgDumpOf(pg.database);
    copy = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: "chain_copy" }, { username: pg.user, password: pg.password });
  });

  test.each([
    ["zstd + age: age -d | zstd -d | pg_restore", () => zstdAge],
    ["zstd: zstd -d | pg_restore", () => zstdOnly],
  ])("%s runs as a chain of tools; the restored database equals the source, progress is exact", async (_, job) => {
    const done = await restoreAndWait({ backupJobId: job().id, targetDatabase: `chain_${job().format.encrypted ? "age" : "zstd"}` });
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(logOf(done.id, "restore succeeded")?.pipeline).toBe("tools");
    expect(done.progress).toEqual({ bytesRead: job().storedBytes, bytesWritten: job().sizeBytes });
    expect(pgDumpOf(done.targetDatabase)).toBe(original);
  });

  test("gzip backups are decoded by the daemon, as before", async () => {
    const done = await restoreAndWait({ backupJobId: gzipAge.id, targetDatabase: "chain_gzip" });
    expect(done.status).toBe("succeeded");
    expect(logOf(done.id, "restore succeeded")?.pipeline).toBe("daemon");
    expect(pgDumpOf("chain_gzip")).toBe(original);
  });

  test("the identity is in no tool's argv or environment while the chain runs (age reads it from an anonymous memory file) and in no file afterwards", async () => {
    const identity = (await orgIdentity(h.store.db, new SecretBox(h.master), ORG))!;
    expect(identity).toStartWith("AGE-SECRET-KEY-1");
    pg.psql("DROP TABLE IF EXISTS tiny, lines;", "chain_copy");
    pg.psql(`SET ROLE ${pg.user}; CREATE TABLE lines (id int PRIMARY KEY, body text); INSERT INTO lines VALUES (1, 'old');`, "chain_copy");
    // pg_restore --clean waits at its first DROP while a reader holds the table: the chain is caught running.
    const release = await holdTableLock(pg, "chain_copy", "lines", "ACCESS SHARE");
    try {
      const queued = await restore({ backupJobId: zstdAge.id, targetDataSourceId: copy.id, clean: true });
      let tools: { pid: number; argv: string[] }[] = [];
      const named = (name: string) => tools.find((t) => t.argv[0]?.endsWith(`/${name}`) || t.argv[0] === name);
      for (let i = 0; i < 400 && !(named("age") && named("zstd") && named("pg_restore")); i++) {
        await Bun.sleep(25);
        tools = children();
      }
      const [age, zstd, pgRestore] = [named("age"), named("zstd"), named("pg_restore")];
      expect(age?.argv.slice(1)).toEqual(["--decrypt", "-i", "-", "/dev/fd/3"]);
      expect(zstd?.argv.slice(1)).toEqual(["-d", "-v", "-c"]);
      expect(pgRestore).toBeDefined();
      for (const tool of [age!, zstd!, pgRestore!]) {
        expect(readFileSync(`/proc/${tool.pid}/cmdline`, "utf8")).not.toContain(identity);
        expect(readFileSync(`/proc/${tool.pid}/environ`, "utf8")).not.toContain(identity);
        expect(readFileSync(`/proc/${tool.pid}/cmdline`, "utf8")).not.toContain(pg.password);
      }
      // age's stdin is memory (memfd) or a pipe, never a file on a filesystem; its input is the daemon's pipe.
      expect(readlinkSync(`/proc/${age!.pid}/fd/0`)).toMatch(/^(\/memfd:|pipe:|socket:)/);
      expect(readlinkSync(`/proc/${age!.pid}/fd/3`)).toEndWith("(deleted)");
      expect((await must(h, token, "GET", `/restores/${queued.id}`)).status).toBe("running");
      await release();
      const done = await waitForStatus(h, token, `/restores/${queued.id}`);
      expect(done.status).toBe("succeeded");
      expect(logOf(done.id, "restore succeeded")?.pipeline).toBe("tools");
      expect(pgDumpOf("chain_copy")).toBe(original);
    } finally {
      await release();
    }
    expect(filesHolding(h.dataDir, identity)).toEqual([]);
    expect(h.logLines.join("\n")).not.toContain(identity);
    // No pipe directory or probe file stays in the scratch dir.
    const scratch = join(h.dataDir, "tmp");
    expect(existsSync(scratch) ? readdirSync(scratch) : []).toEqual([]);
  });

  const tinyCopy = () => {
    pg.psql("DROP TABLE IF EXISTS tiny, lines;", "chain_copy");
    pg.psql(`SET ROLE ${pg.user}; CREATE TABLE lines (id int PRIMARY KEY, body text); INSERT INTO lines VALUES (1, 'keep me');`, "chain_copy");
    return pgDumpOf("chain_copy");
  };

  test.each([
    ["zstd + age, a byte in the middle", () => zstdAge, (n: number) => Math.floor(n / 2)],
    ["zstd + age, the last byte", () => zstdAge, (n: number) => n - 1],
    ["zstd, a byte in the middle", () => zstdOnly, (n: number) => Math.floor(n / 2)],
    ["zstd, the last byte", () => zstdOnly, (n: number) => n - 1],
  ])("one flipped byte (%s) → CHECKSUM_MISMATCH through the chain, the target unchanged", async (_, job, at) => {
    const before = tinyCopy();
    const file = managedFile(job().objectKey);
    const bytes = readFileSync(file);
    const i = at(bytes.length);
    bytes[i] = bytes[i]! ^ 0x40;
    writeFileSync(file, bytes);
    try {
      const done = await restoreAndWait({ backupJobId: job().id, targetDataSourceId: copy.id, clean: true });
      expect(done.status).toBe("failed");
      expect(done.error.code).toBe("CHECKSUM_MISMATCH");
      expect(done.error.message).toContain("rolled it back");
      expect(logOf(done.id, "restore failed")?.pipeline).toBe("tools");
      expect(pgDumpOf("chain_copy")).toBe(before);
    } finally {
      bytes[i] = bytes[i]! ^ 0x40;
      writeFileSync(file, bytes);
    }
  });

  test("an identity that does not open the file → DECRYPT_FAILED, the target unchanged", async () => {
    const before = tinyCopy();
    const done = await withStrangerIdentity(() => restoreAndWait({ backupJobId: zstdAge.id, targetDataSourceId: copy.id, clean: true }));
    expect(done.status).toBe("failed");
    expect(done.error.code).toBe("DECRYPT_FAILED");
    expect(logOf(done.id, "restore failed")?.pipeline).toBe("tools");
    expect(pgDumpOf("chain_copy")).toBe(before);
  });

  test("age failing inside the chain (a payload that does not authenticate, though its checksum is the recorded one) → DECRYPT_FAILED, the target unchanged", async () => {
    const before = tinyCopy();
    const restoreFile = await storeAsRecorded(zstdAge, (bytes) => {
      const i = Math.floor(bytes.length / 2);
      bytes[i] = bytes[i]! ^ 0x01;
    });
    try {
      const done = await restoreAndWait({ backupJobId: zstdAge.id, targetDataSourceId: copy.id, clean: true });
      expect(done.status).toBe("failed");
      expect(done.error.code).toBe("DECRYPT_FAILED");
      expect(done.error.message).toContain("age");
      expect(logOf(done.id, "restore failed")?.pipeline).toBe("tools");
      expect(pgDumpOf("chain_copy")).toBe(before);
    } finally {
      restoreFile();
    }
  });

  test("zstd failing inside the chain (not a zstd frame, though its checksum is the recorded one) → DECOMPRESS_FAILED, not pg_restore's error", async () => {
    const before = tinyCopy();
    const restoreFile = await storeAsRecorded(zstdOnly, (bytes) => bytes.fill(0x41, 0, 4));
    try {
      const done = await restoreAndWait({ backupJobId: zstdOnly.id, targetDataSourceId: copy.id, clean: true });
      expect(done.status).toBe("failed");
      expect(done.error.code).toBe("DECOMPRESS_FAILED");
      expect(done.error.message).toContain("zstd");
      expect(pgDumpOf("chain_copy")).toBe(before);
    } finally {
      restoreFile();
    }
  });

  test("pg_restore failing is RESTORE_FAILED with its own stderr, not the broken pipes it leaves upstream", async () => {
    pg.psql(`CREATE DATABASE chain_clash OWNER ${pg.user};`);
    // Not a relation, so the target counts as empty; pg_restore's CREATE TABLE tiny then fails on it.
    pg.psql(`SET ROLE ${pg.user}; CREATE TYPE tiny AS ENUM ('x');`, "chain_clash");
    const done = await restoreAndWait({ backupJobId: zstdAge.id, targetDatabase: "chain_clash" });
    expect(done.status).toBe("failed");
    expect(done.error.code).toBe("RESTORE_FAILED");
    expect(done.error.message).toContain("pg_restore");
    expect(done.error.message).toContain("already exists");
    expect(done.error.message).not.toContain(pg.password);
    expect(done.error.message).toContain("rolled it back");
    expect(logOf(done.id, "restore failed")?.pipeline).toBe("tools");
    expect(pg.psql("SELECT count(*) FROM pg_class WHERE relname = 'lines';", "chain_clash").trim()).toBe("0");
  });

  test("without age on the tools' PATH the daemon decrypts, as before", async () => {
    const bin = tempDir("rchain-no-age");
    for (const tool of ["zstd", "mkfifo", "setpriv"]) symlinkSync(Bun.which(tool)!, join(bin.path, tool));
    symlinkSync(join(pg.binDir, "pg_restore"), join(bin.path, "pg_restore"));
    const lines: string[] = [];
    const secrets = new SecretBox(h.master);
    const noAge = createRunner({
      db: h.store.db,
      config: h.config,
      secrets,
      storage: h.storage,
      logger: createLogger("debug", {}, (l) => lines.push(l)),
      targetOf: (row) => targetOf(row, secrets),
      toolPath: bin.path,
    });
    await h.runner.stop(1000);
    await noAge.start();
    try {
      const queued = await restore({ backupJobId: zstdAge.id, targetDatabase: "chain_no_age" });
      await noAge.wake();
      const done = await waitForStatus(h, token, `/restores/${queued.id}`);
      expect(done.status).toBe("succeeded");
      const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "restore succeeded" && l.restoreId === done.id);
      expect(logged?.pipeline).toBe("daemon");
      expect(pgDumpOf("chain_no_age")).toBe(original);
    } finally {
      await noAge.stop(1000);
      await h.runner.start();
      bin.cleanup();
    }
  });
});

describe("restore chain: MariaDB", () => {
  let job: any;
  let copy: any;
  const dumpOf = (db: string) => run(["mariadb-dump", "--no-defaults", `--socket=${maria.socket}`, "-uroot", "--skip-dump-date", "--compact", "--hex-blob", db]);
  beforeAll(async () => {
    maria.sql(`GRANT ALL ON *.* TO '${maria.user}'@'127.0.0.1'; GRANT ALL ON *.* TO '${maria.user}'@'localhost'; FLUSH PRIVILEGES; CREATE DATABASE chain_copy;`);
    maria.sql("CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(100)) DEFAULT CHARSET=utf8mb4; INSERT INTO items SELECT seq, CONCAT('item ', seq, ' ✓') FROM seq_1_to_20000;", maria.database);
    const creds = { username: maria.user, password: maria.password };
    const source = await createSource(h, token, { engine: "mariadb", host: maria.host, port: maria.port, database: maria.database }, creds);
    const managed = await managedDestination(h, token);
    const policy = await createPolicy(h, token, managed.id);
    await attach(h, token, source.id, policy.id);
    job = await backupNow(h, token, source.id, policy.id);
    expect(job.status).toBe("succeeded");
    copy = await createSource(h, token, { engine: "mariadb", host: maria.host, port: maria.port, database: "chain_copy" }, creds);
  }, 60_000);

  test("zstd + age: age -d | zstd -d | mariadb runs as a chain of tools", async () => {
    const done = await restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id });
    expect(done.status).toBe("succeeded");
    expect(logOf(done.id, "restore succeeded")?.pipeline).toBe("tools");
    expect(done.progress.bytesWritten).toBe(job.sizeBytes);
    expect(dumpOf("chain_copy")).toBe(dumpOf(maria.database));
  });

  test("an identity that does not open the file fails before clean drops anything", async () => {
    maria.sql("UPDATE items SET label = 'changed' WHERE id = 1;", "chain_copy");
    const before = dumpOf("chain_copy");
    const done = await withStrangerIdentity(() => restoreAndWait({ backupJobId: job.id, targetDataSourceId: copy.id, clean: true }));
    expect(done.status).toBe("failed");
    expect(done.error.code).toBe("DECRYPT_FAILED");
    expect(done.error.message).toContain("was not changed");
    expect(dumpOf("chain_copy")).toBe(before);
  });
});
