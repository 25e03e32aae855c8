import { SQL } from "bun";
import { classifyConnectError, connectionOptions, ProbeError } from "./network.ts";
import { RestoreSetupError, withConnection } from "./restore.ts";
import type { SourceTarget } from "./types.ts";

/**
 * A backup's fingerprint: how many rows each table held in the very snapshot the dump was
 * taken from, so a restore can be checked against what the backup really contains (not
 * against the live database, which has moved on). Table names: `schema.table` for
 * PostgreSQL, the table name for MySQL/MariaDB and SQLite.
 */
export interface Fingerprint {
  tables: Record<string, number>;
  /** ms since epoch */
  takenAt: number;
}

const quotePg = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteMy = (name: string) => `\`${name.replace(/`/g, "``")}\``;

/**
 * The tables whose rows pg_dump writes: ordinary tables (partitions included, their
 * partitioned parents hold no rows of their own) outside the system schemas, not owned by
 * an extension, not temporary.
 */
const PG_TABLES = `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND c.relpersistence <> 't'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

async function countPostgres(sql: SQL): Promise<Record<string, number>> {
  const tables = (await sql.unsafe(PG_TABLES)) as { schema: string; name: string }[];
  const counts: Record<string, number> = {};
  for (const t of tables) {
    const [row] = await sql.unsafe(`SELECT count(*) AS n FROM ${quotePg(t.schema)}.${quotePg(t.name)}`);
    counts[`${t.schema}.${t.name}`] = Number(row.n);
  }
  return counts;
}

/** Base tables of one schema (views hold no rows; MariaDB sequences are not data either). */
async function countMysql(sql: SQL, database: string): Promise<Record<string, number>> {
  const tables = (await sql`SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = ${database} AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY table_name`) as { name: string }[];
  const counts: Record<string, number> = {};
  for (const t of tables) {
    const [row] = await sql.unsafe(`SELECT COUNT(*) AS n FROM ${quoteMy(database)}.${quoteMy(t.name)}`);
    counts[t.name] = Number(row.n);
  }
  return counts;
}

/** Row counts per table of a database on a pinned network target, as they are now (a restored copy). */
export async function countTables(target: SourceTarget, database: string, signal?: AbortSignal): Promise<Record<string, number>> {
  try {
    if (target.engine === "postgres") return await withConnection(target, database, signal, countPostgres);
    return await withConnection(target, database, signal, (sql) => countMysql(sql, database));
  } catch (err) {
    if (err instanceof ProbeError || err instanceof RestoreSetupError) throw err;
    throw new RestoreSetupError("VERIFICATION_FAILED", `could not count the rows of the restored tables: ${(err as Error).message}`);
  }
}

/** Why a fingerprint could not be taken at backup time (the backup fails with it). */
export class FingerprintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FingerprintError";
  }
}

/**
 * A PostgreSQL transaction held open for a dump: REPEATABLE READ, its snapshot exported
 * (`pg_export_snapshot()`) for `pg_dump --snapshot=<id>`, and every table counted in it.
 * So the counts describe exactly the data the dump holds. The transaction must live until
 * pg_dump has imported the snapshot: the caller closes it when the dump is over.
 */
export interface PgSnapshot {
  snapshot: string;
  fingerprint: Fingerprint;
  close(): Promise<void>;
}

export async function openPgSnapshot(target: SourceTarget, database: string): Promise<PgSnapshot> {
  // idleTimeout 0: the connection sits idle (in its transaction) while pg_dump runs.
  const sql = new SQL({ ...connectionOptions(target, database, target.options.connectTimeoutSeconds ?? 15), idleTimeout: 0 } as ConstructorParameters<typeof SQL>[0]);
  const close = async () => {
    await sql.unsafe("ROLLBACK").catch(() => {});
    await sql.close({ timeout: 0 }).catch(() => {});
  };
  try {
    try {
      await sql.unsafe("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    } catch (err) {
      throw new ProbeError(classifyConnectError(err, target));
    }
    const [row] = await sql.unsafe("SELECT pg_export_snapshot() AS id, clock_timestamp() AS at");
    const tables = await countPostgres(sql);
    return { snapshot: String(row.id), fingerprint: { tables, takenAt: new Date(row.at).getTime() }, close };
  } catch (err) {
    await close();
    if (err instanceof ProbeError) throw err;
    throw new FingerprintError(`could not take the fingerprint: ${(err as Error).message}`);
  }
}

/**
 * MySQL/MariaDB: row counts in a `START TRANSACTION WITH CONSISTENT SNAPSHOT` taken right
 * before the dump. mysqldump cannot be handed that snapshot, so its own (--single-transaction)
 * starts a moment later: the counts are exactly the dump's when nothing writes in between
 * (a quiet database, a replica with replication paused), and may differ by what was
 * written in that moment otherwise.
 */
export async function mysqlFingerprint(target: SourceTarget, database: string, signal?: AbortSignal): Promise<Fingerprint> {
  try {
    return await withConnection(target, database, signal, async (sql) => {
      await sql.unsafe("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
      try {
        const takenAt = Date.now();
        return { tables: await countMysql(sql, database), takenAt };
      } finally {
        await sql.unsafe("ROLLBACK").catch(() => {});
      }
    });
  } catch (err) {
    if (err instanceof ProbeError) throw err;
    throw new FingerprintError(`could not take the fingerprint: ${(err as Error).message}`);
  }
}
