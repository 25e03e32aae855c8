import { createHmac } from "node:crypto";
import { join } from "node:path";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { ensureKeyFile } from "../crypto/key-files.ts";
import { openStore, type Store } from "../db/client.ts";
import { migrate, type MigrateResult } from "../db/migrate.ts";
import { configFlags } from "./command.ts";

export const storeFile = (config: Config) => join(config.dataDir, "snapdb.db");

export function loadFromArgs(values: Record<string, unknown>, env = process.env): Config {
  return loadConfig({ flags: configFlags(values), env }).config;
}

/** The HS256 secret: the configured one, else the generated one in the data dir. */
export function hsSecret(config: Config): Uint8Array | null {
  if (config.auth.publicKeyFile || config.auth.jwksUrl) return null;
  if (config.auth.jwtSecret) return new TextEncoder().encode(config.auth.jwtSecret);
  return ensureKeyFile(config.auth.jwtSecretFile);
}

export function masterKey(config: Config): Uint8Array {
  return ensureKeyFile(config.masterKeyFile);
}

/** A purpose-bound key derived from the master key (cursors, download tokens, …). */
export function derivedKey(master: Uint8Array, purpose: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", master).update(`snapdb/${purpose}/v1`).digest());
}

export function openMigratedStore(config: Config): { store: Store; migration: MigrateResult } {
  const store = openStore(storeFile(config));
  try {
    return { store, migration: migrate(store.sqlite) };
  } catch (err) {
    store.sqlite.close();
    throw err;
  }
}
