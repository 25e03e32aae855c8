import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { eq, isNotNull } from "drizzle-orm";
import { readKeyFile } from "../crypto/key-files.ts";
import { keyIdOf, SecretBox } from "../crypto/secrets.ts";
import type { Store } from "../db/client.ts";
import { dataSources, notificationChannels, orgKeys, storageDestinations } from "../db/schema.ts";
import { channelSecretAad } from "../notify/channel-secret.ts";
import { ORG_KEY_AAD } from "../crypto/org-keys.ts";
import { credentialsAad } from "../modules/data-sources/credentials.ts";
import { secretAad } from "../storage/registry.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from "./command.ts";
import { loadFromArgs, openMigratedStore, withDataDirLock } from "./runtime.ts";

/*
 * Order of a rotation, chosen so that at every instant each secret's key is on disk under
 * a name that tells its key id, and a re-run finishes whatever a crash interrupted:
 *   1. the new key is written to `<file>.new-<newId>` (0600, fsynced) — or a pending one
 *      from an interrupted run is reused;
 *   2. the old key is copied to `<file>.old-<oldId>` (0600, fsynced);
 *   3. ONE transaction re-seals every secret under the new key (synchronous=FULL, so the
 *      commit is durable): the point of no return;
 *   4. `<file>.new-<newId>` is renamed over `<file>` (atomic) and the directory fsynced.
 * A crash before 3 commits changes nothing the daemon reads. A crash between 3 and 4
 * leaves secrets under the new key while `<file>` is still the old one: run the command
 * again and it adopts the pending key, finds nothing left to re-seal and does step 4.
 */

const fsyncDir = (dir: string) => {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

function writeKeyExclusive(path: string, key: Uint8Array): void {
  const fd = openSync(path, "wx", 0o600);
  try {
    writeSync(fd, Buffer.from(key).toString("base64") + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dirname(path));
}

/** Key files beside `<file>` named `<file>.<kind>-<keyId>`, whose content matches the id. */
function siblingKeys(keyFile: string, kind: "new" | "old"): Uint8Array[] {
  const dir = dirname(keyFile);
  const prefix = `${basename(keyFile)}.${kind}-`;
  const keys: Uint8Array[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix)) continue;
    try {
      const key = readKeyFile(join(dir, name));
      if (keyIdOf(key) === name.slice(prefix.length)) keys.push(key);
    } catch {}
  }
  return keys;
}

export interface PreparedRotation {
  keyFile: string;
  oldKey: Uint8Array;
  newKey: Uint8Array;
  pendingFile: string;
  oldCopy: string;
  /** True when an interrupted rotation's pending key was adopted. */
  resumed: boolean;
}

/** Steps 1 and 2. */
export function prepareRotation(keyFile: string): PreparedRotation {
  if (!existsSync(keyFile)) throw new Error(`no master key at ${keyFile}: nothing to rotate`);
  const oldKey = readKeyFile(keyFile);
  const pending = siblingKeys(keyFile, "new").filter((k) => keyIdOf(k) !== keyIdOf(oldKey));
  if (pending.length > 1) throw new Error(`more than one pending ${keyFile}.new-* key: keep the one the store uses, remove the others`);
  const resumed = pending.length === 1;
  const newKey = pending[0] ?? crypto.getRandomValues(new Uint8Array(32));
  const pendingFile = `${keyFile}.new-${keyIdOf(newKey)}`;
  if (!resumed) writeKeyExclusive(pendingFile, newKey);
  const oldCopy = `${keyFile}.old-${keyIdOf(oldKey)}`;
  if (!existsSync(oldCopy)) writeKeyExclusive(oldCopy, oldKey);
  return { keyFile, oldKey, newKey, pendingFile, oldCopy, resumed };
}

function openOrExplain(box: SecretBox, ciphertext: string, keyId: string | null, aad: string, what: string): string {
  try {
    return box.open({ ciphertext, keyId: keyId ?? "" }, aad);
  } catch (err) {
    throw new Error(`the secret of ${what} does not open: ${(err as Error).message}`);
  }
}

export interface ReencryptCounts {
  dataSources: number;
  destinations: number;
  orgKeys: number;
  notificationChannels: number;
}

