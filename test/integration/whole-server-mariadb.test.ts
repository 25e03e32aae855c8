import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { storageDestinations } from "../../src/db/schema.ts";
import { pinTarget } from "../../src/engines/network.ts";
import { mysqlGlobalsSql } from "../../src/engines/whole-server.ts";
import { OutboundPolicy } from "../../src/net/outbound-policy.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";

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

const dumpOf = (db: string) =>
  Bun.spawnSync(["mariadb-dump", "--no-defaults", `--socket=${maria.socket}`, "-uroot", "--default-character-set=utf8mb4", "--skip-dump-date", "--hex-blob", "--routines", "--events", "--", db], {
    stdout: "pipe",
  }).stdout.toString();

const grantsOf = () => ACCOUNTS.map((a) => maria.sql(`SHOW GRANTS FOR ${a};`)).join("\n");
const charsets = () => maria.sql("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA ORDER BY 1;");
const databases = () => maria.sql("SHOW DATABASES;").trim().split("\n");

beforeAll(async () => {
  [maria, s3] = await Promise.all([startMariaDb(), startS3rver(["backups"])]);
  maria.sql(`CREATE USER '${ADMIN.username}'@'127.0.0.1' IDENTIFIED BY '${ADMIN.password}';
    GRANT ALL ON *.* TO '${ADMIN.username}'@'127.0.0.1' WITH GRANT OPTION;
    GRANT PROXY ON ''@'%' TO '${ADMIN.username}'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER '${LIMITED.username}'@'127.0.0.1' IDENTIFIED BY '${LIMITED.password}';
    GRANT SHOW DATABASES ON *.* TO '${LIMITED.username}'@'127.0.0.1';
    GRANT SELECT ON mysql.* TO '${LIMITED.username}'@'127.0.0.1';
    GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES ON shop.* TO '${LIMITED.username}'@'127.0.0.1';
    CREATE DATABASE shop;
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
  maria.sql(`CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(100), price DECIMAL(10,2), at DATETIME(3), body BLOB) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
    INSERT INTO orders (label, price, at, body) SELECT CONCAT('o ', seq, ' ✓'), seq * 1.5, '2024-01-01' + INTERVAL seq MINUTE, UNHEX(MD5(seq)) FROM seq_1_to_400;
    CREATE VIEW cheap AS SELECT id, label FROM orders WHERE price < 10;`, "shop");
  maria.sql(`CREATE TABLE contacts (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=InnoDB;
    INSERT INTO contacts SELECT seq, CONCAT('n', seq) FROM seq_1_to_100;`, "crm");
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

const serverSource = (extra: Record<string, unknown> = {}, creds = ADMIN) =>
  createSource(h, token, { engine: "mariadb", host: maria.host, port: maria.port, database: "*", ...extra }, creds);

describe("whole-server MariaDB backups", () => {
  test("every database (no system schemas) and the users, roles and grants; after dropping them all a restore brings them back", async () => {
    const source = await serverSource();
    await attach(h, token, source.id, policyId);
    const before = { dumps: DATABASES.map(dumpOf), grants: grantsOf(), charsets: charsets() };
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
    expect({ dumps: DATABASES.map(dumpOf), grants: grantsOf(), charsets: charsets() }).toEqual(before);

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
    const dst = await must(h, token, "POST", "/storage-destinations", {
      kind: "s3",
      name: "byo-whole",
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: "backups",
      prefix: "srv",
      forcePathStyle: true,
      auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    }, 201);
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
    const target = await pinTarget(
      { engine: "mariadb", host: maria.host, port: maria.port, database: "*", path: null, options: {}, credentials: ADMIN },
      OutboundPolicy.fromConfig(h.config.network),
    );
    const sql = await mysqlGlobalsSql(target);
    expect(sql).not.toContain("mariadb.sys");
    expect(sql).toContain("CREATE USER `alice`@`%` IDENTIFIED BY PASSWORD");
    const before = grantsOf();
    maria.sql("DROP USER 'alice'@'%'; DROP USER 'bob'@'localhost'; DROP ROLE app_role;");
    const r = Bun.spawnSync(["mariadb", "--no-defaults", `--socket=${maria.socket}`, "-uroot", "--force"], { stdin: Buffer.from(sql), stdout: "pipe", stderr: "pipe" });
    // Only the accounts that exist (root, the logins) may complain.
    for (const line of r.stderr.toString().split("\n").filter((l) => l.startsWith("ERROR"))) expect(line).toMatch(/ERROR 1396 .*Operation CREATE USER failed/);
    expect(grantsOf()).toBe(before);
  }, 60_000);
});
