import type { SQL } from "bun";
import { count, DrizzleQueryError, getTableColumns, gt, is, type SQLWrapper, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/bun-sql";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Store } from "../db/client.ts";
import * as pgSchema from "../db/schema-pg.ts";
import * as liteSchema from "../db/schema-sqlite.ts";

/*
 * The copy of an embedded store into an empty PostgreSQL one (`snapdb store copy`). Rows go
 * through drizzle on both sides, so each value is what services read: JSON parsed from the
 * SQLite text and written back by schema-pg's jsonText, booleans as booleans, numbers as
 * numbers. Ids and sealed secrets are copied as they are.
 */

// The generic loops below handle every table as one type: their JS shapes differ, drizzle does not care.
type LiteTable = typeof liteSchema.backupJobs;
type PgAnyTable = typeof pgSchema.backupJobs;

export interface TablePair {
  /** The SQL name, as both engines call it. */
  name: string;
  lite: LiteTable;
  pg: PgAnyTable;
}

/**
 * Every table of the PostgreSQL schema with its SQLite twin (same export name), parents before
 * the tables whose foreign keys point at them, otherwise in declaration order. Derived from
 * the PostgreSQL tables' own foreign keys, the ones the inserts must satisfy, so a table added
 * later is copied in the right place without anyone editing a list.
 */
export function tablesInCopyOrder(): TablePair[] {
  const pairs = new Map<PgTable, TablePair>();
  for (const [key, pg] of Object.entries(pgSchema)) {
    if (!is(pg, PgTable)) continue;
    const lite = (liteSchema as Record<string, unknown>)[key];
    if (!is(lite, SQLiteTable)) throw new Error(`table ${key} of the PostgreSQL schema has no SQLite twin`);
    pairs.set(pg, { name: getTableConfig(pg).name, lite: lite as unknown as LiteTable, pg: pg as unknown as PgAnyTable });
  }
  const ordered: TablePair[] = [];
  const state = new Map<PgTable, "visiting" | "done">();
  const visit = (table: PgTable) => {
    if (state.get(table) === "done") return;
    if (state.get(table) === "visiting") throw new Error(`foreign keys form a cycle through ${getTableConfig(table).name}`);
    state.set(table, "visiting");
    for (const fk of getTableConfig(table).foreignKeys) {
      const parent = fk.reference().foreignTable;
      if (parent !== table) visit(parent);
    }
    state.set(table, "done");
    ordered.push(pairs.get(table)!);
  };
  for (const table of pairs.keys()) visit(table);
  return ordered;
}

/** Rows per INSERT: 500, fewer for a table so wide that 500 rows would pass PostgreSQL's 65,535 bind parameters. */
export function batchSizeFor(table: PgAnyTable, wanted = 500): number {
  return Math.max(1, Math.min(wanted, Math.floor(60_000 / Object.keys(getTableColumns(table)).length)));
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Anything that runs a drizzle query on the target: the database or a transaction of it. */
interface Executor {
  execute(query: SQLWrapper): PromiseLike<unknown>;
}

const rowsOf = async (db: Executor, query: SQLWrapper) => [...((await db.execute(query)) as Iterable<Record<string, unknown>>)];

/** The target's tables of ours that hold rows, with their counts; a table not yet created counts as empty. */
export async function occupiedTables(db: Executor, tables: TablePair[]): Promise<{ name: string; rows: number }[]> {
  const occupied: { name: string; rows: number }[] = [];
  for (const { name } of tables) {
    const [exists] = await rowsOf(db, sql`SELECT to_regclass(${quoteIdent(name)}) IS NOT NULL AS present`);
    if (!exists?.present) continue;
    const [row] = await rowsOf(db, sql`SELECT count(*)::bigint AS n FROM ${sql.identifier(name)}`);
    const rows = Number(row?.n ?? 0);
    if (rows > 0) occupied.push({ name, rows });
  }
  return occupied;
}

/** Throws TargetNotEmptyError when the target holds rows in any of our tables (it may not be migrated yet). */
export async function refuseOccupiedTarget(client: SQL): Promise<void> {
  const occupied = await occupiedTables(drizzle({ client }), tablesInCopyOrder());
  if (occupied.length) throw new TargetNotEmptyError(occupied);
}

/** The target holds rows already: refused before anything is written. */
export class TargetNotEmptyError extends Error {
  constructor(readonly occupied: { name: string; rows: number }[]) {
    super(`the target database already holds snapdb rows (${occupied.map((t) => `${t.name}: ${t.rows}`).join(", ")})`);
    this.name = "TargetNotEmptyError";
  }
}

export interface CopyOptions {
  /** Called after each table is copied and its count checked. */
  onTable?: (name: string, rows: number) => void;
  batchSize?: number;
}

/**
 * Copies every row of `store` into the (migrated, empty) PostgreSQL database behind `client`
 * in ONE transaction: a failure anywhere, a count that does not match included, leaves the
 * target as it was. The target's tables are locked (EXCLUSIVE: others may read, nobody may
 * write) and checked empty inside that transaction, so a daemon started on the target
 * meanwhile cannot slip rows in between the check and the copy. The SQLite side is read in
 * one read transaction (one snapshot), batch by batch in rowid order, so memory stays flat
 * whatever the number of jobs. Returns the rows copied per table, in copy order.
 */
export async function copyToPostgres(store: Store, client: SQL, opts: CopyOptions = {}): Promise<{ name: string; rows: number }[]> {
  const tables = tablesInCopyOrder();
  const target = drizzle({ client, schema: pgSchema });
  store.sqlite.run("BEGIN DEFERRED");
  try {
    return await target.transaction(async (tx) => {
      await tx.execute(sql.raw(`LOCK TABLE ${tables.map((t) => quoteIdent(t.name)).join(", ")} IN EXCLUSIVE MODE`));
      const occupied = await occupiedTables(tx, tables);
      if (occupied.length) throw new TargetNotEmptyError(occupied);
      const copied: { name: string; rows: number }[] = [];
      for (const t of tables) {
        const rows = await copyTable(store, tx, t, opts.batchSize);
        const [source] = await store.db.select({ n: count() }).from(t.lite);
        const [written] = await tx.select({ n: count() }).from(t.pg);
        if (source?.n !== rows || written?.n !== rows) {
          throw new Error(`${t.name}: the store has ${source?.n} rows, ${rows} were read and the target counts ${written?.n}; nothing was committed`);
        }
        copied.push({ name: t.name, rows });
        opts.onTable?.(t.name, rows);
      }
      return copied;
    });
  } finally {
    store.sqlite.run("COMMIT");
  }
}

type Target = ReturnType<typeof drizzle<typeof pgSchema>>;
type TargetTx = Parameters<Parameters<Target["transaction"]>[0]>[0];

async function copyTable(store: Store, tx: TargetTx, t: TablePair, wanted?: number): Promise<number> {
  const size = batchSizeFor(t.pg, wanted);
  const rowid = sql<number>`rowid`;
  let after = 0;
  let total = 0;
  for (;;) {
    const batch = await store.db
      .select({ __rowid: rowid, ...getTableColumns(t.lite) })
      .from(t.lite)
      .where(gt(rowid, after))
      .orderBy(rowid)
      .limit(size);
    if (batch.length === 0) return total;
    try {
      await tx.insert(t.pg).values(batch.map(({ __rowid: _, ...row }) => row));
    } catch (err) {
      throw new Error(`${t.name}: rows ${total + 1}–${total + batch.length} do not insert: ${reasonOf(err)}`);
    }
    after = batch.at(-1)!.__rowid;
    total += batch.length;
  }
}

/**
 * What went wrong, for a person: drizzle's query errors carry the statement and every bound
 * value (a whole batch of rows, sealed secrets included) in their message, so only the
 * driver's own error underneath is told.
 */
export function reasonOf(err: unknown): string {
  if (err instanceof DrizzleQueryError) return err.cause ? reasonOf(err.cause) : "a query failed";
  if (!(err instanceof Error)) return String(err);
  // Bun's PostgreSQL errors say "Failed to connect" and put why in their code.
  const code = (err as { code?: unknown }).code;
  const generic = typeof code === "string" && code.startsWith("ERR_POSTGRES_") && code !== "ERR_POSTGRES_SERVER_ERROR";
  return generic && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}
