import { closeSync, openSync, readSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { and, desc, eq, lt } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import { encryptStream } from "../crypto/age.ts";
import { ensureOrgRecipient } from "../crypto/org-keys.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import { type storageDestinations, walSegments } from "../db/schema.ts";
import { historyTimeline, parseSegmentName, segmentName, formatLsn } from "../engines/wal-names.ts";
import { scanSegment, type WalCarry } from "../engines/wal-scan.ts";
import { nowMs } from "../lib/clock.ts";
import type { Actor } from "../lib/context.ts";
import { sha256Tap } from "../lib/streams.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { COMPRESSION_EXT, compressStage, type Compression } from "./compression.ts";

export const WAL_ARCHIVER_ACTOR: Actor = { type: "system", id: "wal-archiver" };

/** Where one source's WAL goes: its physical policy's destination, compression and encryption. */
export interface WalTarget {
  orgId: string;
  dataSourceId: string;
  destination: typeof storageDestinations.$inferSelect;
  compression: Compression;
  encrypt: boolean;
  extraRecipients: string[];
}

export interface WalUploadDeps {
  db: Db;
  secrets: SecretBox;
  storage: StorageRegistry;
  toolPath: string;
}

export interface ArchivedFile {
  name: string;
  segno: number | null;
  /** Segments missing between the one archived before this and this one (0: contiguous). */
  gap: number;
  carry: WalCarry | null;
}

/** One segment's worth of memory, reused for every segment a receiver scans (memory stays flat). */
export interface SegmentBuffer {
  bytes: Uint8Array | null;
}

function readInto(path: string, size: number, scratch: SegmentBuffer): Uint8Array {
  if (!scratch.bytes || scratch.bytes.length !== size) scratch.bytes = new Uint8Array(size);
  const fd = openSync(path, "r");
  try {
    let off = 0;
    while (off < size) {
      const n = readSync(fd, scratch.bytes, off, size - off, off);
      if (n === 0) throw new Error(`${path} ended after ${off} of ${size} bytes`);
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return scratch.bytes;
}

/** A WAL segment is a power of two from 1 MiB to 1 GiB (initdb --wal-segsize). */
const validSegmentSize = (size: number) => size >= 1 << 20 && size <= 1 << 30 && (size & (size - 1)) === 0;

/**
 * Archives one finished file of the spool (a segment or a timeline history file): scanned
 * for its last transaction's time, compressed, encrypted to the org (and the policy's extra
 * recipients), hashed, stored under the source's `wal/` prefix, recorded, and only then
 * removed from the spool. A file already recorded (the daemon stopped between recording and
 * removing it) is only removed. `.partial` files never come here.
 */
export async function archiveSpoolFile(deps: WalUploadDeps, spoolDir: string, name: string, target: WalTarget, carry: WalCarry | null, scratch: SegmentBuffer): Promise<ArchivedFile> {
  const path = join(spoolDir, name);
  const size = statSync(path).size;
  const history = historyTimeline(name);
  const parsed = history === null ? parseSegmentName(name, size) : null;
  if (history === null && (!parsed || !validSegmentSize(size))) throw new Error(`${name} in the WAL spool is not a WAL segment (${size} bytes)`);
  const segno = parsed?.segno ?? null;
  const known = (
    await deps.db
      .select({ name: walSegments.name })
      .from(walSegments)
      .where(and(eq(walSegments.dataSourceId, target.dataSourceId), eq(walSegments.name, name)))
  )[0];
  if (known) {
    unlinkSync(path);
    return { name, segno, gap: 0, carry: null };
  }

  const scan = segno !== null ? scanSegment(readInto(path, size, scratch), segno, carry) : null;
  const ext = `${COMPRESSION_EXT[target.compression.algorithm]}${target.encrypt ? ".age" : ""}`;
  const objectKey = deps.storage.walObjectKeyFor(target.destination, { dataSourceId: target.dataSourceId, name, ext });
  // Streamed from the file: the scan's buffer is reused for the next segment.
  let stream = Bun.file(path).stream() as ReadableStream<Uint8Array>;
  const compress = compressStage(target.compression, deps.toolPath);
  if (compress) stream = stream.pipeThrough(compress);
  if (target.encrypt) {
    const recipients = [await ensureOrgRecipient(deps.db, deps.secrets, target.orgId), ...target.extraRecipients];
    stream = await encryptStream(stream, recipients);
  }
  const hash = sha256Tap();
  const put = await deps.storage.driverFor(target.destination).put(objectKey, stream.pipeThrough(hash.stream), { contentType: "application/octet-stream" });

  const gap = await deps.db.transaction(async (tx) => {
    const previous =
      segno === null
        ? undefined
        : (
            await tx
              .select({ segno: walSegments.segno, name: walSegments.name })
              .from(walSegments)
              .where(and(eq(walSegments.dataSourceId, target.dataSourceId), lt(walSegments.segno, segno)))
              .orderBy(desc(walSegments.segno))
              .limit(1)
          )[0];
    await tx.insert(walSegments).values({
      dataSourceId: target.dataSourceId,
      name,
      orgId: target.orgId,
      timeline: parsed?.timeline ?? history!,
      segno,
      startLsn: segno === null ? null : formatLsn(segno * size),
      destinationId: target.destination.id,
      objectKey,
      sizeBytes: size,
      storedBytes: put.size,
      sha256: hash.digest(),
      format: { compression: target.compression.algorithm, encrypted: target.encrypt },
      lastXactAtUs: scan?.lastXactAtUs ?? null,
      archivedAt: nowMs(),
    });
    const missing = previous?.segno != null && segno !== null ? segno - previous.segno - 1 : 0;
    if (missing > 0) {
      // The archive has a hole: no restore can replay across it. Said once, here, where it is found.
      await recordAudit(
        tx,
        { orgId: target.orgId, actor: WAL_ARCHIVER_ACTOR, requestId: null, ip: null },
        {
          action: "wal_archive.gap",
          targetType: "data_source",
          targetId: target.dataSourceId,
          metadata: {
            after: previous!.name,
            before: name,
            missingSegments: missing,
            firstMissing: segmentName(parsed!.timeline, previous!.segno! + 1, size),
          },
        },
      );
    }
    return missing;
  });
  unlinkSync(path);
  return { name, segno, gap, carry: scan?.carry ?? null };
}
