import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Store } from "../../src/db/client.ts";
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
export const pinnedToHarness = (): { runOn?: { labels: Record<string, string> } } => (testStore() === "postgres" ? { runOn: { labels: { matrix: "harness" } } } : {});

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

const byDataDir = new Map<string, Promise<string | null>>();

/** The store of a daemon on `dataDir` under the matrix: a fresh one the first time, then the same (null on the SQLite leg). */
export function storeUrlFor(dataDir: string): Promise<string | null> {
  let url = byDataDir.get(dataDir);
  if (!url) byDataDir.set(dataDir, (url = freshStoreUrl()));
  return url;
}

const filesUnder = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? filesUnder(join(dir, n)) : [join(dir, n)]));

/**
 * Everything the store holds, as bytes, for a test that greps it for secrets. SQLite: the
 * store file, its WAL and shm (after a checkpoint of the given mode). PostgreSQL: a pg_dump of
 * the store's database (every value as stored, TOAST decompressed) and, after a CHECKPOINT,
 * the database's data files and the server's WAL.
 */
export async function storeAtRest(h: { store: Store; config: { dataDir: string; store: { url: string } } }, checkpoint: "PASSIVE" | "TRUNCATE" = "PASSIVE"): Promise<[string, Buffer][]> {
  if (h.store.dialect === "sqlite") h.store.sqlite.run(`PRAGMA wal_checkpoint(${checkpoint})`);
  return storeBytesOf(h.config.dataDir, h.config.store.url || null);
}

/**
 * The same for a daemon (a child process) on `dataDir` under the matrix: its store file, WAL
 * and shm as they are (no checkpoint from here), or its PostgreSQL store as above.
 */
export async function daemonStoreAtRest(dataDir: string): Promise<[string, Buffer][]> {
  return storeBytesOf(dataDir, await storeUrlFor(dataDir));
}

async function storeBytesOf(dataDir: string, url: string | null): Promise<[string, Buffer][]> {
  if (!url) {
    const file = join(dataDir, "snapdb.db");
    return [file, `${file}-wal`, `${file}-shm`].filter(existsSync).map((f) => [f, readFileSync(f)]);
  }
  if (!server) throw new Error("no PostgreSQL store server in this process");
  const pg = await server;
  const name = new URL(url).pathname.slice(1);
  const dump = Bun.spawnSync(["runuser", "-u", "postgres", "--", join(pg.binDir, "pg_dump"), "-h", pg.socketDir, "-p", String(pg.port), "-U", "postgres", name], { stdout: "pipe", stderr: "pipe" });
  if (dump.exitCode !== 0) throw new Error(`pg_dump ${name}: ${dump.stderr.toString()}`);
  pg.psql("CHECKPOINT;");
  const oid = pg.psql(`SELECT oid FROM pg_database WHERE datname = '${name}';`).trim();
  const files = [...filesUnder(join(pg.dataDir, "base", oid)), ...filesUnder(join(pg.dataDir, "pg_wal")).filter((f) => !f.includes("archive_status"))];
  return [[`pg_dump ${name}`, dump.stdout], ...files.map((f): [string, Buffer] => [f, readFileSync(f)])];
}

/** Runs SQL as the superuser in the harness's PostgreSQL store database (psql -qAtX); returns stdout. */
export async function storeSuperuserSql(h: { config: { store: { url: string } } }, sql: string): Promise<string> {
  if (!server) throw new Error("no PostgreSQL store server in this process");
  return (await server).psql(sql, new URL(h.config.store.url).pathname.slice(1));
}

/** Runs SQL as the superuser in the store server's maintenance database (for statements about a store database itself). */
export async function storeServerSql(sql: string): Promise<string> {
  if (!server) throw new Error("no PostgreSQL store server in this process");
  return (await server).psql(sql);
}

/** The PostgreSQL server the matrix's stores live on (started on first use): a test may add a database of its own to it. */
export async function storeServer(): Promise<PgServer> {
  if (testStore() !== "postgres") throw new Error("the store server exists on the PostgreSQL leg only");
  server ??= startPostgres();
  return server;
}
