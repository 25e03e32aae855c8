import { Database } from "bun:sqlite";
import { AsyncLocalStorage } from "node:async_hooks";
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { is } from "drizzle-orm";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { PgDialect } from "drizzle-orm/pg-core";
import { finalizePrepared } from "./prepared.ts";
import { useStoreDialect } from "./schema.ts";
import * as schema from "./schema-sqlite.ts";

/**
 * The store as services see it. Its types are drizzle's SQLite ones; on a PostgreSQL store the
 * same object is drizzle's PostgreSQL database over the PostgreSQL tables of the same names
 * (src/db/schema-pg.ts). Services only use what both have: awaited query builders,
 * `transaction(async (tx) => …)`, and src/db/raw.ts for raw SQL.
 */
export type Db = BunSQLiteDatabase<typeof schema>;
/** What a transaction callback receives; services take this so they run inside a caller's tx. */
export type Tx = Db;

export const isPostgres = (db: Db): boolean => is((db as unknown as { dialect: unknown }).dialect, PgDialect);

export interface Store {
  dialect: "sqlite" | "postgres";
  /** The embedded store's connection (SQLite only: on PostgreSQL reading it throws). */
  sqlite: Database;
  db: Db;
  /** The store answers (readiness): SQLite asks now, PostgreSQL reports its last periodic ping. */
  healthy(): boolean;
  /** The schema version the store is at (readiness compares it with this binary's). */
  schemaVersion(): number;
  close(): void;
  /** Settles when close() has finished (PostgreSQL closes its pool asynchronously). */
  closed?: Promise<void>;
}

/**
 * The store holds every secret sealed and the audit log: 0600 whatever the umask. SQLite
 * creates the -wal and -shm files with the database file's mode, so creating that one
 * first (and tightening files an older version left wider) covers all three.
 */
