import { type PgServer, startPostgres } from "./postgres.ts";

/**
 * The store matrix: `SNAPDB_TEST_STORE=postgres` runs the API suite against the PostgreSQL
 * store (fleet mode) instead of the embedded SQLite one. One PostgreSQL server per test
 * process; every harness gets a database of its own, so each starts as empty as a new
 * SQLite file would.
 */
export const testStore = (): "sqlite" | "postgres" => (process.env.SNAPDB_TEST_STORE === "postgres" ? "postgres" : "sqlite");

/**
 * On the PostgreSQL leg each harness is a fleet node labelled `matrix=harness`, and a SQLite
 * source must name the node its file is on (`runOn`; 400 without it on a shared store):
 * what pinnedToHarness() adds to a create body. On the SQLite leg both are empty.
 */
export const MATRIX_NODE_LABELS = "matrix=harness";
export const pinnedToHarness = (): { runOn?: { labels: Record<string, string> } } =>
  testStore() === "postgres" ? { runOn: { labels: { matrix: "harness" } } } : {};

let server: Promise<PgServer> | null = null;
let databases = 0;

/** A fresh, empty PostgreSQL store's URL under the matrix; null on the SQLite leg. */
export async function freshStoreUrl(): Promise<string | null> {
  if (testStore() !== "postgres") return null;
  server ??= startPostgres();
  const pg = await server;
  const name = `snapdb_store_${process.pid}_${++databases}`;
  pg.psql(`CREATE DATABASE ${name} OWNER ${pg.user}`);
  return `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${name}`;
}
