import type { SQL } from "drizzle-orm";
import { type Db, isPostgres } from "./client.ts";

/**
 * Raw SQL that reads or writes the same on both store engines. The SQLite driver answers
 * synchronously, the PostgreSQL one with a promise; callers await either way. Aggregates
 * (`count(*)`, `max(bigint)`) come back from PostgreSQL as strings (int8 has no exact JS
 * number), so the columns named in `numeric` are turned into numbers here.
 */
type PgExecute = { execute(q: SQL): Promise<ArrayLike<unknown>> };

function numbers<T>(rows: T[], numeric: readonly string[]): T[] {
  if (!numeric.length) return rows;
  for (const row of rows as Record<string, unknown>[]) {
    for (const k of numeric) if (typeof row[k] === "string" || typeof row[k] === "bigint") row[k] = Number(row[k]);
  }
  return rows;
}

export async function rawAll<T>(db: Db, query: SQL, numeric: readonly string[] = []): Promise<T[]> {
  if (isPostgres(db)) return numbers(Array.from((await (db as unknown as PgExecute).execute(query)) as ArrayLike<T>), numeric);
  return numbers(db.all<T>(query), numeric);
}

export async function rawGet<T>(db: Db, query: SQL, numeric: readonly string[] = []): Promise<T | undefined> {
  return (await rawAll<T>(db, query, numeric))[0];
}

export async function rawRun(db: Db, query: SQL): Promise<void> {
  if (isPostgres(db)) await (db as unknown as PgExecute).execute(query);
  else db.run(query);
}

/** A LIKE pattern matching `text` anywhere, its own `%`, `_` and backslash literal (with `ESCAPE` backslash). */
export const containsPattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
