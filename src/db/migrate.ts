import type { Database } from "bun:sqlite";
import { MIGRATIONS, type EmbeddedMigration } from "./migrations.gen.ts";

export class SchemaTooNewError extends Error {
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(`the metadata store is at schema version ${found}, newer than this snapdb binary knows (${known}); ` + `run the snapdb version that wrote it, or a newer one`);
    this.name = "SchemaTooNewError";
  }
}

export interface MigrateResult {
  from: number;
  to: number;
  applied: string[];
}

const latest = (migrations: EmbeddedMigration[]) => migrations.at(-1)?.version ?? 0;

export function schemaVersion(sqlite: Database): number {
  return (sqlite.query("PRAGMA user_version").get() as { user_version: number }).user_version;
}

/**
 * Applies the embedded migrations not yet applied, each in its own transaction together
 * with the bump of `PRAGMA user_version`, so a crash leaves the store at a whole version.
 * Running it again is a no-op; a store newer than this binary is refused untouched.
 */
export function migrate(sqlite: Database, migrations: EmbeddedMigration[] = MIGRATIONS): MigrateResult {
  const from = schemaVersion(sqlite);
  const known = latest(migrations);
  if (from > known) throw new SchemaTooNewError(from, known);
  const applied: string[] = [];
  for (const m of migrations.filter((x) => x.version > from)) {
    sqlite.transaction(() => {
      for (const statement of m.sql.split("--> statement-breakpoint")) {
        if (statement.trim()) sqlite.run(statement);
      }
      sqlite.run(`PRAGMA user_version = ${m.version}`);
    })();
    applied.push(m.tag);
  }
  return { from, to: Math.max(from, known), applied };
}

export const LATEST_SCHEMA_VERSION = latest(MIGRATIONS);
