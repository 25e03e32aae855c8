import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getTableColumns, is } from "drizzle-orm";
import { drizzle as pgDrizzle } from "drizzle-orm/bun-sql";
import { drizzle as liteDrizzle } from "drizzle-orm/bun-sqlite";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { getTableConfig as sqliteTableConfig } from "drizzle-orm/sqlite-core";
import { batchSizeFor, tablesInCopyOrder, type TablePair } from "../../src/cli/copy-to-postgres.ts";
import { maskUrl, scrub } from "../../src/cli/store-copy.ts";
import { ensureOrgRecipient, ORG_KEY_AAD } from "../../src/crypto/org-keys.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import * as pgSchema from "../../src/db/schema-pg.ts";
import * as liteSchema from "../../src/db/schema-sqlite.ts";
import { newId } from "../../src/lib/ids.ts";
import { credentialsAad } from "../../src/modules/data-sources/credentials.ts";
import { migratePg } from "../../src/db/migrate-pg.ts";
import { attach, createPolicy, createSource, must } from "../helpers/api-flow.ts";
import { REPO_ROOT, startDaemon } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";

/**
 * `snapdb store copy --to postgres://…` as an operator runs it (a child process of the CLI)
 * on a data dir the real app filled through its API, into a real PostgreSQL: every table
 * arrives row for row, the password never shows, a non-empty target and a running daemon
 * are refused without writing anything.
 */

const MAIN = join(REPO_ROOT, "src", "main.ts");
const ORG = "acme";
const OTHER = "globex";
const DB_PASSWORD = "cred-pw-Zq9!x"; // a data source's, sealed in the store
const JOBS = 1234; // more than two batches of 500

let pg: PgServer;
let h: Harness;
let configFile: string;
let dbCount = 0;
const clients: SQL[] = [];
const outputs: string[] = [];

function freshDatabase(): string {
  const name = `fleet_${++dbCount}`;
  pg.psql(`CREATE DATABASE ${name} OWNER ${pg.user};`);
  return name;
}

const urlOf = (database: string) => `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${database}`;

function connect(database: string): SQL {
  const client = new SQL({ url: urlOf(database) });
  clients.push(client);
  return client;
}

