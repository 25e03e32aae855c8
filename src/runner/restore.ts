import { createHash } from "node:crypto";
import { eq } from "drizzle-orm";
import { orgIdentity } from "../crypto/org-keys.ts";
import { backupJobs, dataSources, type restores, storageDestinations } from "../db/schema.ts";
import { dropMysqlTables, engineFamily, ensureDatabase, inspectDatabase, mysqlRestoreCommand, pgRestoreCommand, RestoreSetupError } from "../engines/restore.ts";
import { pinTarget } from "../engines/network.ts";
import { checkSqlitePath, pinSqlitePath, type SqlitePin } from "../engines/sqlite-path.ts";
import { notReplaceable, sqliteUserObjects, writeSqliteAtomically } from "../engines/sqlite-restore.ts";
import type { SourceTarget } from "../engines/types.ts";
import { countingTap } from "../lib/streams.ts";
import { StorageError } from "../storage/errors.ts";
import type { BackupDeps, JobRow } from "./backup.ts";
import type { CompressionAlgorithm } from "./compression.ts";
import { decodeInDaemon, noIdentity, restoreThroughTools, type RestorePipeline } from "./restore-chain.ts";

export type RestoreRow = typeof restores.$inferSelect;
export type RestoreDeps = Pick<BackupDeps, "db" | "secrets" | "storage" | "dumpEnv" | "targetOf" | "sqlitePaths" | "outbound">;

/** Live byte counters of a running restore, flushed to its row by the queue. */
export interface RestoreProgress {
  bytesRead: number;
  bytesWritten: number;
}

/**
 * How far a restore got into its target, so a failure can say honestly what state the
 * target is in: `no` (not touched), `transaction` (pg_restore inside one uncommitted
 * transaction), `dropped` (clean dropped MySQL tables), `partial` (the mysql client ran part
 * of the dump), `replaced` (the SQLite file was renamed into place).
 */
export interface RestoreState {
  touched: "no" | "transaction" | "dropped" | "partial" | "replaced";
  createdDatabase: boolean;
  /** Which pipeline fed the restore tool: the chain of tools, or the daemon's own stages (logged). */
  pipeline?: RestorePipeline;
  /** Says it all instead (a whole-server restore, whose databases each end their own way). */
  note?: string;
}

export interface RestorePlan {
  job: JobRow;
  destination: typeof storageDestinations.$inferSelect;
  target: SourceTarget;
  format: { compression: CompressionAlgorithm; encrypted: boolean };
}

/** Everything a restore needs, read when it starts; what went missing since the POST fails it clearly. */
export async function planRestore(deps: RestoreDeps, row: RestoreRow): Promise<RestorePlan> {
  if (!row.backupJobId) {
    throw new RestoreSetupError(
      "NO_BACKUP",
      "the data source had no successful logical backup with its file still stored (a restore plan restores dumps of one database: never a physical base backup or a whole-server backup)",
    );
  }
  const job = (await deps.db.select().from(backupJobs).where(eq(backupJobs.id, row.backupJobId)))[0];
  if (!job) throw new RestoreSetupError("BACKUP_NOT_FOUND", "the backup job was deleted");
  if (job.status !== "succeeded" || !job.objectKey || job.fileDeletedAt !== null || !job.destinationId) {
    throw new RestoreSetupError("BACKUP_FILE_MISSING", "the backup's file was deleted");
  }
  const destination = (await deps.db.select().from(storageDestinations).where(eq(storageDestinations.id, job.destinationId)))[0];
  if (!destination) throw new RestoreSetupError("BACKUP_FILE_MISSING", "the backup's storage destination was deleted");
  const targetRow = (await deps.db.select().from(dataSources).where(eq(dataSources.id, row.targetDataSourceId)))[0];
  if (!targetRow) throw new RestoreSetupError("DATA_SOURCE_NOT_FOUND", "the target data source was deleted");
  const format = (job.format ?? {}) as { compression?: CompressionAlgorithm; encrypted?: boolean };
  return {
    job,
    destination,
    target: deps.targetOf(targetRow),
    format: { compression: format.compression ?? "none", encrypted: format.encrypted ?? false },
  };
}

/**
 * How much of the stored file's end is held back until it matched: more than a zstd block
 * (at most 128 KiB), so the last decompressed bytes, which the restore tool needs to finish,
 * are held back too, however the storage happened to cut its chunks (a last chunk of only
 * zstd's 4-byte checksum would hold back nothing a tool needs). An age chunk is 64 KiB.
 */
export const HOLD_BACK_BYTES = 256 * 1024;

