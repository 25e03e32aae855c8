import { isAbsolute, resolve } from "node:path";
import { eq } from "drizzle-orm";
import { readKeyFile } from "../crypto/key-files.ts";
import { orgIdentity } from "../crypto/org-keys.ts";
import { SecretBox } from "../crypto/secrets.ts";
import type { Store } from "../db/client.ts";
import { dataSources } from "../db/schema.ts";
import { HISTORY_NAME, parseSegmentName, SEGMENT_NAME } from "../engines/wal-names.ts";
import { archivedWalFile, fetchWalFile, identityOnce } from "../runner/wal-file.ts";
import { storageRegistryFor, type StorageRegistry } from "../storage/registry.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, UsageError, type Command } from "./command.ts";
import { derivedKey, loadFromArgs, openStoreBesideDaemon, rotatedKeys } from "./runtime.ts";

/** The file is not archived (PostgreSQL asks past the end, and for history files that never existed). */
const NOT_ARCHIVED = 1;
/**
 * Any other failure. PostgreSQL takes a non-zero exit as "no such file" and would end the
 * recovery there (and promote, without a target time); above 125 it aborts the recovery
 * instead, so a storage outage or a corrupt file stops the server rather than cutting
 * the replay short. Started again once fixed, the recovery carries on.
 */
export const WAL_FETCH_FAILED = 128;

export const walFetchCommand: Command = {
  name: "wal-fetch",
  summary: "restore_command of a point-in-time restore: one archived WAL file, decrypted, to a path",
  usage: `snapdb wal-fetch --source DATA_SOURCE [--until SEGMENT] [flags] WALFILE PATH

What a point-in-time restore with "walDelivery": "fetch" writes as PostgreSQL's
restore_command ('… wal-fetch … %f %p'): looks up the data source's archived WAL
segment or timeline history file WALFILE, reads it from its storage destination, checks
its sha256, decrypts and decompresses it, and writes it to PATH (a temp file in PATH's
directory, renamed when complete). It reads the daemon's config, store and master key, and
works while the daemon runs (the store is only read; the data dir is not locked). Run it
as a user that can read them: the user PostgreSQL runs as, e.g. snapdb running as postgres.

Exit status: 0 written; 1 not archived (PostgreSQL asks past the end of the archive and
for history files that do not exist), quietly; ${WAL_FETCH_FAILED} any other failure, with a message
on stderr (above 125, PostgreSQL stops the recovery instead of ending it early).

  --source ID       the data source whose archive to read
  --until SEGMENT   report segments after this one as not archived (the restore's last
                    segment: PostgreSQL replays what the restore planned and no more)

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, source: { type: "string" }, until: { type: "string" } },
  positionals: true,
  async run(values, positionals) {
    if (positionals.length !== 2) throw new UsageError("give the WAL file's name and the path to write it to (restore_command's %f %p)");
    const [name, target] = positionals as [string, string];
    const source = values.source;
    if (typeof source !== "string" || !source) throw new UsageError("--source is required");
    const until = typeof values.until === "string" ? values.until : null;
    if (until !== null && !SEGMENT_NAME.test(until)) throw new UsageError(`--until ${until} is not a WAL segment name`);
    // Only archived names are ever looked up; anything else is simply not there.
    if (!SEGMENT_NAME.test(name) && !HISTORY_NAME.test(name)) return NOT_ARCHIVED;
    try {
      return await fetchOne(values, source, name, isAbsolute(target) ? target : resolve(target), until);
    } catch (err) {
      process.stderr.write(`snapdb wal-fetch: ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      return WAL_FETCH_FAILED;
    }
  },
};

async function fetchOne(values: Record<string, unknown>, sourceId: string, name: string, target: string, until: string | null): Promise<number> {
  const config = loadFromArgs(values);
  // Read, never generate: a fresh master key would open nothing.
  let master: Uint8Array;
  try {
    master = readKeyFile(config.masterKeyFile);
  } catch (err) {
    throw new Error(`cannot read the master key ${config.masterKeyFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run as a user that can read snapdb's data dir`);
  }
  let store: Store | null = null;
  let storage: StorageRegistry | null = null;
  try {
    store = await openStoreBesideDaemon(config);
    const db = store.db;
    const source = (await db.select({ orgId: dataSources.orgId }).from(dataSources).where(eq(dataSources.id, sourceId)))[0];
    if (!source) throw new Error(`no data source ${sourceId} in the store`);
    const file = await archivedWalFile(db, sourceId, name);
    if (!file) return NOT_ARCHIVED;
    if (until !== null && file.segno !== null && file.segno > parseSegmentName(until, file.sizeBytes)!.segno) return NOT_ARCHIVED;
    const secrets = new SecretBox(master, rotatedKeys(config));
    storage = storageRegistryFor(config, db, secrets, derivedKey(master, "download"));
    await fetchWalFile(
      { db, storage, toolPath: process.env.PATH ?? "/usr/bin:/bin", identity: identityOnce(() => orgIdentity(db, secrets, source.orgId)) },
      file,
      target,
      new AbortController().signal,
    );
    return 0;
  } finally {
    storage?.close();
    store?.close();
    await store?.closed;
  }
}
