import { appendFileSync, chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { and, eq, isNull } from "drizzle-orm";
import type { Config } from "../config/schema.ts";
import { decryptStream } from "../crypto/age.ts";
import { orgIdentity } from "../crypto/org-keys.ts";
import { storageDestinations, walSegments } from "../db/schema.ts";
import { findTool } from "../engines/process.ts";
import { RestoreSetupError } from "../engines/restore.ts";
import { toolInput } from "../engines/tool-stream.ts";
import { checkRestoreDirectory, type RestoreDirectoryPolicy } from "../lib/restore-directory.ts";
import { StorageError } from "../storage/errors.ts";
import type { StorageDriver } from "../storage/types.ts";
import { decompressStage, type CompressionAlgorithm } from "./compression.ts";
import { planPointInTime, recoveryWindowOf, type RecoveryWindow } from "./recovery-window.ts";
import { tagged } from "./restore-chain.ts";
import type { RestoreDeps, RestoreProgress, RestoreRow } from "./restore.ts";

/** The WAL a restore needs, copied into the data directory: restore_command reads it there. */
export const WAL_ARCHIVE_DIR = "pg_wal_archive";

export function restoreDirectoryPolicy(config: Config): RestoreDirectoryPolicy {
  const reservedDirs = [config.dataDir, ...config.storage.allowedLocalRoots];
  if (config.managedStorage.type === "local") reservedDirs.push(config.managedStorage.path);
  return { roots: config.storage.allowedRestoreRoots, reservedDirs };
}

export const windowText = (w: RecoveryWindow | null) =>
  w ? `the recovery window is ${new Date(w.from).toISOString()} to ${new Date(w.to).toISOString()}` : "there is no recovery window yet (no base backup with its WAL archived)";

/** How far a point-in-time restore got: what a failure leaves (nothing: it cleans up). */
export interface PitrState {
  directory: string | null;
  /** Whether the restore made the directory (else it was there, empty). */
  created: boolean;
}

export function pitrStateNote(state: PitrState): string {
  if (!state.directory) return "the target directory was not touched";
  return state.created ? `the directory ${state.directory} that the restore had created was removed` : `the directory ${state.directory} was emptied again`;
}

interface StoredFile {
  objectKey: string;
  sha256: string | null;
  storedBytes: number | null;
  format: { compression?: CompressionAlgorithm; encrypted?: boolean };
}

/**
 * A stored object as its plain bytes: read, checked against its recorded size and sha256
 * (the stream errors with CHECKSUM_MISMATCH at its end otherwise), decrypted with the org's
 * identity, decompressed. The consumer must not keep what it wrote before the stream ended.
 */
async function plainStream(deps: RestoreDeps, driver: StorageDriver, file: StoredFile, identity: () => Promise<string>, signal: AbortSignal, progress: RestoreProgress) {
  const { body } = await driver.get(file.objectKey);
  const hash = createHash("sha256");
  let read = 0;
  let stream = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        read += chunk.byteLength;
        progress.bytesRead += chunk.byteLength;
        controller.enqueue(chunk);
      },
      flush() {
        if (hash.digest("hex") !== file.sha256 || (file.storedBytes !== null && read !== file.storedBytes)) {
          throw new RestoreSetupError("CHECKSUM_MISMATCH", `${file.objectKey}: the stored file's sha256 or size differs from the one recorded when it was archived`);
        }
      },
    }),
  );
  if (file.format.encrypted) {
    const failed = (err: unknown) => `${file.objectKey} does not decrypt with the organisation's age identity: ${err instanceof Error ? err.message : String(err)}`;
    stream = await decryptStream(stream, [await identity()]).catch((err: unknown) => {
      if (err instanceof RestoreSetupError || err instanceof StorageError) throw err;
      throw new RestoreSetupError("DECRYPT_FAILED", failed(err));
    });
    // age authenticates every chunk: a changed byte fails here, before the checksum at the end.
    stream = tagged(stream, (err) => new RestoreSetupError("DECRYPT_FAILED", failed(err)));
  }
  const decompress = decompressStage(file.format.compression ?? "none", deps.dumpEnv.toolPath, signal);
  if (decompress) {
    stream = tagged(stream.pipeThrough(decompress), (err) => new RestoreSetupError("DECOMPRESS_FAILED", `${file.objectKey} does not decompress: ${err instanceof Error ? err.message : String(err)}`));
  }
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        progress.bytesWritten += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
}

