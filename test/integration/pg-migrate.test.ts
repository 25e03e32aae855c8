import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { asc, desc, is, lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/bun-sql";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { openStore } from "../../src/db/client.ts";
import { migrate, SchemaTooNewError } from "../../src/db/migrate.ts";
import { LATEST_PG_SCHEMA_VERSION, migratePg, pgSchemaVersion } from "../../src/db/migrate-pg.ts";
import { PG_MIGRATIONS } from "../../src/db/migrations-pg.gen.ts";
import * as sqliteSchema from "../../src/db/schema-sqlite.ts";
import type { StoredPart } from "../../src/db/schema-sqlite.ts";
import * as pgSchema from "../../src/db/schema-pg.ts";
import { newId } from "../../src/lib/ids.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";

/**
 * The PostgreSQL store's migrations (src/db/migrate-pg.ts, migrations-pg/) on a real server:
 * they build exactly the tables of src/db/schema-pg.ts, run once even when several daemons
 * start together, refuse a newer store, and rows read back as the SQLite store reads them.
 */
let pg: PgServer;
const clients: SQL[] = [];
let dbCount = 0;

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await pg?.stop();
});

/** A new empty database owned by the test role; `options` are CREATE DATABASE's (locale…). */
function freshDatabase(options = ""): string {
  const name = `store_${++dbCount}`;
  pg.psql(`CREATE DATABASE ${name} OWNER snapdb_test ${options};`);
  return name;
}