function privateStoreFiles(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  closeSync(openSync(file, "a", 0o600));
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if (statSync(path).mode & 0o077) chmodSync(path, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

/**
 * Opens the metadata store: WAL, a busy timeout so a concurrent writer waits, foreign keys on.
 * From here on the process's tables are the SQLite ones (src/db/schema.ts), as opening a
 * PostgreSQL store makes them the PostgreSQL ones: the store opened last is the one served.
 */
export function openStore(file: string): Store {
  useStoreDialect("sqlite");
  if (file !== ":memory:") privateStoreFiles(file);
  const sqlite = new Database(file, { create: true, strict: true });
  sqlite.run("PRAGMA busy_timeout = 5000");
  sqlite.run("PRAGMA journal_mode = WAL");
  sqlite.run("PRAGMA synchronous = NORMAL");
  sqlite.run("PRAGMA foreign_keys = ON");
  const db = drizzle({ client: sqlite, schema });
  asyncTransactions(sqlite, db);
  return {
    dialect: "sqlite",
    sqlite,
    db,
    healthy: () => sqlite.query("SELECT 1 AS ok").get() !== null,
    schemaVersion: () => (sqlite.query("PRAGMA user_version").get() as { user_version: number }).user_version,
    close() {
      finalizePrepared(db);
      // Fold the WAL back so a copied data dir is one self-contained file.
      try {
        sqlite.run("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch {}
      sqlite.close();
    },
  };
}

/**
 * Opens the store file read-only, for a process beside the daemon (`snapdb wal-fetch`): no
 * lock, no migration, no PRAGMA that writes. SQLite's WAL mode lets it read while the daemon
 * writes; the file must exist.
 */
export function openStoreReadOnly(file: string): Store {
  useStoreDialect("sqlite");
  // bun:sqlite would make an empty database where there is none.
  closeSync(openSync(file, "r"));
  const sqlite = new Database(file, { readonly: true, strict: true });
  sqlite.run("PRAGMA busy_timeout = 5000");
  const db = drizzle({ client: sqlite, schema });
  return {
    dialect: "sqlite",
    sqlite,
    db,
    healthy: () => sqlite.query("SELECT 1 AS ok").get() !== null,
    schemaVersion: () => (sqlite.query("PRAGMA user_version").get() as { user_version: number }).user_version,
    close() {
      finalizePrepared(db);
      sqlite.close();
    },
  };
}

type TxFn<T> = (tx: Db) => Promise<T> | T;

const AFTER_COMMIT = Symbol("afterCommit");
type AfterCommit = (fn: () => void) => void;

/**
 * Runs `fn` once the transaction `tx` belongs to has committed (never if it rolls back); outside
 * a transaction, on the next microtask. On SQLite this matters: the connection is shared, so a
 * read made while a transaction is open sees its uncommitted rows, and a reader woken too early
 * would act on an event that may still roll back. On PostgreSQL other connections cannot see
 * them: `fn` runs on the next microtask, and a reader it wakes before the commit finds nothing
 * yet (the row is found by that reader's next look).
 */
export function afterCommit(tx: Db | Tx, fn: () => void): void {
  const hook = (tx as unknown as { [AFTER_COMMIT]?: AfterCommit })[AFTER_COMMIT];
  if (hook) hook(fn);
  else queueMicrotask(fn);
}

/**
 * drizzle's SQLite transactions take a synchronous callback, and services are written once for
 * both engines with `await` in them. Here a transaction is `BEGIN IMMEDIATE … COMMIT` around the
 * awaited callback, one at a time (a queue: the connection is shared, so a second BEGIN would
 * fail), and a nested `tx.transaction` is a savepoint. The callback receives a second drizzle
 * handle on the same connection so a nested call knows it is nested.
 */
function asyncTransactions(sqlite: Database, db: Db): void {
  const txDb = drizzle({ client: sqlite, schema });
  // Which transaction the running code is inside, if any: a `db.transaction` called from within
  // one (a helper that opens its own, called by a caller that batches) nests as a savepoint
  // instead of waiting for the queue it is holding up.
  const inside = new AsyncLocalStorage<{ open: boolean; committed: (() => void)[] }>();
  let tail: Promise<unknown> = Promise.resolve();
  let savepoints = 0;
  const run = async <T>(fn: TxFn<T>): Promise<T> => {
    const token = { open: true, committed: [] as (() => void)[] };
    sqlite.run("BEGIN IMMEDIATE");
    let result: T;
    try {
      result = await inside.run(token, () => fn(txDb));
      sqlite.run("COMMIT");
    } catch (err) {
      if (sqlite.inTransaction) sqlite.run("ROLLBACK");
      throw err;
    } finally {
      token.open = false;
    }
    for (const hook of token.committed) queueMicrotask(hook);
    return result;
  };
  const afterCommitHook: AfterCommit = (fn) => {
    const token = inside.getStore();
    if (token?.open) token.committed.push(fn);
    else queueMicrotask(fn);
  };
  for (const handle of [db, txDb]) (handle as unknown as { [AFTER_COMMIT]: AfterCommit })[AFTER_COMMIT] = afterCommitHook;
  (db as unknown as { transaction: unknown }).transaction = <T>(fn: TxFn<T>): Promise<T> => {
    if (inside.getStore()?.open) return txDb.transaction(fn as (tx: unknown) => Promise<T>) as Promise<T>;
    const next = tail.then(() => run(fn));
    tail = next.catch(() => {});
    return next;
  };
  (txDb as unknown as { transaction: unknown }).transaction = async <T>(fn: TxFn<T>): Promise<T> => {
    const name = `sp${++savepoints}`;
    sqlite.run(`SAVEPOINT ${name}`);
    try {
      const result = await fn(txDb);
      sqlite.run(`RELEASE ${name}`);
      return result;
    } catch (err) {
      sqlite.run(`ROLLBACK TO ${name}`);
      sqlite.run(`RELEASE ${name}`);
      throw err;
    }
  };
}
