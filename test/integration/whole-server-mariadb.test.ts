import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { orgIdentity } from "../../src/crypto/org-keys.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { backupPolicies, storageDestinations } from "../../src/db/schema.ts";
import { pinTarget } from "../../src/engines/network.ts";
import { mysqlGlobalsSql } from "../../src/engines/whole-server.ts";
import { OutboundPolicy } from "../../src/net/outbound-policy.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { holdMariaDbTableLock, startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { runCommands, wholeServerRestoreCommands } from "../helpers/readme.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { waitFor } from "../helpers/servers.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Whole-server backups of a real MariaDB server (`database: "*"`): every database but the
 * system schemas, plus users, roles and grants (`mariadb-dump --system=users`), restored
 * after everything was dropped, compared with mariadb-dump and SHOW GRANTS of the original.
 */
let h: Harness;
let maria: MariaDbServer;
let s3: S3Server;
let token: string;
let policyId: string;
const ORG = "org_whole_maria";
const ADMIN = { username: "snap_admin", password: "admin-pw-1" };
const LIMITED = { username: "snap_limited", password: "limited-pw-1" };
const DATABASES = ["crm", "shop", "we-ird db"];
const ACCOUNTS = ["'alice'@'%'", "'bob'@'localhost'", "'app_role'"];

const dumpOf = (db: string, server = maria) =>
  Bun.spawnSync(["mariadb-dump", "--no-defaults", `--socket=${server.socket}`, "-uroot", "--default-character-set=utf8mb4", "--skip-dump-date", "--hex-blob", "--routines", "--events", "--", db], {
    stdout: "pipe",
  }).stdout.toString();

const grantsOf = (server = maria) => ACCOUNTS.map((a) => server.sql(`SHOW GRANTS FOR ${a};`)).join("\n");
const charsets = () => maria.sql("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA ORDER BY 1;");
const charsetOf = (db: string, server = maria) => server.sql(`SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${db}';`).trim();
const databases = () => maria.sql("SHOW DATABASES;").trim().split("\n");
const managedRoot = () => (h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "");
/** Every file under a folder of the managed destination (recursively), [] when it is gone. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}
const partNames = (job: any) => job.parts.map((p: any) => p.name);
/** Leaves out every database the seed made, but `keep`. */
const allBut = (...keep: string[]) => ["appdb", ...DATABASES].filter((d) => !keep.includes(d));

beforeAll(async () => {
  [maria, s3] = await Promise.all([startMariaDb(), startS3rver(["backups"])]);
  maria.sql(`CREATE USER '${ADMIN.username}'@'127.0.0.1' IDENTIFIED BY '${ADMIN.password}';
    GRANT ALL ON *.* TO '${ADMIN.username}'@'127.0.0.1' WITH GRANT OPTION;
    GRANT PROXY ON ''@'%' TO '${ADMIN.username}'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER '${LIMITED.username}'@'127.0.0.1' IDENTIFIED BY '${LIMITED.password}';
    GRANT SHOW DATABASES ON *.* TO '${LIMITED.username}'@'127.0.0.1';
    GRANT SELECT ON mysql.* TO '${LIMITED.username}'@'127.0.0.1';
    GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES ON shop.* TO '${LIMITED.username}'@'127.0.0.1';
    CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    CREATE DATABASE crm CHARACTER SET latin1 COLLATE latin1_swedish_ci;
    CREATE DATABASE \`we-ird db\`;
    CREATE ROLE app_role;
    GRANT SELECT ON shop.* TO app_role;
    CREATE USER 'alice'@'%' IDENTIFIED BY 'alice-pw';
    GRANT app_role TO 'alice'@'%';
    SET DEFAULT ROLE app_role FOR 'alice'@'%';
    CREATE USER 'bob'@'localhost' IDENTIFIED BY 'bob-pw';
    GRANT SELECT, INSERT ON crm.* TO 'bob'@'localhost';
    FLUSH PRIVILEGES;`);
  maria.sql(
    `CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(100), price DECIMAL(10,2), at DATETIME(3), body BLOB) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
    INSERT INTO orders (label, price, at, body) SELECT CONCAT('o ', seq, ' ✓'), seq * 1.5, '2024-01-01' + INTERVAL seq MINUTE, UNHEX(MD5(seq)) FROM seq_1_to_400;
    CREATE VIEW cheap AS SELECT id, label FROM orders WHERE price < 10;`,
    "shop",
  );
  maria.sql(
    `CREATE TABLE contacts (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=InnoDB;
    INSERT INTO contacts SELECT seq, CONCAT('n', seq) FROM seq_1_to_100;`,
    "crm",
  );
  maria.sql(`GRANT INSERT ON shop.orders TO 'alice'@'%'; CREATE TABLE t (k INT); INSERT INTO t VALUES (1), (2);`, "we-ird db");
  h = await createHarness();
  await h.runner.start();
  token = await h.token(ORG);
  policyId = (await createPolicy(h, token, (await managedDestination(h, token)).id)).id;
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await maria?.stop();
  await s3?.close();
});

