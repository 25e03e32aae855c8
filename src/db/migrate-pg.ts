import type { SQL } from "bun";
import { type MigrateResult, SchemaTooNewError } from "./migrate.ts";
import type { EmbeddedMigration } from "./migrations.gen.ts";
import { PG_MIGRATIONS } from "./migrations-pg.gen.ts";

/**
 * The advisory lock every snapdb migrating a PostgreSQL store takes (two int4 keys: "snap",
 * 1). Advisory locks are per database, so daemons sharing one store queue on it, and it
 * goes with the session if the process dies.
 */
const LOCK = "1936617840, 1";

const latest = (migrations: EmbeddedMigration[]) => migrations.at(-1)?.version ?? 0;

async function readVersion(sql: SQL): Promise<number> {
  const [row] = await sql`SELECT to_regclass('snapdb_schema') IS NOT NULL AS present`;
  if (!row.present) return 0;
  const [v] = await sql`SELECT version FROM snapdb_schema`;
  return v ? Number(v.version) : 0;
}

/** The PostgreSQL store's schema version (0: never migrated), read without changing anything. */
export function pgSchemaVersion(sql: SQL): Promise<number> {
  return readVersion(sql);
}

/**
 * migrate() for the PostgreSQL store: applies the embedded migrations not yet applied, each
 * in its own transaction together with the bump of the version in the one-row table
 * `snapdb_schema`, so a crash leaves the store at a whole version. Running it again is a
 * no-op; a store newer than this binary is refused untouched. The whole run holds an
 * advisory lock on one connection: several daemons starting together against the same
 * empty database wait for each other, and only the first applies anything.
 */
export async function migratePg(sql: SQL, migrations: EmbeddedMigration[] = PG_MIGRATIONS): Promise<MigrateResult> {
  const known = latest(migrations);
  const conn = await sql.reserve();
  try {
    await conn.unsafe(`SELECT pg_advisory_lock(${LOCK})`);
    try {
      const from = await readVersion(conn);
      if (from > known) throw new SchemaTooNewError(from, known);
      const applied: string[] = [];
      for (const m of migrations.filter((x) => x.version > from)) {
        await conn.begin(async (tx) => {
          // The unique index on a constant keeps the table at one row.
          await tx`CREATE TABLE IF NOT EXISTS snapdb_schema (version integer NOT NULL)`;
          await tx`CREATE UNIQUE INDEX IF NOT EXISTS snapdb_schema_one_row ON snapdb_schema ((true))`;
          for (const statement of m.sql.split("--> statement-breakpoint")) {
            if (statement.trim()) await tx.unsafe(statement);
          }
          const bumped = await tx`UPDATE snapdb_schema SET version = ${m.version}`;
          if (bumped.count === 0) await tx`INSERT INTO snapdb_schema (version) VALUES (${m.version})`;
        });
        applied.push(m.tag);
      }
      return { from, to: Math.max(from, known), applied };
    } finally {
      await conn.unsafe(`SELECT pg_advisory_unlock(${LOCK})`);
    }
  } finally {
    await conn.release();
  }
}

export const LATEST_PG_SCHEMA_VERSION = latest(PG_MIGRATIONS);
