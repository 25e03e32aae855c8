import { defineConfig } from "drizzle-kit";

// The PostgreSQL store (`store.url = postgres://…`); drizzle.config.ts is the embedded SQLite one.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema-pg.ts",
  out: "./migrations-pg",
});
