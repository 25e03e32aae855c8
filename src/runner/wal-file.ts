import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { and, eq } from "drizzle-orm";
import { decryptStream } from "../crypto/age.ts";
import type { Db } from "../db/client.ts";
import { storageDestinations, walSegments } from "../db/schema.ts";
import { RestoreSetupError } from "../engines/restore.ts";
import { StorageError } from "../storage/errors.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { decompressStage, type CompressionAlgorithm } from "./compression.ts";
import { tagged } from "./restore-chain.ts";

/**
 * Reading back what the archive stored (a base backup's tar, a WAL segment, a timeline
 * history file) as its plain bytes: shared by the point-in-time restore, which copies the WAL
 * into the data directory, and `snapdb wal-fetch`, which PostgreSQL runs for each file.
 */

export type WalSegmentRow = typeof walSegments.$inferSelect;

export interface StoredFile {
  objectKey: string;
  sha256: string | null;
  storedBytes: number | null;
  format: { compression?: CompressionAlgorithm; encrypted?: boolean };
}

/** Byte counters a caller may follow (a restore's progress). */
export interface ReadCounters {
  bytesRead: number;
  bytesWritten: number;
}

export interface ReadDeps {
  db: Db;
  storage: StorageRegistry;
  /** Where `zstd` is looked up. */
  toolPath: string;
  /** The org's age identity, asked for once something encrypted is read. */
  identity(): Promise<string>;
}

/** The org's identity, read from the store (and opened with the master key) once. */
export function identityOnce(read: () => Promise<string | null>): () => Promise<string> {
  let identity: string | null = null;
  return async () => {
    identity ??= await read();
    if (!identity) throw new RestoreSetupError("DECRYPT_FAILED", "the organisation has no age identity to decrypt with");
    return identity;
  };
}

export async function destinationOf(db: Db, id: string | null): Promise<typeof storageDestinations.$inferSelect> {
  const dest = id ? (await db.select().from(storageDestinations).where(eq(storageDestinations.id, id)))[0] : undefined;
  if (!dest) throw new RestoreSetupError("BACKUP_FILE_MISSING", "the storage destination of the backup or its WAL was deleted");
  return dest;
}

/**
 * A stored object as its plain bytes: read, checked against its recorded size and sha256
 * (the stream errors with CHECKSUM_MISMATCH at its end otherwise), decrypted with the org's
 * identity, decompressed. The consumer must not keep what it wrote before the stream ended.
 */
export async function plainStream(deps: ReadDeps, destinationId: string | null, file: StoredFile, signal: AbortSignal, counters?: ReadCounters) {
  const driver = deps.storage.driverFor(await destinationOf(deps.db, destinationId));
  const { body } = await driver.get(file.objectKey);
  const hash = createHash("sha256");
  let read = 0;
  let stream = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        read += chunk.byteLength;
        if (counters) counters.bytesRead += chunk.byteLength;
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
    stream = await decryptStream(stream, [await deps.identity()]).catch((err: unknown) => {
      if (err instanceof RestoreSetupError || err instanceof StorageError) throw err;
      throw new RestoreSetupError("DECRYPT_FAILED", failed(err));
    });
    // age authenticates every chunk: a changed byte fails here, before the checksum at the end.
    stream = tagged(stream, (err) => new RestoreSetupError("DECRYPT_FAILED", failed(err)));
  }
  const decompress = decompressStage(file.format.compression ?? "none", deps.toolPath, signal);
  if (decompress) {
    stream = tagged(stream.pipeThrough(decompress), (err) => new RestoreSetupError("DECOMPRESS_FAILED", `${file.objectKey} does not decompress: ${err instanceof Error ? err.message : String(err)}`));
  }
  if (!counters) return stream;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        counters.bytesWritten += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
}

/**
 * Writes a stream to `path` through a temp file beside it (same directory, so the rename is
 * atomic), fsynced and renamed once the stream ended well; a failure leaves nothing behind.
 */
export async function writeWhole(stream: ReadableStream<Uint8Array>, path: string, signal: AbortSignal): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.snapdb-${process.pid}.tmp`);
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

/** One archived WAL file of a data source by its name (a segment or a `.history` file), if archived. */
export async function archivedWalFile(db: Db, dataSourceId: string, name: string): Promise<WalSegmentRow | undefined> {
  return (
    await db
      .select()
      .from(walSegments)
      .where(and(eq(walSegments.dataSourceId, dataSourceId), eq(walSegments.name, name)))
  )[0];
}

/** An archived WAL file written, plain, to `path` (atomically). */
export async function fetchWalFile(deps: ReadDeps, segment: WalSegmentRow, path: string, signal: AbortSignal, counters?: ReadCounters): Promise<void> {
  const plain = await plainStream(deps, segment.destinationId, { ...segment, format: segment.format as StoredFile["format"] }, signal, counters);
  await writeWhole(plain, path, signal);
}