/** Writes a stream to `path` through a temp file, fsynced and renamed once the stream ended well. */
async function writeWhole(stream: ReadableStream<Uint8Array>, path: string, signal: AbortSignal): Promise<void> {
  const temp = `${path}.restoring`;
  const fd = openSync(temp, "w", 0o600);
  try {
    for await (const chunk of stream) {
      if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
      let off = 0;
      while (off < chunk.byteLength) off += writeSync(fd, chunk, off);
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(temp, path);
}

/** `2026-11-26 10:00:00.123+00`: what recovery_target_time parses (it refuses the ISO `T…Z` form). */
export const pgTimestamp = (ms: number) => `${new Date(ms).toISOString().replace("T", " ").replace("Z", "")}+00`;

/** A GUC value in postgresql.auto.conf: single-quoted, `'` doubled. */
const gucValue = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * A point-in-time restore: builds a PostgreSQL data directory at `targetDirectory` that
 * recovers to `targetTime` on its first start and is promoted there. The newest base backup
 * that ended at or before the target is unpacked (`tar -x`, the stored file decrypted and
 * decompressed on the way), the WAL the recovery needs is copied, plain, into
 * `pg_wal_archive/` inside it, and postgresql.auto.conf gets
 * `restore_command = 'cp pg_wal_archive/%f %p'` (run with the data directory as working
 * directory), the target and `recovery_target_action = 'promote'`, plus `recovery.signal`.
 * So PostgreSQL, running as its own OS user, needs nothing of snapdb's. A failure removes
 * what it wrote.
 */
export async function runPointInTimeRestore(
  deps: RestoreDeps & { restoreDirs: RestoreDirectoryPolicy },
  row: RestoreRow,
  signal: AbortSignal,
  progress: RestoreProgress,
  state: PitrState,
): Promise<void> {
  const targetTime = row.targetTime!;
  const window = await recoveryWindowOf(deps.db, row.sourceDataSourceId);
  const plan = window ? planPointInTime(window, targetTime) : null;
  if (!plan) throw new RestoreSetupError("OUTSIDE_WINDOW", `${new Date(targetTime).toISOString()} is no longer reachable: ${windowText(window)}`);
  const check = checkRestoreDirectory(row.targetDirectory!, deps.restoreDirs);
  if (!check.ok) throw new RestoreSetupError(/not empty/.test(check.reason) ? "TARGET_NOT_EMPTY" : "PATH_NOT_ALLOWED", check.reason);
  const tar = findTool("tar", deps.dumpEnv.toolPath);
  if (!tar) throw new RestoreSetupError("RESTORE_TOOL_MISSING", "tar is not on the daemon's PATH");
  const job = plan.backup.job;
  const destinationOf = async (id: string | null) => {
    const dest = id ? (await deps.db.select().from(storageDestinations).where(eq(storageDestinations.id, id)))[0] : undefined;
    if (!dest) throw new RestoreSetupError("BACKUP_FILE_MISSING", "the storage destination of the backup or its WAL was deleted");
    return dest;
  };
  let identity: string | null = null;
  const identityOf = async () => {
    identity ??= (await orgIdentity(deps.db, deps.secrets, row.orgId));
    if (!identity) throw new RestoreSetupError("DECRYPT_FAILED", "the organisation has no age identity to decrypt with");
    return identity;
  };

  const dir = check.real;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  state.directory = dir;
  state.created = !check.exists;
  // PostgreSQL refuses a data directory others may read.
  chmodSync(dir, 0o700);

  const base = await plainStream(
    deps,
    deps.storage.driverFor((await destinationOf(job.destinationId))),
    { objectKey: job.objectKey!, sha256: job.sha256, storedBytes: job.storedBytes, format: (job.format ?? {}) as StoredFile["format"] },
    identityOf,
    signal,
    progress,
  );
  // --no-same-owner: the files belong to the daemon's user, whoever owned them on the source.
  await toolInput([tar, "-x", "-f", "-", "-C", dir, "--no-same-owner"], base, { toolPath: deps.dumpEnv.toolPath, signal });

  const archive = join(dir, WAL_ARCHIVE_DIR);
  mkdirSync(archive, { recursive: true, mode: 0o700 });
  const histories = await deps.db
    .select()
    .from(walSegments)
    .where(and(eq(walSegments.dataSourceId, row.sourceDataSourceId), isNull(walSegments.segno)))
    ;
  for (const segment of [...histories, ...plan.segments]) {
    if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
    const plain = await plainStream(deps, deps.storage.driverFor((await destinationOf(segment.destinationId))), { ...segment, format: segment.format as StoredFile["format"] }, identityOf, signal, progress);
    await writeWhole(plain, join(archive, segment.name), signal);
  }

  const lines = [
    "",
    `# snapdb point-in-time restore ${row.id}: recover from the base backup ${job.id} to ${new Date(targetTime).toISOString()}`,
    `restore_command = ${gucValue(`cp ${WAL_ARCHIVE_DIR}/%f %p`)}`,
  ];
  if (plan.untilEnd) lines.push(`# ${new Date(targetTime).toISOString()} is at or after the last archived transaction: all of the archived WAL is replayed`);
  else lines.push(`recovery_target_time = ${gucValue(pgTimestamp(targetTime))}`, "recovery_target_action = 'promote'");
  appendFileSync(join(dir, "postgresql.auto.conf"), `${lines.join("\n")}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "recovery.signal"), "", { mode: 0o600 });
}

/** Removes what a failed restore wrote: the directory it made, or the contents of the empty one it was given. */
export function cleanUpPointInTime(state: PitrState): void {
  if (!state.directory) return;
  if (state.created) rmSync(state.directory, { recursive: true, force: true });
  else for (const name of readdirSync(state.directory)) rmSync(join(state.directory, name), { recursive: true, force: true });
}