/**
 * The stored object as read, hashed on the way. The file's last HOLD_BACK_BYTES are held
 * back until the stream has ended and size and sha256 matched: a tampered file errors with
 * CHECKSUM_MISMATCH before its final bytes reach the decoders and the restore tool, so
 * pg_restore (one transaction) never commits and a SQLite temp file is never renamed.
 * `settle()` reads the rest after a failure downstream, to tell a corrupt file from another
 * failure.
 */
export function verifiedSource(body: ReadableStream<Uint8Array>, sha256: string | null, size: number | null, onBytes: (n: number) => void) {
  const reader = body.getReader();
  const hash = createHash("sha256");
  let read = 0;
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let verdict: boolean | null = null;
  const take = (chunk: Uint8Array) => {
    hash.update(chunk);
    read += chunk.byteLength;
    onBytes(chunk.byteLength);
  };
  const finish = () => (verdict = hash.digest("hex") === sha256 && (size === null || read === size));
  const mismatch = () => new RestoreSetupError("CHECKSUM_MISMATCH", `the stored file's sha256 (or size: ${read} bytes read, ${size} recorded) differs from the one recorded at backup time`);
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          // The oldest held chunk goes once what is held after it still covers the tail.
          if (held.length > 1 && heldBytes - held[0]!.byteLength >= HOLD_BACK_BYTES) {
            const out = held.shift()!;
            heldBytes -= out.byteLength;
            return controller.enqueue(out);
          }
          const { done, value } = await reader.read();
          if (done) {
            if (verdict === null) finish();
            if (!verdict) return controller.error(mismatch());
            for (const chunk of held.splice(0)) controller.enqueue(chunk);
            return controller.close();
          }
          take(value);
          held.push(value);
          heldBytes += value.byteLength;
        }
      },
      // Downstream gave up: keep the reader, settle() may still drain it.
      cancel() {},
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    mismatch,
    async settle(signal: AbortSignal): Promise<boolean | null> {
      if (verdict !== null) return verdict;
      try {
        for (;;) {
          if (signal.aborted) return null;
          const { done, value } = await reader.read();
          if (done) return finish();
          take(value);
        }
      } catch {
        return null;
      }
    },
    release: () => reader.cancel().catch(() => {}),
  };
}

/**
 * Where a SQLite restore writes: `path` still within the organisation's host boundary
 * (checked now, not only when the source was saved), its directory held open for the
 * whole restore, and holding nothing but a SQLite database. The caller closes it.
 */
function pinSqliteTarget(deps: RestoreDeps, path: string, orgId: string): SqlitePin {
  const pinned = pinSqlitePath(path, deps.sqlitePaths, orgId);
  if (!pinned.ok) throw new RestoreSetupError(pinned.missing ? "INVALID_TARGET" : "PATH_NOT_ALLOWED", pinned.reason);
  const problem = notReplaceable(pinned.pin.at());
  if (problem) {
    pinned.pin.close();
    throw new RestoreSetupError("INVALID_TARGET", `${path} ${problem}`);
  }
  return pinned.pin;
}

/** The last look before the rename: the held directory and the name still agree, and the file is still replaceable. */
function recheckSqliteTarget(deps: RestoreDeps, path: string, orgId: string, pin: SqlitePin): void {
  const problem = pin.recheck();
  if (problem) throw new RestoreSetupError("PATH_NOT_ALLOWED", problem);
  const again = checkSqlitePath(path, deps.sqlitePaths, orgId);
  if (!again.ok) throw new RestoreSetupError("PATH_NOT_ALLOWED", again.reason);
  if (again.real !== pin.real) throw new RestoreSetupError("PATH_NOT_ALLOWED", `${path} now resolves elsewhere than when the restore started`);
  const replaceable = notReplaceable(pin.at());
  if (replaceable) throw new RestoreSetupError("INVALID_TARGET", `${path} ${replaceable}`);
}

async function refuseNonEmptySqlite(path: string): Promise<void> {
  const objects = await sqliteUserObjects(path);
  if (objects === -1) throw new RestoreSetupError("TARGET_NOT_EMPTY", `${path} exists and is not a SQLite database; restore with clean: true to replace it`);
  if (objects) throw new RestoreSetupError("TARGET_NOT_EMPTY", `${path} already holds ${objects} tables or views; restore with clean: true to replace it`);
}

/**
 * One restore, streamed end to end: storage → size + sha256 check → age decrypt (the org's
 * identity) → decompress → pg_restore / mysql client (stdin) or a SQLite temp file renamed
 * into place. For a database the decoders and the restore tool run as one chain of tools
 * when they can (restore-chain.ts). No copy of the backup is kept anywhere. The target is checked again first
 * (it may have changed since the API accepted the restore) and a missing database created.
 */