/** The CLI as an operator on the daemon's host runs it, on this data dir (`--config`, `--data-dir` appended unless `bare`). */
async function snapdb(args: string[], bare = false, extraEnv: Record<string, string> = {}) {
  const env: Record<string, string> = { PATH: process.env.PATH!, HOME: h.dataDir, ...extraEnv };
  const child = Bun.spawn([process.execPath, MAIN, ...args, ...(bare ? [] : ["--config", configFile, "--data-dir", h.dataDir])], { cwd: h.dataDir, env, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  clearTimeout(timer);
  outputs.push(stdout, stderr);
  return { code: await child.exited, stdout, stderr };
}

const pgTableCount = Object.values(pgSchema).filter((v) => is(v, PgTable)).length;

/** The JS keys of a table's primary key, to sort rows by. */
function keyOf(t: TablePair): (row: Record<string, unknown>) => string {
  const config = getTableConfig(t.pg);
  const pk = config.columns.filter((c) => c.primary);
  const cols = pk.length ? pk : config.primaryKeys[0]!.columns;
  const keys = Object.entries(getTableColumns(t.pg))
    .filter(([, c]) => cols.includes(c as never))
    .map(([k]) => k);
  return (row) => JSON.stringify(keys.map((k) => row[k]));
}

const byKey = (t: TablePair, rows: Record<string, unknown>[]) => {
  const key = keyOf(t);
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
};

/** Every table's rows as drizzle reads them from the data dir's store (opened read-only). */
async function sqliteRows(): Promise<Map<string, Record<string, unknown>[]>> {
  const file = new Database(join(h.dataDir, "snapdb.db"), { readonly: true });
  try {
    const db = liteDrizzle({ client: file, schema: liteSchema });
    const out = new Map<string, Record<string, unknown>[]>();
    for (const t of tablesInCopyOrder()) out.set(t.name, byKey(t, await db.select().from(t.lite)));
    return out;
  } finally {
    file.close();
  }
}

async function postgresRows(client: SQL): Promise<Map<string, Record<string, unknown>[]>> {
  const db = pgDrizzle({ client, schema: pgSchema });
  const out = new Map<string, Record<string, unknown>[]>();
  for (const t of tablesInCopyOrder()) out.set(t.name, byKey(t, await db.select().from(t.pg)));
  return out;
}

async function tablesOf(client: SQL): Promise<string[]> {
  const rows = await client`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`;
  return rows.map((r: { table_name: string }) => r.table_name);
}

/** A store as a daemon that has run for a while leaves it: through the API where it can, by the store where only the runner writes. */
async function fillStore(): Promise<void> {
  const token = await h.token(ORG);
  const other = await h.token(OTHER);
  const s3 = await must(
    h,
    token,
    "POST",
    "/storage-destinations",
    {
      kind: "s3",
      name: 'byo "bücket" 🚀',
      bucket: "backups",
      endpoint: "http://127.0.0.1:9",
      auth: { type: "accessKey", accessKeyId: "AKIDEXAMPLE", secretAccessKey: "s3-secret-key-not-printed" },
    },
    201,
  );
  const source = await createSource(
    h,
    token,
    { engine: "postgres", host: "db.internal", port: 5432, database: "app", labels: { env: "prod", team: "значение ✓" } },
    { username: "backup", password: DB_PASSWORD },
  );
  await createSource(h, token, { engine: "mysql", host: "mysql.internal", port: 3306, database: "*", excludeDatabases: ["tmp_*"] });
  const spare = await createSource(h, token, { engine: "postgres", host: "staging.internal", port: 5432, database: "app_staging" });
  const otherSource = await createSource(h, other, { engine: "postgres", host: "db.globex", port: 5432, database: "gx" });
  const policy = await createPolicy(h, token, s3.id, { fingerprint: true });
  const otherDest = await must(
    h,
    other,
    "POST",
    "/storage-destinations",
    { kind: "s3", bucket: "globex-backups", endpoint: "http://127.0.0.1:9", auth: { type: "accessKey", accessKeyId: "AK2", secretAccessKey: "sk2" } },
    201,
  );
  const otherPolicy = await createPolicy(h, other, otherDest.id, { encryption: { enabled: false, recipients: [] } });
  const attachment = await attach(h, token, source.id, policy.id);
  await attach(h, other, otherSource.id, otherPolicy.id);
  await must(h, token, "PATCH", `/attachments/${attachment.id}`, { enabled: false });
  await must(h, token, "POST", "/restore-plans", { name: "weekly-drill", dataSourceId: source.id, mode: "drill", scheduleCron: "0 4 * * 0", target: { dataSourceId: spare.id } }, 201);
  const channel = await must(h, token, "POST", "/notification-channels", { name: "ops-hook", type: "webhook", config: { url: "http://127.0.0.1:9/hook", secret: "s".repeat(32) } }, 201);
  const rule = await must(h, token, "POST", "/notification-rules", { channelId: channel.id, events: ["backup.failed", "backup.stale"], dataSourceId: source.id, staleAfterSeconds: 3600 }, 201);
  await must(h, token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
  await ensureOrgRecipient(h.store.db, new SecretBox(h.master), ORG);

  // What the runner, the WAL archiver and the fleet write.
  const db = h.store.db;
  const base = 1_700_000_000_000;
  const jobs = Array.from({ length: JOBS }, (_, i) => {
    const failed = i % 7 === 3;
    return {
      id: newId("job", base + i * 60_000),
      orgId: i % 5 === 0 ? OTHER : ORG,
      dataSourceId: i % 5 === 0 ? otherSource.id : source.id,
      policyId: i % 3 === 0 ? null : policy.id,
      attachmentId: i % 3 === 0 ? null : attachment.id,
      destinationId: s3.id,
      trigger: (i % 3 === 0 ? "manual" : "schedule") as "manual" | "schedule",
      status: (failed ? "failed" : "succeeded") as "failed" | "succeeded",
      attempt: 1 + (i % 3),
      queuedAt: base + i * 60_000,
      startedAt: base + i * 60_000 + 5,
      finishedAt: base + i * 60_000 + 5_000,
      bytesIn: 2 ** 40 + i,
      bytesStored: 2 ** 33 + i,
      sizeBytes: failed ? null : Number.MAX_SAFE_INTEGER - i,
      storedBytes: failed ? null : 2 ** 32 + i,
      sha256: failed ? null : "ab".repeat(32),
      objectKey: failed ? null : `${ORG}/${source.id}/job-${i}.dump.zst.age`,
      format: failed ? null : { compression: "zstd", level: 3, encrypted: true },
      error: failed ? { code: "DUMP_FAILED" as const, message: `pg_dump: "quoted" \\ line ${i}\nnext\ttab \u0001 ✓` } : null,
      parts:
        i % 50 === 1
          ? [
              { name: "globals", kind: "globals" as const, objectKey: "k", sizeBytes: 1, storedBytes: 2, sha256: "00" },
              { name: "gone", kind: "database" as const, objectKey: null, sizeBytes: null, storedBytes: null, sha256: null, note: "dropped" },
            ]
          : null,
      fingerprint: i % 10 === 2 ? { tables: { "public.t": i, "public.big": 2 ** 40 }, takenAt: base } : null,
      scheduledFor: i % 3 === 0 ? null : base + i * 60_000,
    };
  });
  for (let i = 0; i < jobs.length; i += 200) await db.insert(liteSchema.backupJobs).values(jobs.slice(i, i + 200));
  const lastJob = jobs.at(-2)!;
  await db.insert(liteSchema.restores).values([
    {
      id: newId("rst"),
      orgId: ORG,
      backupJobId: lastJob.id,
      sourceDataSourceId: source.id,
      targetDataSourceId: spare.id,
      targetDatabase: "app_copy",
      clean: true,
      status: "succeeded",
      queuedAt: base,
      startedAt: base + 1,
      finishedAt: base + 2,
      bytesRead: 2 ** 35,
      bytesWritten: 2 ** 36,
      notes: ["role backup already existed"],
      trigger: "manual",
    },
    {
      id: newId("rst"),
      orgId: ORG,
      backupJobId: null,
      sourceDataSourceId: source.id,
      targetDataSourceId: spare.id,
      status: "failed",
      queuedAt: base + 3,
      error: { code: "NO_BACKUP" as never, message: "no successful backup" },
      mode: "drill",
      trigger: "schedule",
      verification: { checks: [{ name: "rows", ok: false }] },
    },
  ]);
  await db.insert(liteSchema.walSegments).values([
    {
      dataSourceId: source.id,
      name: "000000010000000000000003",
      orgId: ORG,
      timeline: 1,
      segno: 3,
      startLsn: "0/3000000",
      destinationId: s3.id,
      objectKey: "wal/3",
      sizeBytes: 16 * 2 ** 20,
      storedBytes: 123_456,
      sha256: "cd".repeat(32),
      format: { compression: "zstd", encrypted: true },
      lastXactAtUs: base * 1000 + 17,
      archivedAt: base,
    },
    {
      dataSourceId: source.id,
      name: "00000002.history",
      orgId: ORG,
      timeline: 2,
      segno: null,
      startLsn: null,
      destinationId: s3.id,
      objectKey: "wal/h2",
      sizeBytes: 41,
      storedBytes: 99,
      sha256: "ef".repeat(32),
      format: { compression: "none", encrypted: false },
      lastXactAtUs: null,
      archivedAt: base + 1,
    },
  ]);
  await db.insert(liteSchema.notificationStaleState).values({ ruleId: rule.id, dataSourceId: source.id, orgId: ORG, staleSince: base, notifiedAt: base + 10 });
  await db
    .insert(liteSchema.nodes)
    .values({ id: "node-a", hostname: "backup-1", labels: { zone: "eu-1" }, version: "0.0.0-test", masterKeyFingerprint: "fp", startedAt: base, lastSeenAt: base + 5, stoppedAt: base + 6 });
}

beforeAll(async () => {
  // The copy's source is the embedded store, whatever store the matrix runs the API suite on.
  [pg, h] = await Promise.all([startPostgres({ password: `pg-pw-${crypto.randomUUID()}` }), createHarness({}, { store: "sqlite" })]);
  configFile = join(h.dataDir, "snapdb.toml");
  writeFileSync(configFile, "# empty: defaults and flags only\n");
  await fillStore();
  // As after `systemctl stop snapdb`: the store is closed, the data dir free.
  h.store.close();
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await pg?.stop();
  h?.storage.close();
  h?.scheduler.stop();
  if (h) rmSync(h.dataDir, { recursive: true, force: true });
});

describe("snapdb store copy", () => {
  let target: string;

  test("copies every table row for row into an empty database, in one go, and says what it copied", async () => {
    const before = await sqliteRows();
    // The fixture covers every table, so a table the copy skipped or mangled cannot pass unseen.
    expect(before.size).toBe(pgTableCount);
    expect([...before].filter(([, rows]) => rows.length === 0).map(([name]) => name)).toEqual([]);
    expect(before.get("backup_jobs")!.length).toBe(JOBS);
    expect(before.get("audit_events")!.length).toBeGreaterThan(5);

    target = freshDatabase();
    const r = await snapdb(["store", "copy", "--to", urlOf(target)]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const copied = connect(target);
    const after = await postgresRows(copied);
    for (const [name, rows] of before) expect({ name, rows: after.get(name) }).toStrictEqual({ name, rows });

    // The summary lists each table with its count; the masked URL, and the fleet's reminder.
    for (const [name, rows] of before) expect(r.stdout).toMatch(new RegExp(`^  ${name}: +${rows.length}$`, "m"));
    expect(r.stdout).toContain(`postgres://${pg.user}:****@${pg.host}:${pg.port}/${target}`);
    expect(r.stdout).toContain("master key");
    expect(r.stdout).toMatch(/JWT/);

    // Secrets arrived sealed as they were, and open with this data dir's master key.
    const box = new SecretBox(h.master);
    const [ds] = await copied`SELECT id, credentials_ciphertext, credentials_key_id FROM data_sources WHERE credentials_ciphertext IS NOT NULL`;
    expect(box.open({ ciphertext: ds.credentials_ciphertext, keyId: ds.credentials_key_id }, credentialsAad(ds.id))).toContain(DB_PASSWORD);
    const [key] = await copied`SELECT identity_ciphertext, identity_key_id FROM org_keys WHERE org_id = ${ORG}`;
    expect(box.open({ ciphertext: key.identity_ciphertext, keyId: key.identity_key_id }, ORG_KEY_AAD(ORG))).toStartWith("AGE-SECRET-KEY-1");
    expect(await sqliteRows()).toEqual(before); // the embedded store only read
  }, 120_000);

  test("a second run into the now non-empty database is refused and changes nothing", async () => {
    const client = connect(target);
    const before = await postgresRows(client);
    const r = await snapdb(["store", "copy", "--to", urlOf(target)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("already holds snapdb rows");
    expect(r.stderr).toContain(`backup_jobs: ${JOBS}`);
    expect(r.stderr).toContain("Nothing was written");
    expect(r.stdout).toBe("");
    expect(await postgresRows(client)).toStrictEqual(before);
  }, 60_000);

  test("a target with one row in one table (a node that already joined) is refused untouched", async () => {
    const database = freshDatabase();
    const client = connect(database);
    await migratePg(client);
    await pgDrizzle({ client, schema: pgSchema }).insert(pgSchema.nodes).values({ id: "node-b", hostname: "backup-2", version: "x", masterKeyFingerprint: "fp", startedAt: 1, lastSeenAt: 2 });
    const before = await postgresRows(client);
    const r = await snapdb(["store", "copy", "--to", urlOf(database)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("already holds snapdb rows (nodes: 1)");
    expect(await postgresRows(client)).toStrictEqual(before);
  }, 60_000);

  test("a row the target refuses half-way leaves the target without a single row, and the message without the rows", async () => {
    const database = freshDatabase();
    const client = connect(database);
    await migratePg(client);
    // Jobs come after data sources, policies and attachments: those are inserted, then rolled back.
    await client`ALTER TABLE backup_jobs ADD CONSTRAINT test_refuses_third_attempts CHECK (attempt < 3)`;
    const r = await snapdb(["store", "copy", "--to", urlOf(database)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("backup_jobs: rows 1–500 do not insert");
    expect(r.stderr).toContain("test_refuses_third_attempts");
    expect(r.stderr).not.toContain("params");
    expect(r.stderr).not.toContain("INSERT");
    expect(r.stdout).toBe("");
    const rows = await postgresRows(client);
    expect([...rows].filter(([, t]) => t.length > 0)).toEqual([]);
  }, 60_000);

  test("without --to it copies into the configured store.url, so the password stays off the command line", async () => {
    const database = freshDatabase();
    const r = await snapdb(["store", "copy"], false, { SNAPDB_STORE_URL: urlOf(database) });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${pg.user}:****@`);
    expect((await postgresRows(connect(database))).get("backup_jobs")!.length).toBe(JOBS);
  }, 60_000);

  test("refused while a daemon runs on the data dir: nothing is created in the target", async () => {
    const database = freshDatabase();
    const daemon = await startDaemon({ dataDir: h.dataDir, env: { SNAPDB_STORE_URL: "" } }); // on the embedded store, whatever the matrix
    try {
      const r = await snapdb(["store", "copy", "--to", urlOf(database)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("in use by snapdb serve");
      expect(r.stderr).toContain("Stop the daemon first");
      expect(r.stdout).toBe("");
    } finally {
      await daemon.stop();
    }
    expect(await tablesOf(connect(database))).toEqual([]);
  }, 60_000);

  test("bad input: no subcommand, another scheme, no URL", async () => {
    expect((await snapdb(["store"])).code).toBe(2);
    expect((await snapdb(["store", "move", "--to", urlOf("x")])).code).toBe(2);
    const mysql = await snapdb(["store", "copy", "--to", `mysql://root:${pg.password}@localhost/db`]);
    expect(mysql.code).toBe(2);
    expect(mysql.stderr).toContain("mysql://root:****@localhost/db");
    const none = await snapdb(["store", "copy"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("--to");
    const refused = await snapdb(["store", "copy", "--to", `postgres://${pg.user}:${encodeURIComponent(pg.password)}@127.0.0.1:1/db`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`postgres://${pg.user}:****@127.0.0.1:1/db`);
  }, 60_000);

  test("shell completion offers the command, its subcommand and --to", async () => {
    const bash = await snapdb(["completion", "bash"], true);
    expect(bash.code).toBe(0);
    const file = join(h.dataDir, "snapdb.bash");
    writeFileSync(file, bash.stdout);
    const complete = (line: string) => {
      const words = line.split(" ");
      const script = `source '${file}'; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _snapdb; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return Bun.spawnSync(["bash", "-c", script]).stdout.toString().trim().split("\n");
    };
    expect(complete("snapdb sto")).toEqual(["store"]);
    expect(complete("snapdb store c")).toEqual(["copy"]);
    expect(complete("snapdb store copy --t")).toEqual(["--to"]);
  });

  test("the URL's password never appears in any output", () => {
    expect(outputs.length).toBeGreaterThan(10);
    for (const out of outputs) {
      expect(out).not.toContain(pg.password);
      expect(out).not.toContain(encodeURIComponent(pg.password));
    }
  });
});

describe("the copy's plan", () => {
  test("every table, each after the tables its foreign keys point at", () => {
    const order = tablesInCopyOrder();
    expect(order.map((t) => t.name).sort()).toEqual(
      Object.values(pgSchema)
        .filter((v) => is(v, PgTable))
        .map((t) => getTableConfig(t as PgTable).name)
        .sort(),
    );
    const position = new Map(order.map((t, i) => [t.name, i]));
    for (const t of order) {
      for (const fk of getTableConfig(t.pg).foreignKeys)
        expect({ child: t.name, after: position.get(t.name)! > position.get(getTableConfig(fk.reference().foreignTable).name)! }).toEqual({ child: t.name, after: true });
      expect(sqliteTableConfig(t.lite).name).toBe(t.name);
      expect(batchSizeFor(t.pg) * Object.keys(getTableColumns(t.pg)).length).toBeLessThan(65_535);
    }
  });

  test("URLs are printed without their password, wherever it sits", () => {
    expect(maskUrl("postgres://u:p%40ss@h:5432/db?sslmode=require")).toBe("postgres://u:****@h:5432/db?sslmode=require");
    expect(maskUrl("postgresql://u@h/db?password=hunter22")).toBe("postgresql://u@h/db?password=****");
    const url = "postgres://u:p%40ss-word@h/db";
    expect(scrub(`cannot reach ${url}; auth p@ss-word failed, p%40ss-word`, url)).toBe("cannot reach postgres://u:****@h/db; auth **** failed, ****");
    // A one-letter password is masked where it stands alone, not inside the driver's words.
    const short = "postgres://app:a@h/db";
    expect(scrub(`password authentication failed at ${short} (a)`, short)).toBe("password authentication failed at postgres://app:****@h/db (****)");
  });
});
