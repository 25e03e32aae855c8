import { Database } from "bun:sqlite";
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { finalizePrepared } from "./prepared.ts";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema>;
/** What a transaction callback receives; services take this so they run inside a caller's tx. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export interface Store {
  sqlite: Database;
  db: Db;
  close(): void;
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

/** Opens the metadata store: WAL, a busy timeout so a concurrent writer waits, foreign keys on. */
export function openStore(file: string): Store {
  if (file !== ":memory:") privateStoreFiles(file);
  const sqlite = new Database(file, { create: true, strict: true });
  sqlite.run("PRAGMA busy_timeout = 5000");
  sqlite.run("PRAGMA journal_mode = WAL");
  sqlite.run("PRAGMA synchronous = NORMAL");
  sqlite.run("PRAGMA foreign_keys = ON");
  const db = drizzle({ client: sqlite, schema });
  return {
    sqlite,
    db,
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
