import { openPgStore, openPgStoreReadOnly } from "../db/pg-store.ts";
import { LATEST_PG_SCHEMA_VERSION } from "../db/migrate-pg.ts";
import { createHmac } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ConfigError, loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { ensureKeyFile, readKeyFile } from "../crypto/key-files.ts";
import { SecretBox } from "../crypto/secrets.ts";
import { openStore, openStoreReadOnly, type Store } from "../db/client.ts";
import { LATEST_SCHEMA_VERSION, migrate, type MigrateResult } from "../db/migrate.ts";
import { configFlags } from "./command.ts";
import { DataDirLockedError, lockDataDir, StoreInUseError, type DataDirLock } from "./data-dir-lock.ts";

export const storeFile = (config: Config) => join(config.dataDir, "snapdb.db");

export function loadFromArgs(values: Record<string, unknown>, env = process.env): Config {
  return loadConfig({ flags: configFlags(values), env }).config;
}

/**
 * The HS256 secret: the configured one, else the generated one in the data dir. A client
 * passes `create: false`: it reads the daemon's secret (or throws the fs error), since one
 * it made up would only mint tokens nobody accepts.
 */
export function hsSecret(config: Config, opts: { create?: boolean } = {}): Uint8Array | null {
  if (config.auth.publicKeyFile || config.auth.jwksUrl) return null;
  if (config.auth.jwtSecret) return new TextEncoder().encode(config.auth.jwtSecret);
  return opts.create === false ? readKeyFile(config.auth.jwtSecretFile) : ensureKeyFile(config.auth.jwtSecretFile);
}

export function masterKey(config: Config): Uint8Array {
  return ensureKeyFile(config.masterKeyFile);
}

/**
 * Keys left beside the master key by `snapdb rotate-master-key`: the previous ones
 * (`.old-<id>`) and one pending after an interrupted rotation (`.new-<id>`). Loading them
 * lets the daemon read every secret at any point of a rotation, even one cut short.
 */
export function rotatedKeys(config: Config): Uint8Array[] {
  const dir = dirname(config.masterKeyFile);
  const base = basename(config.masterKeyFile);
  const keys: Uint8Array[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(`${base}.old-`) && !name.startsWith(`${base}.new-`)) continue;
    try {
      keys.push(readKeyFile(join(dir, name)));
    } catch {
      // not a key file of ours: ignore it rather than refuse to start
    }
  }
  return keys;
}

/** The master key and every rotated key beside it. */
export function secretBoxFor(config: Config): { master: Uint8Array; secrets: SecretBox } {
  const master = masterKey(config);
  return { master, secrets: new SecretBox(master, rotatedKeys(config)) };
}

/** A purpose-bound key derived from the master key (cursors, download tokens, …). */
export function derivedKey(master: Uint8Array, purpose: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", master).update(`snapdb/${purpose}/v1`).digest());
}

/**
 * The data dir holds the keys and the store. Ours and open to others: tightened to 0700.
 * Someone else's and writable by group or others: refused, since whoever can write it can
 * swap the store or the keys under the daemon.
 */
export function secureDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  const mode = st.mode & 0o777;
  const uid = process.getuid?.();
  if (uid === undefined || st.uid === uid) {
    if (mode & 0o077) chmodSync(dir, 0o700);
    return;
  }
  if (mode & 0o022) {
    const octal = `0${mode.toString(8).padStart(3, "0")}`;
    throw new ConfigError([
      `dataDir ${dir}: mode ${octal} lets other users write it and it belongs to uid ${st.uid}, not to this process (uid ${uid}); ` + `fix it: chown <daemon user> ${dir} && chmod 700 ${dir}`,
    ]);
  }
}

/** The store as the config names it: the embedded SQLite file, or the shared PostgreSQL database (fleet mode). */
export async function openMigratedStore(config: Config): Promise<{ store: Store; migration: MigrateResult }> {
  secureDataDir(config.dataDir);
  if (config.store.url) return openPgStore(config.store.url);
  const store = openStore(storeFile(config));
  try {
    return { store, migration: migrate(store.sqlite) };
  } catch (err) {
    store.sqlite.close();
    throw err;
  }
}

/** For a command that changes the store: runs `fn` holding the data dir's lock (refused while a daemon runs). */
export async function withDataDirLock<T>(config: Config, command: string, fn: () => Promise<T> | T): Promise<T> {
  const lock = lockDataDir(config.dataDir, command);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/**
 * For a command that only reads the store (key export), also while the daemon runs: then the
 * store is opened as the daemon left it, never migrated under it, and must be at this
 * binary's schema; otherwise the lock is held while the store is migrated and read.
 */
export async function withStoreForReading<T>(config: Config, command: string, fn: (store: Store) => Promise<T> | T): Promise<T> {
  let lock: DataDirLock | null = null;
  try {
    lock = lockDataDir(config.dataDir, command);
  } catch (err) {
    if (!(err instanceof DataDirLockedError)) throw err;
  }
  try {
    // A PostgreSQL store is shared by running daemons anyway: it is opened (and migrated) as they do.
    const store = lock || config.store.url ? (await openMigratedStore(config)).store : openStore(storeFile(config));
    try {
      const version = store.schemaVersion();
      if (store.dialect === "sqlite" && version !== LATEST_SCHEMA_VERSION) {
        throw new StoreInUseError(`the store is at schema ${version} and this snapdb expects ${LATEST_SCHEMA_VERSION}: run the daemon's own snapdb binary, or stop the daemon first`);
      }
      return await fn(store);
    } finally {
      store.close();
    }
  } finally {
    lock?.release();
  }
}

/**
 * The store opened beside a running daemon without touching it (`snapdb wal-fetch`): no
 * data-dir lock (a daemon starting meanwhile must not be refused), no migration, read-only
 * (SQLite: a read-only connection, which WAL mode lets read while the daemon writes;
 * PostgreSQL: read-only transactions). It must be at this binary's schema.
 */
export async function openStoreBesideDaemon(config: Config): Promise<Store> {
  const store = config.store.url ? await openPgStoreReadOnly(config.store.url) : openStoreReadOnly(storeFile(config));
  const latest = store.dialect === "postgres" ? LATEST_PG_SCHEMA_VERSION : LATEST_SCHEMA_VERSION;
  const version = store.schemaVersion();
  if (version !== latest) {
    store.close();
    throw new StoreInUseError(`the store is at schema ${version} and this snapdb expects ${latest}: run the daemon's own snapdb binary`);
  }
  return store;
}
