/**
 * Writes src/db/migrations.gen.ts from migrations/ (SQLite) and src/db/migrations-pg.gen.ts
 * from migrations-pg/ (PostgreSQL) so the compiled binary carries its schema history. Run
 * by `npm run db:generate`; a unit test fails when either is stale.
 */
import { renderEmbeddedMigrations, renderEmbeddedPgMigrations } from "./migrations-source.ts";

for (const [file, render] of [
  ["../src/db/migrations.gen.ts", renderEmbeddedMigrations],
  ["../src/db/migrations-pg.gen.ts", renderEmbeddedPgMigrations],
] as const) {
  const target = new URL(file, import.meta.url);
  await Bun.write(target, render());
  console.log(`wrote ${target.pathname}`);
}