export async function runRestore(deps: RestoreDeps, row: RestoreRow, plan: RestorePlan, signal: AbortSignal, progress: RestoreProgress, state: RestoreState): Promise<void> {
  const { job } = plan;
  // Resolved and checked once: every connection of this restore goes to that address (a
  // caller that pinned the target already, a restore drill, keeps its own address).
  const target = plan.target.address ? plan.target : await pinTarget(plan.target, deps.outbound);
  const family = engineFamily(target.engine);
  const database = row.targetDatabase ?? target.database ?? "";
  let relations = 0;
  if (family === "sqlite" && !target.path) throw new RestoreSetupError("INVALID_TARGET", "the target data source has no path");
  // Closed however this function is left (done, failed, canceled).
  using sqlite = family === "sqlite" ? pinSqliteTarget(deps, target.path!, row.orgId) : null;
  if (sqlite) {
    if (!row.clean) await refuseNonEmptySqlite(sqlite.real);
  } else {
    const found = await inspectDatabase(target, database, signal);
    relations = found.relations;
    if (relations > 0 && !row.clean) {
      throw new RestoreSetupError("TARGET_NOT_EMPTY", `database ${database} now holds ${relations} tables or views; restore with clean: true to replace them`);
    }
    if (!found.exists) state.createdDatabase = await ensureDatabase(target, database, signal);
  }
  if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");

  const toolPath = deps.dumpEnv.toolPath;
  await restoreStoredFile(deps, plan, job, signal, progress, async (stream, identity) => {
    if (family === "sqlite") {
      state.pipeline = "daemon";
      const decoded = await decodeInDaemon(stream, plan.format, identity, toolPath, signal);
      const pin = sqlite!;
      await writeSqliteAtomically(decoded.pipeThrough(countingTap((n) => (progress.bytesWritten += n))), pin, row.id, signal, {
        beforeRename: async () => {
          // The last look: the path may have been swapped for a symlink while the bytes came in.
          recheckSqliteTarget(deps, target.path!, row.orgId, pin);
          if (!row.clean) await refuseNonEmptySqlite(pin.real);
        },
        renamed: () => (state.touched = "replaced"),
      });
    } else {
      const feed = {
        format: plan.format,
        identity,
        env: deps.dumpEnv,
        signal,
        onWritten: (total: number) => void (progress.bytesWritten = total),
        onPipeline: (pipeline: RestorePipeline) => void (state.pipeline = pipeline),
      };
      if (family === "postgres") {
        const cmd = pgRestoreCommand(target, database, row.clean, toolPath);
        await restoreThroughTools(stream, { ...feed, cmd, before: () => void (state.touched = "transaction") });
      } else {
        const cmd = mysqlRestoreCommand(target, database, toolPath);
        const before = async () => {
          if (row.clean && relations > 0) {
            state.touched = "dropped";
            await dropMysqlTables(target, database, signal);
          }
          state.touched = "partial";
        };
        await restoreThroughTools(stream, { ...feed, cmd, before });
      }
    }
  });
}

/**
 * One stored file (a one-file backup's, or one part of a whole server's) read through
 * `verifiedSource` and handed to `consume` with the org's age identity when it is encrypted.
 */
export async function restoreStoredFile(
  deps: RestoreDeps,
  plan: RestorePlan,
  file: { objectKey: string | null; sha256: string | null; storedBytes: number | null },
  signal: AbortSignal,
  progress: RestoreProgress,
  consume: (stream: ReadableStream<Uint8Array>, identity: string | null) => Promise<void>,
): Promise<void> {
  const { body } = await deps.storage.driverFor(plan.destination).get(file.objectKey!);
  const source = verifiedSource(body, file.sha256, file.storedBytes, (n) => (progress.bytesRead += n));
  try {
    const identity = plan.format.encrypted ? await orgIdentity(deps.db, deps.secrets, plan.job.orgId) : null;
    if (plan.format.encrypted && !identity) throw noIdentity();
    await consume(source.stream, identity);
    // Every byte went through the check above; this only guards a consumer that stopped early.
    if ((await source.settle(signal)) === false) throw source.mismatch();
  } catch (err) {
    // A corrupt file usually shows first as a decrypt or decompress error (or, unencrypted, as
    // a tool error): read on to name the cause. Age authenticates every chunk, so with
    // encryption a tool error means the bytes were the ones written and need no re-read.
    const stageError = err instanceof RestoreSetupError && (err.code === "DECRYPT_FAILED" || err.code === "DECOMPRESS_FAILED");
    const worth = !signal.aborted && !(err instanceof StorageError) && (stageError || !plan.format.encrypted);
    if (worth && (await source.settle(signal)) === false) throw source.mismatch();
    throw err;
  } finally {
    await source.release();
  }
}