const serverSource = (extra: Record<string, unknown> = {}, creds = ADMIN) => createSource(h, token, { engine: "mariadb", host: maria.host, port: maria.port, database: "*", ...extra }, creds);

describe("whole-server MariaDB backups", () => {
  test("every database (no system schemas) and the users, roles and grants; after dropping them all a restore brings them back", async () => {
    const source = await serverSource();
    await attach(h, token, source.id, policyId);
    const before = { dumps: DATABASES.map((d) => dumpOf(d)), grants: grantsOf(), charsets: charsets() };
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    expect(job.parts.map((p: any) => p.name)).toEqual([":globals", "appdb", "crm", "shop", "we-ird db"]);
    expect(job.parts[0].objectKey).toMatch(/\/globals\.sql\.zst\.age$/);
    expect(job.parts.find((p: any) => p.name === "we-ird db").objectKey).toMatch(/\/dbx-[A-Za-z0-9_-]+\.sql\.zst\.age$/);

    maria.sql("DROP DATABASE shop; DROP DATABASE crm; DROP DATABASE `we-ird db`; DROP DATABASE appdb; DROP USER 'alice'@'%'; DROP USER 'bob'@'localhost'; DROP ROLE app_role;");
    expect(databases()).not.toContain("shop");

    const restore = await waitForStatus(h, token, `/restores/${(await must(h, token, "POST", "/restores", { backupJobId: job.id }, 202)).id}`);
    expect(restore.error).toBeNull();
    expect(restore.status).toBe("succeeded");
    // root, mariadb.sys and the login itself existed: tolerated and said so.
    expect(restore.notes.join(" ")).toContain("snap_admin");
    expect({ dumps: DATABASES.map((d) => dumpOf(d)), grants: grantsOf(), charsets: charsets() }).toEqual(before);

    const verified = await must(h, token, "POST", `/backup-jobs/${job.id}/verify?part=crm`);
    expect(verified.ok).toBe(true);
  }, 120_000);

  test("verify lists the databases and flags those the login may list but not read", async () => {
    const ok = await must(h, token, "POST", `/data-sources/${(await serverSource()).id}/verify`);
    expect(ok).toMatchObject({ ok: true, databases: ["appdb", "crm", "shop", "we-ird db"], unreadable: [] });
    const limited = await must(h, token, "POST", `/data-sources/${(await serverSource({}, LIMITED)).id}/verify`);
    expect(limited).toMatchObject({ ok: false, error: { code: "DATABASE_UNREADABLE" }, unreadable: ["appdb", "crm", "we-ird db"] });
    const excluded = await must(h, token, "POST", `/data-sources/${(await serverSource({ excludeDatabases: ["appdb", "crm", "we-*"] }, LIMITED)).id}/verify`);
    expect(excluded).toMatchObject({ ok: true, databases: ["shop"], unreadable: [] });
    // A login that may not read the mysql tables cannot dump the users: the globals part is flagged.
    maria.sql(`CREATE USER 'snap_nousers'@'127.0.0.1' IDENTIFIED BY 'pw-3'; GRANT SELECT ON shop.* TO 'snap_nousers'@'127.0.0.1';`);
    const noUsers = await must(h, token, "POST", `/data-sources/${(await serverSource({}, { username: "snap_nousers", password: "pw-3" })).id}/verify`);
    expect(noUsers).toMatchObject({ ok: false, error: { code: "DATABASE_UNREADABLE" }, databases: ["shop"], unreadable: [":globals"] });
  }, 60_000);

  test("a database the login cannot read fails the job, and nothing of it stays stored", async () => {
    const source = await serverSource({}, LIMITED);
    await attach(h, token, source.id, policyId);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("failed");
    expect(job.error.message).toContain('database "appdb"');
    const left: string[] = [];
    const managed = (await h.store.db.select().from(storageDestinations).where(eq(storageDestinations.kind, "managed")))[0]!;
    for await (const o of h.storage.driverFor(managed).list(job.objectKey)) left.push(o.key);
    expect(left).toEqual([]);
  }, 60_000);

  test("to S3: every part is an object under the job's folder; a failed job leaves none, a deleted file takes them all", async () => {
    const dst = await must(
      h,
      token,
      "POST",
      "/storage-destinations",
      {
        kind: "s3",
        name: "byo-whole",
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: "backups",
        prefix: "srv",
        forcePathStyle: true,
        auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      },
      201,
    );
    const policy = await createPolicy(h, token, dst.id);
    const keys = async (prefix: string) => {
      const out: string[] = [];
      const dest = (await h.store.db.select().from(storageDestinations).where(eq(storageDestinations.id, dst.id)))[0]!;
      for await (const o of h.storage.driverFor(dest).list(prefix)) out.push(o.key);
      return out;
    };
    const good = await serverSource();
    await attach(h, token, good.id, policy.id);
    const job = await backupNow(h, token, good.id);
    expect(job.status).toBe("succeeded");
    expect(job.objectKey.startsWith("srv/")).toBe(true);
    expect((await keys(job.objectKey)).sort()).toEqual(job.parts.map((p: any) => p.objectKey).sort());
    await must(h, token, "DELETE", `/backup-jobs/${job.id}/file`, undefined, 204);
    expect(await keys(job.objectKey)).toEqual([]);

    const bad = await serverSource({}, LIMITED);
    await attach(h, token, bad.id, policy.id);
    const failed = await backupNow(h, token, bad.id);
    expect(failed.status).toBe("failed");
    expect(failed.parts[0].sha256).toMatch(/^[0-9a-f]{64}$/); // the globals had been stored
    expect(await keys(failed.objectKey)).toEqual([]);
  }, 60_000);

  test("without mariadb-dump --system, users and grants are written from SHOW CREATE USER / SHOW GRANTS and restore the same", async () => {
    const target = await pinTarget({ engine: "mariadb", host: maria.host, port: maria.port, database: "*", path: null, options: {}, credentials: ADMIN }, OutboundPolicy.fromConfig(h.config.network));
    const sql = await mysqlGlobalsSql(target);
    expect(sql).not.toContain("mariadb.sys");
    expect(sql).toContain("CREATE USER `alice`@`%` IDENTIFIED BY PASSWORD");
    const before = grantsOf();
    maria.sql("DROP USER 'alice'@'%'; DROP USER 'bob'@'localhost'; DROP ROLE app_role;");
    const r = Bun.spawnSync(["mariadb", "--no-defaults", `--socket=${maria.socket}`, "-uroot", "--force"], { stdin: Buffer.from(sql), stdout: "pipe", stderr: "pipe" });
    // Only the accounts that exist (root, the logins) may complain.
    for (const line of r.stderr
      .toString()
      .split("\n")
      .filter((l) => l.startsWith("ERROR")))
      expect(line).toMatch(/ERROR 1396 .*Operation CREATE USER failed/);
    expect(grantsOf()).toBe(before);
  }, 60_000);
  test("databases are found at each run: one created since is in, excluded ones (names and globs) are out", async () => {
    const source = await serverSource({ excludeDatabases: ["crm", "we-*", "app?b"] });
    await attach(h, token, source.id, policyId);
    const first = await backupNow(h, token, source.id);
    expect(first.status).toBe("succeeded");
    expect(partNames(first)).toEqual([":globals", "shop"]);
    maria.sql("CREATE DATABASE newcomer; CREATE DATABASE `we-new`; CREATE DATABASE appxb; CREATE DATABASE APPDB2;");
    try {
      const second = await backupNow(h, token, source.id);
      expect(second.status).toBe("succeeded");
      // `we-*` and `app?b` (exactly one character) keep the new `we-new` and `appxb` out; globs match whole names only.
      expect(partNames(second)).toEqual([":globals", "APPDB2", "newcomer", "shop"]);
    } finally {
      maria.sql("DROP DATABASE newcomer; DROP DATABASE `we-new`; DROP DATABASE appxb; DROP DATABASE APPDB2;");
    }
  }, 60_000);

  test("a table locked past the policy's timeout fails the job with TIMEOUT: no part is left (not the ones already stored), no dump left waiting", async () => {
    maria.sql("CREATE DATABASE aa_ok; CREATE DATABASE zz_locked;");
    maria.sql("CREATE TABLE a (x INT) ENGINE=InnoDB; INSERT INTO a VALUES (1), (2);", "aa_ok");
    maria.sql("CREATE TABLE t (x INT) ENGINE=InnoDB; INSERT INTO t VALUES (1);", "zz_locked");
    const dumpsOnLocked = () => Number(maria.sql(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '${ADMIN.username}' AND DB = 'zz_locked';`).trim());
    const release = await holdMariaDbTableLock(maria, "zz_locked", "t");
    try {
      const source = await serverSource({ excludeDatabases: allBut() });
      const slow = await createPolicy(h, token, (await managedDestination(h, token)).id);
      // The API's floor is 60 s; the runner honours whatever the row says, so shorten it here.
      await h.store.db.update(backupPolicies).set({ timeoutSeconds: 3 }).where(eq(backupPolicies.id, slow.id));
      await attach(h, token, source.id, slow.id);
      const job = await backupNow(h, token, source.id);
      expect(job.status).toBe("failed");
      expect(job.error.code).toBe("TIMEOUT");
      expect(partNames(job)).toEqual([":globals", "aa_ok", "zz_locked"]);
      // The globals and aa_ok had been stored before zz_locked's dump waited on the lock.
      for (const name of [":globals", "aa_ok"]) expect(job.parts.find((p: any) => p.name === name).sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(job.parts.find((p: any) => p.name === "zz_locked").sha256).toBeNull();
      expect(filesUnder(join(managedRoot(), job.objectKey))).toEqual([]);
      expect(existsSync(join(managedRoot(), job.objectKey))).toBe(false);
      // The lock is still held: the dump's connection is gone, not left waiting on it.
      await waitFor("no dump connection on zz_locked", () => dumpsOnLocked() === 0, 5_000);
    } finally {
      await release();
      maria.sql("DROP DATABASE aa_ok; DROP DATABASE zz_locked;");
    }
  }, 60_000);

  test("with a mariadb-dump that has no --system, a job writes the users and grants from SHOW CREATE USER / SHOW GRANTS, and its restore brings them back", async () => {
    // A stand-in first on the daemon's PATH: mariadb-dump as releases without --system are
    // (its --help does not offer it, and it refuses it); anything else goes to the real one.
    const bin = tempDir("snapdb-no-system");
    const real = Bun.which("mariadb-dump")!;
    writeFileSync(
      join(bin.path, "mariadb-dump"),
      `#!/bin/sh
for a in "$@"; do
  case "$a" in
    --system=*) echo "mariadb-dump: unknown option '--system'" >&2; exit 7 ;;
    --help) "${real}" "$@" | grep -v -e '--system='; exit 0 ;;
  esac
done
exec "${real}" "$@"
`,
      { mode: 0o755 },
    );
    const hs = await createHarness({}, { toolPath: `${bin.path}:${process.env.PATH}` });
    await hs.runner.start();
    try {
      const tok = await hs.token(ORG);
      const plain = await createPolicy(hs, tok, (await managedDestination(hs, tok)).id, { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } });
      const source = await createSource(hs, tok, { engine: "mariadb", host: maria.host, port: maria.port, database: "*", excludeDatabases: allBut("crm") }, ADMIN);
      await attach(hs, tok, source.id, plain.id);
      const job = await backupNow(hs, tok, source.id);
      expect(job.error).toBeNull();
      expect(partNames(job)).toEqual([":globals", "crm"]);
      const root = hs.config.managedStorage.type === "local" ? hs.config.managedStorage.path : "";
      const globals = readFileSync(join(root, job.parts[0].objectKey), "utf8");
      expect(globals.split("\n")[0]).toBe("-- users, roles and grants, written by snapdb");
      expect(globals).toContain("CREATE USER `alice`@`%` IDENTIFIED BY PASSWORD");
      expect(globals).toContain("GRANT SELECT, INSERT ON `crm`.* TO `bob`@`localhost`");
      expect(globals).not.toContain("mariadb.sys");

      const before = { grants: grantsOf(), crm: dumpOf("crm"), charset: charsetOf("crm") };
      maria.sql("DROP DATABASE crm; DROP USER 'alice'@'%'; DROP USER 'bob'@'localhost'; DROP ROLE app_role;");
      const restore = await waitForStatus(hs, tok, `/restores/${(await must(hs, tok, "POST", "/restores", { backupJobId: job.id }, 202)).id}`);
      expect(restore.error).toBeNull();
      expect(restore.status).toBe("succeeded");
      expect({ grants: grantsOf(), crm: dumpOf("crm"), charset: charsetOf("crm") }).toEqual(before);
    } finally {
      await hs.runner.stop(1000);
      hs.close();
      bin.cleanup();
    }
  }, 60_000);
});

describe("whole-server MariaDB restores: refusals and clean", () => {
  test("a non-empty database on the target is a 409 naming it, unless clean, which replaces it (rows back, a table the backup lacks gone); databases picks which", async () => {
    const source = await serverSource({ excludeDatabases: allBut("crm", "shop") });
    await attach(h, token, source.id, policyId);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    expect(partNames(job)).toEqual([":globals", "crm", "shop"]);
    // What a restore creates each database with, on the job as stored.
    expect(job.parts.find((p: any) => p.name === "shop")).toMatchObject({ charset: "utf8mb4", collation: "utf8mb4_unicode_ci" });
    expect(job.parts.find((p: any) => p.name === "crm")).toMatchObject({ charset: "latin1", collation: "latin1_swedish_ci" });
    expect(job.parts[0]).not.toHaveProperty("charset");

    const refused = await h.call("POST", "/restores", { token, body: { backupJobId: job.id } });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toContain('"crm", "shop"');
    const one = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, databases: ["shop"] } });
    expect(one.status).toBe(409);
    expect(one.body.message).toContain('"shop"');
    expect(one.body.message).not.toContain('"crm"');
    const unknown = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, databases: ["shop", "nope"] } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.details[0].path).toBe("/databases/1");

    const before = { shop: dumpOf("shop"), crm: dumpOf("crm"), grants: grantsOf() };
    maria.sql("DELETE FROM orders WHERE id > 10; CREATE TABLE extra (k INT); INSERT INTO extra VALUES (1);", "shop");
    maria.sql("DELETE FROM contacts WHERE id > 50;", "crm");
    const crmChanged = dumpOf("crm");
    const r = await must(h, token, "POST", "/restores", { backupJobId: job.id, databases: ["shop"], clean: true }, 202);
    expect(r.databases).toEqual(["shop"]);
    const done = await waitForStatus(h, token, `/restores/${r.id}`);
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(dumpOf("shop")).toBe(before.shop);
    expect(maria.sql("SHOW TABLES LIKE 'extra';", "shop").trim()).toBe("");
    // crm was left out: untouched.
    expect(dumpOf("crm")).toBe(crmChanged);
    expect(grantsOf()).toBe(before.grants);

    const all = await must(h, token, "POST", "/restores", { backupJobId: job.id, clean: true }, 202);
    expect((await waitForStatus(h, token, `/restores/${all.id}`)).status).toBe("succeeded");
    expect({ shop: dumpOf("shop"), crm: dumpOf("crm"), grants: grantsOf() }).toEqual(before);
  }, 60_000);
});

describe("the README's by-hand restore of a whole-server backup", () => {
  let maria2: MariaDbServer;
  beforeAll(async () => {
    // A new server, as after losing the old one.
    maria2 = await startMariaDb();
  }, 120_000);
  afterAll(async () => {
    await maria2?.stop();
  });

  test("its MySQL/MariaDB commands, run as written in the backup's folder onto a new server, bring back the users, grants and the database with its charset and collation", async () => {
    const { mysql: commands } = wholeServerRestoreCommands();
    expect(commands.length).toBeGreaterThan(2);
    const source = await serverSource({ excludeDatabases: allBut("shop") });
    await attach(h, token, source.id, policyId);
    const job = await backupNow(h, token, source.id);
    expect(job.status).toBe("succeeded");
    // The README's files are this job's: the globals and shop, zstd then age.
    expect(job.parts.map((p: any) => p.objectKey.split("/").pop())).toEqual(["globals.sql.zst.age", "db-shop.sql.zst.age"]);
    // The README creates shop with the charset and collation its part records, which are the server's...
    const shop = job.parts.find((p: any) => p.name === "shop");
    expect(
      commands
        .join("\n")
        .match(/CREATE DATABASE `shop` CHARACTER SET (\w+) COLLATE (\w+)'/)
        ?.slice(1),
    ).toEqual([shop.charset, shop.collation]);
    expect(`${shop.charset}\t${shop.collation}`).toBe(charsetOf("shop"));
    // ...and not the new server's defaults, which a plain CREATE DATABASE would give it.
    maria2.sql("CREATE DATABASE probe;");
    expect(charsetOf("probe", maria2)).not.toBe(charsetOf("shop"));
    maria2.sql("DROP DATABASE probe;");

    const home = tempDir("snapdb-readme");
    try {
      writeFileSync(join(home.path, "snapdb-acme.key"), `${await orgIdentity(h.store.db, new SecretBox(h.master), ORG)}\n`, { mode: 0o600 });
      // "as an admin": the new server's root, from the reader's ~/.my.cnf.
      writeFileSync(join(home.path, ".my.cnf"), `[client]\nsocket=${maria2.socket}\nuser=root\n`, { mode: 0o600 });
      const ran = runCommands(commands, join(managedRoot(), job.objectKey), { PATH: process.env.PATH!, HOME: home.path });
      for (const r of ran) {
        if (!r.command.includes("--force")) {
          expect({ command: r.command, exitCode: r.exitCode, stderr: r.stderr }).toEqual({ command: r.command, exitCode: 0, stderr: "" });
          continue;
        }
        // --force goes on past users that exist (root, the new server's own) and, the first
        // time, grants on tables that are not there yet (it shows each failed statement
        // between dashes); nothing else fails.
        for (const line of r.stderr.split("\n").filter((l) => l.startsWith("ERROR")))
          expect(line).toMatch(/^ERROR (1396 \(HY000\) at line \d+: Operation CREATE (USER|ROLE) failed|1146 \(42S02\) at line \d+: Table 'shop\.orders' doesn't exist)/);
      }
      expect(ran.at(-1)!.stderr).not.toContain("ERROR 1146");
      expect(ran[0]!.stderr).toContain("ERROR 1146");
    } finally {
      home.cleanup();
    }
    expect(dumpOf("shop", maria2)).toBe(dumpOf("shop"));
    expect(grantsOf(maria2)).toBe(grantsOf());
    expect(charsetOf("shop", maria2)).toBe(charsetOf("shop"));
  }, 120_000);
});
