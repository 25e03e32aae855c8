import { decryptStream } from "../crypto/age.ts";
import type { StorageDriver } from "../storage/types.ts";
import { decompressStage, type CompressionAlgorithm } from "./compression.ts";

/**
 * A base backup's `backup_label`, as PostgreSQL wrote it into the backup: where recovery
 * starts (`START WAL LOCATION`, the checkpoint's redo point), the checkpoint, the start
 * time, the label and the timeline. pg_basebackup prints none of it with `-X none`, but the
 * server sends the file first in the main tar, so it is the first member of the stored file.
 */
export interface BackupLabel {
  startLsn: string;
  startWalFile: string;
  checkpointLsn: string | null;
  startTime: string | null;
  label: string | null;
  timeline: number;
  /** The file's text. */
  text: string;
}

export function parseBackupLabel(text: string): BackupLabel | null {
  const line = (key: string) => new RegExp(`^${key}: (.*)$`, "m").exec(text)?.[1]?.trim() ?? null;
  const start = /^([0-9A-F]+\/[0-9A-F]+) \(file ([0-9A-F]{24})\)$/.exec(line("START WAL LOCATION") ?? "");
  if (!start) return null;
  // The label comes from the source's server: a timeline that is not a positive integer
  // makes the whole label unusable (the job keeps the values it measured itself).
  const timeline = Number(line("START TIMELINE") ?? Number.parseInt(start[2]!.slice(0, 8), 16));
  if (!Number.isSafeInteger(timeline) || timeline < 1) return null;
  return {
    startLsn: start[1]!,
    startWalFile: start[2]!,
    checkpointLsn: line("CHECKPOINT LOCATION"),
    startTime: line("START TIME"),
    label: line("LABEL"),
    timeline,
    text,
  };
}

/**
 * Enough of the stored file for its first tar member: age's header and its first chunks
 * (64 KiB each), holding zstd's first block (at most 128 KiB of the tar), with room.
 */
const HEAD_BYTES = 512 * 1024;
const TAR_BLOCK = 512;

/**
 * Reads the backup_label back from a stored base backup: a ranged read of its first bytes,
 * decrypted and decompressed in-process, up to the end of the tar's first member. A few
 * hundred KiB read, whichever way the file was written (the chain of tools writes it without
 * the daemon seeing a byte). Null when the file does not start with a backup_label.
 */
export async function readBackupLabel(
  driver: StorageDriver,
  file: { objectKey: string; storedBytes: number; compression: CompressionAlgorithm; encrypted: boolean },
  identity: () => Promise<string>,
): Promise<BackupLabel | null> {
  const { body } = await driver.get(file.objectKey, { range: { start: 0, end: Math.min(file.storedBytes, HEAD_BYTES) - 1 } });
  let stream = body;
  if (file.encrypted) stream = await decryptStream(stream, [await identity()]);
  // No tool path: the in-process decoder, which a canceled read leaves nothing of.
  const decompress = decompressStage(file.compression);
  if (decompress) stream = stream.pipeThrough(decompress);
  const reader = stream.getReader();
  let bytes = new Uint8Array(0);
  try {
    for (;;) {
      if (bytes.length >= TAR_BLOCK) {
        const header = bytes.subarray(0, TAR_BLOCK);
        const name = new TextDecoder().decode(header.subarray(0, 100)).replace(/\0.*$/s, "");
        if (name !== "backup_label") return null;
        const size = Number.parseInt(new TextDecoder().decode(header.subarray(124, 136)).replace(/\0.*$/s, "").trim(), 8);
        if (!(size > 0 && size < 64 * 1024)) return null;
        if (bytes.length >= TAR_BLOCK + size) return parseBackupLabel(new TextDecoder().decode(bytes.subarray(TAR_BLOCK, TAR_BLOCK + size)));
      }
      const { done, value } = await reader.read();
      if (done) return null;
      const grown = new Uint8Array(bytes.length + value.byteLength);
      grown.set(bytes);
      grown.set(value, bytes.length);
      bytes = grown;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
