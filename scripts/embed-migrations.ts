/**
 * Writes src/db/migrations.gen.ts from migrations/ so the compiled binary carries its
 * schema history. Run by `npm run db:generate`; a unit test fails when it is stale.
 */
import { renderEmbeddedMigrations } from "./migrations-source.ts";

const target = new URL("../src/db/migrations.gen.ts", import.meta.url);
await Bun.write(target, renderEmbeddedMigrations());
console.log(`wrote ${target.pathname}`);
