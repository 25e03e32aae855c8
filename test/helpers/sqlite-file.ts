import { Database } from "bun:sqlite";
import { join } from "node:path";

/**
 * A SQLite file at `path` with one table `t (id, v)` of `rows` rows ("row 0", "row 1", …);
 * `wal` leaves it in WAL mode. Returns the path.
 */
export function sqliteWithRows(path: string, rows = 20, opts: { wal?: boolean } = {}): string {
  const db = new Database(path);
  if (opts.wal) db.run("PRAGMA journal_mode = WAL");
  db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(`row ${i}`);
  })();
  // Finalized first: with a statement left, close() only marks the connection, and the real
  // close (which deletes a WAL file by name) would come whenever the collector finalizes it,
  // long after a test may have put something else at that name.
  insert.finalize();
  db.close();
  return path;
}

/** The same under a fresh name in `dir`: a source of the test's own, depending on no other test's file. */
export function smallSqlite(dir: string, rows = 20): string {
  return sqliteWithRows(join(dir, `src-${crypto.randomUUID()}.db`), rows);
}
