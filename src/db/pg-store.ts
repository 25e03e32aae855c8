import { SQL } from "bun";
import { drizzle } from "drizzle-orm/bun-sql";
import { maskUrl } from "../lib/mask-url.ts";
import type { Db, Store } from "./client.ts";
import type { MigrateResult } from "./migrate.ts";
import { migratePg, pgSchemaVersion } from "./migrate-pg.ts";
import * as pgSchema from "./schema-pg.ts";
import { useStoreDialect } from "./schema.ts";

const PING_MS = 5_000;

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages and logs. */
export const maskStoreUrl = (url: string): string => maskUrl(url);

/** Closes `client` and says why the store could not be opened, the URL's password masked. */
async function openFailure(client: SQL, url: string, err: unknown): Promise<Error> {
  await client.close({ timeout: 0 }).catch(() => {});
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`the PostgreSQL store at ${maskStoreUrl(url)} could not be opened: ${message.split(url).join(maskStoreUrl(url))}`);
}

/** The Store over an opened client; `onClose` stops what watches it. */
function pgStoreOf(client: SQL, health: { healthy(): boolean; schemaVersion(): number }, onClose = () => {}): Store {
  useStoreDialect("postgres");
  const db = drizzle({ client, schema: pgSchema }) as unknown as Db;
  const store: Store = {
    dialect: "postgres",
    get sqlite(): never {
      throw new Error("the PostgreSQL store has no SQLite connection");
    },
    db,
    healthy: () => health.healthy(),
    schemaVersion: () => health.schemaVersion(),
    close() {
      onClose();
      store.closed = client.close({ timeout: 5 }).catch(() => {});
    },
  };
  return store;
}

/**
 * Opens the shared PostgreSQL store (fleet mode) and migrates it (under an advisory lock, so
 * nodes starting together migrate once). From here on the process's tables are the
 * PostgreSQL ones (src/db/schema.ts). Connection errors name the URL without its password.
 */
export async function openPgStore(url: string, opts: { max?: number } = {}): Promise<{ store: Store; migration: MigrateResult }> {
  const client = new SQL(url, { max: opts.max ?? 10, idleTimeout: 60, connectionTimeout: 10 });
  let migration: MigrateResult;
  try {
    migration = await migratePg(client);
  } catch (err) {
    throw await openFailure(client, url, err);
  }
  let healthy = true;
  let version = migration.to;
  const ping = setInterval(async () => {
    try {
      version = await pgSchemaVersion(client);
      healthy = true;
    } catch {
      healthy = false;
    }
  }, PING_MS);
  ping.unref?.();
  const store = pgStoreOf(client, { healthy: () => healthy, schemaVersion: () => version }, () => clearInterval(ping));
  return { store, migration };
}

/**
 * The shared PostgreSQL store for a process beside the daemons (`snapdb wal-fetch`): one
 * connection whose transactions are read-only, never migrated; its schema must be the one
 * this binary knows.
 */
export async function openPgStoreReadOnly(url: string): Promise<Store> {
  const client = new SQL(url, { max: 1, idleTimeout: 10, connectionTimeout: 10, connection: { default_transaction_read_only: "on" } });
  let version: number;
  try {
    version = await pgSchemaVersion(client);
  } catch (err) {
    throw await openFailure(client, url, err);
  }
  return pgStoreOf(client, { healthy: () => true, schemaVersion: () => version });
}