/** Step 3: every secret re-sealed under `box`'s current key, in one durable transaction. */
export async function reencryptAll(store: Store, box: SecretBox): Promise<ReencryptCounts> {
  if (store.dialect === "sqlite") store.sqlite.run("PRAGMA synchronous = FULL");
  // SQLite's transactions are BEGIN IMMEDIATE already (src/db/client.ts); PostgreSQL's drizzle
  // has no `behavior` option and would send an empty SET TRANSACTION for one.
  return await store.db.transaction(async (tx) => {
    const counts = { dataSources: 0, destinations: 0, orgKeys: 0, notificationChannels: 0 };
    for (const row of await tx.select().from(dataSources).where(isNotNull(dataSources.credentialsCiphertext))) {
      if (row.credentialsKeyId === box.keyId) continue;
      const aad = credentialsAad(row.id);
      const sealed = box.seal(openOrExplain(box, row.credentialsCiphertext!, row.credentialsKeyId, aad, `data source ${row.id}`), aad);
      await tx.update(dataSources).set({ credentialsCiphertext: sealed.ciphertext, credentialsKeyId: sealed.keyId }).where(eq(dataSources.id, row.id));
      counts.dataSources++;
    }
    for (const row of await tx.select().from(storageDestinations).where(isNotNull(storageDestinations.secretCiphertext))) {
      if (row.secretKeyId === box.keyId) continue;
      const aad = secretAad(row.id);
      const sealed = box.seal(openOrExplain(box, row.secretCiphertext!, row.secretKeyId, aad, `storage destination ${row.id}`), aad);
      await tx.update(storageDestinations).set({ secretCiphertext: sealed.ciphertext, secretKeyId: sealed.keyId }).where(eq(storageDestinations.id, row.id));
      counts.destinations++;
    }
    for (const row of await tx.select().from(orgKeys)) {
      if (row.identityKeyId === box.keyId) continue;
      const aad = ORG_KEY_AAD(row.orgId);
      const sealed = box.seal(openOrExplain(box, row.identityCiphertext, row.identityKeyId, aad, `age identity of org ${row.orgId}`), aad);
      await tx.update(orgKeys).set({ identityCiphertext: sealed.ciphertext, identityKeyId: sealed.keyId }).where(eq(orgKeys.orgId, row.orgId));
      counts.orgKeys++;
    }
    for (const row of await tx.select().from(notificationChannels).where(isNotNull(notificationChannels.secretCiphertext))) {
      if (row.secretKeyId === box.keyId) continue;
      const aad = channelSecretAad(row.id);
      const sealed = box.seal(openOrExplain(box, row.secretCiphertext!, row.secretKeyId, aad, `notification channel ${row.id}`), aad);
      await tx.update(notificationChannels).set({ secretCiphertext: sealed.ciphertext, secretKeyId: sealed.keyId }).where(eq(notificationChannels.id, row.id));
      counts.notificationChannels++;
    }
    return counts;
  });
}

/** A failure after the commit: the store already uses the new key; a re-run finishes. */
export class RotationIncompleteError extends Error {}

/** Step 4. */
export function finishRotation(p: PreparedRotation): void {
  try {
    renameSync(p.pendingFile, p.keyFile);
    fsyncDir(dirname(p.keyFile));
  } catch (err) {
    throw new RotationIncompleteError(`secrets are re-encrypted under ${p.pendingFile} but ${p.keyFile} could not be replaced (${(err as Error).message}); run the command again to finish`);
  }
}

/** The whole rotation against an open store; returns what it did. */
export async function rotateMasterKey(keyFile: string, store: Store) {
  const p = prepareRotation(keyFile);
  // Every key we can find may open a secret: the current one, and older ones kept by past rotations.
  const box = new SecretBox(p.newKey, [p.oldKey, ...siblingKeys(keyFile, "old")]);
  let counts: ReencryptCounts;
  try {
    counts = await reencryptAll(store, box);
  } catch (err) {
    // Nothing committed: a key generated by this run is withdrawn so no stray pending key remains.
    if (!p.resumed) rmSync(p.pendingFile, { force: true });
    throw err;
  }
  finishRotation(p);
  return { oldKeyId: keyIdOf(p.oldKey), newKeyId: keyIdOf(p.newKey), oldCopy: p.oldCopy, resumed: p.resumed, ...counts };
}

export const rotateMasterKeyCommand: Command = {
  name: "rotate-master-key",
  summary: "generate a new master key and re-encrypt every stored secret under it",
  usage: `snapdb rotate-master-key [flags]

Generates a new master key, re-encrypts every secret in the store (data source
credentials, storage destination keys, notification channel secrets) in one transaction, then replaces the key file
atomically. The old key is kept as <key file>.old-<keyId> (0600): delete it once you
no longer need backups of the store made before the rotation.

Stop the daemon first (systemctl stop snapdb) and start it afterwards: the command
refuses to run while a daemon uses the data dir. If the command is interrupted, run
it again: it finishes the interrupted rotation instead of starting a new one.

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS },
  async run(values) {
    const config = loadFromArgs(values);
    // A running daemon keeps the old key and would seal new secrets under it: refused.
    return withDataDirLock(config, "rotate-master-key", async () => rotateLocked(config.masterKeyFile, (await openMigratedStore(config)).store));
  },
};

/** The command's rotation, with the data dir locked: prints what it did; 0 or 1. */
async function rotateLocked(keyFile: string, store: Store): Promise<number> {
  try {
    const r = await rotateMasterKey(keyFile, store);
    process.stdout.write(
      `${r.resumed ? "finished an interrupted rotation" : "rotated the master key"} ${r.oldKeyId} → ${r.newKeyId}: ` +
        `re-encrypted ${r.dataSources} data source credential(s), ${r.destinations} destination secret(s), ${r.notificationChannels} notification channel secret(s) and ${r.orgKeys} org age identit(ies).\n` +
        `old key kept at ${r.oldCopy}. Start (or restart) the daemon now.\n`,
    );
    return 0;
  } catch (err) {
    const unchanged = err instanceof RotationIncompleteError ? "" : "The store and the key file were not changed.\n";
    process.stderr.write(`snapdb rotate-master-key: ${(err as Error).message}\n${unchanged}`);
    return 1;
  } finally {
    store.close();
  }
}