function connect(database: string): SQL {
  const client = new SQL({ url: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${database}` });
  clients.push(client);
  return client;
}

const pgTables = Object.values(pgSchema).filter((v) => is(v, PgTable)) as PgTable[];

async function tablesOf(sql: SQL): Promise<string[]> {
  const rows = await sql`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`;
  return rows.map((r: { table_name: string }) => r.table_name);
}

/** Tables, columns (type, nullability, collation), indexes, constraints and triggers: what a migration can change. */
async function catalogOf(sql: SQL): Promise<unknown> {
  const columns = await sql`SELECT table_name, column_name, data_type, is_nullable, collation_name, column_default
    FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`;
  const indexes = await sql`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`;
  const constraints = await sql`SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
    WHERE connamespace = current_schema()::regnamespace ORDER BY conname`;
  const triggers = await sql`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname`;
  return { columns: [...columns], indexes: [...indexes], constraints: [...constraints], triggers: [...triggers] };
}

describe("migratePg", () => {
  test("a fresh database gets every table of schema-pg.ts, then running again is a no-op", async () => {
    const sql = connect(freshDatabase());
    expect(await pgSchemaVersion(sql)).toBe(0);
    expect(await tablesOf(sql)).toEqual([]); // reading the version created nothing

    const first = await migratePg(sql);
    expect(first).toEqual({ from: 0, to: LATEST_PG_SCHEMA_VERSION, applied: PG_MIGRATIONS.map((m) => m.tag) });
    expect(await pgSchemaVersion(sql)).toBe(LATEST_PG_SCHEMA_VERSION);
    const want = pgTables.map((t) => getTableConfig(t).name);
    expect(want.length).toBeGreaterThan(10);
    expect(await tablesOf(sql)).toEqual([...want, "snapdb_schema"].sort());

    const before = await catalogOf(sql);
    const again = await migratePg(sql);
    expect(again).toEqual({ from: LATEST_PG_SCHEMA_VERSION, to: LATEST_PG_SCHEMA_VERSION, applied: [] });
    expect(await catalogOf(sql)).toEqual(before);
    expect([...(await sql`SELECT version FROM snapdb_schema`)]).toEqual([{ version: LATEST_PG_SCHEMA_VERSION }]);
  });

  test('the migrated columns, indexes and foreign keys are the ones schema-pg.ts declares; every text column is COLLATE "C"', async () => {
    const sql = connect(freshDatabase());
    await migratePg(sql);
    const sqlType: Record<string, string> = { PgBigInt53: "bigint", PgBoolean: "boolean", PgText: "text", PgCustomColumn: "text" };
    const declared = pgTables.flatMap((t) => {
      const c = getTableConfig(t);
      return c.columns.map((col) => ({
        table_name: c.name,
        column_name: col.name,
        data_type: sqlType[col.columnType] ?? col.columnType,
        is_nullable: col.notNull ? "NO" : "YES",
        has_default: col.hasDefault,
      }));
    });
    const actual = await sql`SELECT table_name, column_name, data_type, is_nullable, column_default IS NOT NULL AS has_default, collation_name
      FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'snapdb_schema'`;
    const key = (r: { table_name: string; column_name: string }) => `${r.table_name}.${r.column_name}`;
    const byKey = (rows: { table_name: string; column_name: string }[]) => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : 1));
    expect(byKey(actual.map(({ collation_name: _, ...r }: Record<string, unknown>) => r))).toEqual(byKey(declared));
    // Bytewise comparisons and ORDER BY, as SQLite's BINARY collation, in a database of any locale.
    const notC = actual.filter((r: { data_type: string; collation_name: string | null }) => r.data_type === "text" && r.collation_name !== "C");
    expect(notC).toEqual([]);

    const indexes =
      await sql`SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%\_pkey' AND indexname NOT LIKE '%\_pk' AND tablename <> 'snapdb_schema'`;
    const declaredIndexes = pgTables.flatMap((t) => getTableConfig(t).indexes.map((i) => `${getTableConfig(t).name}.${i.config.name}`));
    expect(indexes.map((r: { tablename: string; indexname: string }) => `${r.tablename}.${r.indexname}`).sort()).toEqual(declaredIndexes.sort());

    const fks = await sql`SELECT conrelid::regclass::text AS "from", confrelid::regclass::text AS "to", confdeltype FROM pg_constraint
      WHERE contype = 'f' AND connamespace = current_schema()::regnamespace`;
    const onDelete: Record<string, string> = { r: "restrict", c: "cascade", a: "no action" };
    const declaredFks = pgTables.flatMap((t) => getTableConfig(t).foreignKeys.map((fk) => `${getTableConfig(t).name}→${getTableConfig(fk.reference().foreignTable).name} ${fk.onDelete}`));
    expect(fks.map((r: { from: string; to: string; confdeltype: string }) => `${r.from}→${r.to} ${onDelete[r.confdeltype]}`).sort()).toEqual(declaredFks.sort());
  });

  test("three daemons migrating one empty database at once: all succeed, the migrations run once", async () => {
    const database = freshDatabase();
    const daemons = [connect(database), connect(database), connect(database)];
    const results = await Promise.all(daemons.map((sql) => migratePg(sql)));
    const applied = results.map((r) => r.applied);
    expect(applied.filter((a) => a.length > 0)).toEqual([PG_MIGRATIONS.map((m) => m.tag)]);
    expect(applied.filter((a) => a.length === 0)).toHaveLength(2);
    for (const r of results) expect(r.to).toBe(LATEST_PG_SCHEMA_VERSION);
    expect([...(await daemons[0]!`SELECT version FROM snapdb_schema`)]).toEqual([{ version: LATEST_PG_SCHEMA_VERSION }]);
    // The lock was released: nobody holds it once the runs are over.
    expect([...(await daemons[1]!`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`)]).toEqual([{ n: 0 }]);
  });

  test("a store newer than this binary is refused untouched", async () => {
    const sql = connect(freshDatabase());
    await migratePg(sql);
    await sql`UPDATE snapdb_schema SET version = ${LATEST_PG_SCHEMA_VERSION + 1}`;
    const before = await catalogOf(sql);
    const err = await migratePg(sql).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toMatch(/newer than this snapdb binary knows/);
    expect(await pgSchemaVersion(sql)).toBe(LATEST_PG_SCHEMA_VERSION + 1);
    expect(await catalogOf(sql)).toEqual(before);
  });

  test("a failing migration leaves the store at the previous whole version, and a later migration still applies", async () => {
    const sql = connect(freshDatabase());
    const next = LATEST_PG_SCHEMA_VERSION + 1;
    const broken = [...PG_MIGRATIONS, { version: next, tag: "broken", sql: "CREATE TABLE ok_1 (x int);\n--> statement-breakpoint\nNOT SQL" }];
    await expect(migratePg(sql, broken)).rejects.toThrow();
    expect(await pgSchemaVersion(sql)).toBe(LATEST_PG_SCHEMA_VERSION);
    expect(await tablesOf(sql)).not.toContain("ok_1");
    const fixed = [...PG_MIGRATIONS, { version: next, tag: "fixed", sql: "CREATE TABLE ok_1 (x int);" }];
    expect(await migratePg(sql, fixed)).toEqual({ from: LATEST_PG_SCHEMA_VERSION, to: next, applied: ["fixed"] });
    expect(await tablesOf(sql)).toContain("ok_1");
  });

  test("audit events cannot be updated, deleted or truncated, even with SQL", async () => {
    const sql = connect(freshDatabase());
    await migratePg(sql);
    await sql`INSERT INTO audit_events (id, org_id, occurred_at, actor_type, actor_id, action, target_type, target_id)
      VALUES ('aud_1', 'o', 1, 'user', 'u', 'x.y', 't', 't')`;
    await expect(sql`UPDATE audit_events SET action = 'z.z'`).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM audit_events`).rejects.toThrow(/append-only/);
    await expect(sql`TRUNCATE audit_events`).rejects.toThrow(/append-only/);
    expect([...(await sql`SELECT action FROM audit_events`)]).toEqual([{ action: "x.y" }]);
  });
});

describe("the same rows on both engines", () => {
  const BIG = 2 ** 41 + 7; // a ms timestamp far beyond int4
  const ORG = "org_roundtrip";
  const dst = newId("dst");
  const ds = newId("ds");
  const pol = newId("pol");
  const att = newId("att");
  const job = newId("job");
  const bare = newId("job");
  const parts: StoredPart[] = [
    { name: "globals", kind: "globals", objectKey: "k1", sizeBytes: 2 ** 35, storedBytes: 10, sha256: "00", charset: null },
    { name: "gone", kind: "database", objectKey: null, sizeBytes: null, storedBytes: null, sha256: null, note: "dropped" },
  ];
  const rows = {
    storageDestinations: [
      {
        id: dst,
        orgId: ORG,
        kind: "s3" as const,
        name: 'bücket "α" \\ 🚀',
        settings: { bucket: "b", region: "eu-1", nested: { a: [1, 2.5, { b: null }], t: true, f: false }, big: 2 ** 53 - 1 },
        secretCiphertext: "c2VjcmV0",
        secretKeyId: "k1",
        lastVerify: null,
        createdAt: BIG,
        updatedAt: BIG + 1,
      },
    ],
    dataSources: [
      {
        id: ds,
        orgId: ORG,
        name: "prod",
        engine: "postgres" as const,
        host: "db.internal",
        port: 5432,
        database: "app",
        options: { sslmode: "require" },
        labels: { env: "prod", ключ: "значение" },
        excludeDatabases: ["tmp_*"],
        lastVerify: { ok: true, at: BIG, tools: [] },
        createdAt: BIG,
        updatedAt: BIG,
      },
    ],
    backupPolicies: [
      {
        id: pol,
        orgId: ORG,
        name: "nightly",
        scheduleCron: "0 3 * * *",
        timezone: "Europe/Berlin",
        destinationId: dst,
        retention: { daily: 7, weekly: null },
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: true, recipients: ["age1xyz"] },
        timeoutSeconds: 3600,
        retries: 2,
        fingerprint: true,
        createdAt: BIG,
        updatedAt: BIG,
      },
    ],
    attachments: [{ id: att, orgId: ORG, dataSourceId: ds, policyId: pol, enabled: true, lastScheduledAt: BIG, createdAt: BIG, updatedAt: BIG }],
    backupJobs: [
      {
        id: job,
        orgId: ORG,
        dataSourceId: ds,
        policyId: pol,
        attachmentId: att,
        destinationId: dst,
        trigger: "schedule" as const,
        status: "failed" as const,
        attempt: 3,
        queuedAt: BIG,
        notBefore: BIG + 10,
        startedAt: BIG + 20,
        finishedAt: BIG + 30,
        bytesIn: 2 ** 40 + 3,
        bytesStored: 2 ** 33,
        sizeBytes: Number.MAX_SAFE_INTEGER,
        storedBytes: 2 ** 32 + 1,
        sha256: "ab".repeat(32),
        objectKey: "org/ds/job.dump.zst.age",
        format: { compression: "zstd", encrypted: true, level: -1, empty: {} },
        error: { code: "DUMP_FAILED" as const, message: 'pg_dump: "quoted" \\ line\nnext\ttab \u0001' },
        fileDeletedAt: null,
        parts,
        fingerprint: { tables: { "public.t": 5, "public.big": 2 ** 40 }, takenAt: BIG },
        physical: { startLsn: "0/3000000", timeline: 1, fast: false },
      },
      // Only what is required: every default and every null as the engines fill them in.
      { id: bare, orgId: ORG, dataSourceId: ds, trigger: "manual" as const, status: "queued" as const, queuedAt: BIG },
    ],
  };
  type Name = keyof typeof rows;
  const names = Object.keys(rows) as Name[];
  // Both engines' table per name (parents first); typed as one of them for the generic loops below.
  type SqliteAny = typeof sqliteSchema.backupJobs;
  type PgAny = typeof pgSchema.backupJobs;
  const tables = {
    storageDestinations: [sqliteSchema.storageDestinations, pgSchema.storageDestinations],
    dataSources: [sqliteSchema.dataSources, pgSchema.dataSources],
    backupPolicies: [sqliteSchema.backupPolicies, pgSchema.backupPolicies],
    attachments: [sqliteSchema.attachments, pgSchema.attachments],
    backupJobs: [sqliteSchema.backupJobs, pgSchema.backupJobs],
  } as unknown as Record<Name, [SqliteAny, PgAny]>;

  test("insert then select through drizzle returns identical JS values, and the JSON text is byte-identical", async () => {
    const store = openStore(":memory:");
    migrate(store.sqlite);
    const client = connect(freshDatabase());
    await migratePg(client);
    const pgDb = drizzle({ client, schema: pgSchema });
    for (const name of names) {
      const [s, p] = tables[name];
      await store.db.insert(s).values(rows[name] as SqliteAny["$inferInsert"][]);
      await pgDb.insert(p).values(rows[name] as PgAny["$inferInsert"][]);
    }
    for (const name of names) {
      const [s, p] = tables[name];
      const fromSqlite = await store.db.select().from(s).orderBy(asc(s.id));
      const fromPg = await pgDb.select().from(p).orderBy(asc(p.id));
      expect(fromSqlite.length).toBe(rows[name].length);
      expect(fromPg).toStrictEqual(fromSqlite);
    }
    const [pgJob] = await pgDb.select().from(pgSchema.backupJobs).where(lt(pgSchema.backupJobs.id, bare));
    expect(pgJob!.sizeBytes).toBe(Number.MAX_SAFE_INTEGER);
    expect(typeof pgJob!.bytesIn).toBe("number");
    expect(pgJob!.parts).toEqual(parts);
    const [policy] = await pgDb.select().from(pgSchema.backupPolicies);
    expect([policy!.fingerprint, policy!.fastCheckpoint, policy!.method]).toEqual([true, false, "logical"]);

    const jsonColumns = "format, error, parts, fingerprint, physical";
    const rawSqlite = store.sqlite.query(`SELECT ${jsonColumns} FROM backup_jobs ORDER BY id`).all();
    const rawPg = await client.unsafe(`SELECT ${jsonColumns} FROM backup_jobs ORDER BY id`);
    expect([...rawPg]).toEqual(rawSqlite);
    store.close();
  });

  test("ids order bytewise, as in SQLite, even in a database whose locale sorts them otherwise", async () => {
    // ICU Danish sorts "AA" as "Å", after "Z": ULID bodies contain "AA", so `ORDER BY id` in
    // that database's own collation would break keyset pages. The migrations' COLLATE "C" does not.
    const client = connect(freshDatabase("TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'da'"));
    await migratePg(client);
    const store = openStore(":memory:");
    migrate(store.sqlite);
    const pgDb = drizzle({ client, schema: pgSchema });
    const parent = { ...rows.dataSources[0]!, lastVerify: null };
    await store.db.insert(sqliteSchema.dataSources).values(parent);
    await pgDb.insert(pgSchema.dataSources).values(parent);

    const crafted = ["AAZ", "ABZ", "AZZ", "ZZZ", "ZAA", "Y00", "V00", "W00", "0AA", "9ZZ"].map((p) => `job_01J${p}${"0".repeat(20)}`);
    const minted = Array.from({ length: 40 }, (_, i) => newId("job", 1_700_000_000_000 + i * 7_919_993));
    const ids = [...crafted, ...minted];
    const jobRows = ids.map((id) => ({ id, orgId: ORG, dataSourceId: ds, trigger: "manual" as const, status: "queued" as const, queuedAt: 1 }));
    await store.db.insert(sqliteSchema.backupJobs).values(jobRows);
    await pgDb.insert(pgSchema.backupJobs).values(jobRows);

    const bytewise = [...ids].sort().reverse();
    const sqliteOrder = (await store.db.select({ id: sqliteSchema.backupJobs.id }).from(sqliteSchema.backupJobs).orderBy(desc(sqliteSchema.backupJobs.id))).map((r) => r.id);
    const pgOrder = (await pgDb.select({ id: pgSchema.backupJobs.id }).from(pgSchema.backupJobs).orderBy(desc(pgSchema.backupJobs.id))).map((r) => r.id);
    expect(sqliteOrder).toEqual(bytewise);
    expect(pgOrder).toEqual(bytewise);

    // Keyset pages (`id < cursor ORDER BY id DESC LIMIT n`) walk the same ids on both engines.
    const pages = async (next: (cursor: string | null) => Promise<string[]>) => {
      const seen: string[][] = [];
      let cursor: string | null = null;
      for (;;) {
        const page = await next(cursor);
        if (page.length === 0) return seen;
        seen.push(page);
        cursor = page.at(-1)!;
      }
    };
    const sqlitePages = await pages(async (cursor) =>
      (
        await store.db
          .select({ id: sqliteSchema.backupJobs.id })
          .from(sqliteSchema.backupJobs)
          .where(cursor ? lt(sqliteSchema.backupJobs.id, cursor) : undefined)
          .orderBy(desc(sqliteSchema.backupJobs.id))
          .limit(7)
      ).map((r) => r.id),
    );
    const pgPages = await pages(async (cursor) =>
      (
        await pgDb
          .select({ id: pgSchema.backupJobs.id })
          .from(pgSchema.backupJobs)
          .where(cursor ? lt(pgSchema.backupJobs.id, cursor) : undefined)
          .orderBy(desc(pgSchema.backupJobs.id))
          .limit(7)
      ).map((r) => r.id),
    );
    expect(pgPages).toEqual(sqlitePages);
    expect(pgPages.flat()).toEqual(bytewise);

    // The control: the database's own collation does order these ids differently.
    const localeOrder = (await client`SELECT id FROM backup_jobs ORDER BY id COLLATE "default" DESC`).map((r: { id: string }) => r.id);
    expect(localeOrder).not.toEqual(bytewise);
    store.close();
  });
});
