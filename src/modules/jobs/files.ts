import { recordAudit } from "../../audit/record.ts";
import { decryptStream } from "../../crypto/age.ts";
import { orgIdentity } from "../../crypto/org-keys.ts";
import type { SecretBox } from "../../crypto/secrets.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { isoOf } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import type { FileCheckCode } from "../../lib/failure-codes.ts";
import { sha256Tap } from "../../lib/streams.ts";
import { decompressStage, type CompressionAlgorithm } from "../../runner/compression.ts";
import { deleteBackupFile } from "../../runner/delete-file.ts";
import { StorageError } from "../../storage/errors.ts";
import type { StorageRegistry } from "../../storage/registry.ts";
import { jobFileOf } from "./parts.ts";
import { destinationOf, findJob } from "./service.ts";

type VerifyFailureCode = FileCheckCode;

/** A storage that refuses or can't be reached is the server's trouble (503), not a bug (500). */
async function orUnavailable<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof StorageError) throw new AppError("UNAVAILABLE", `the storage holding this file is not available: ${err.message}`);
    throw err;
  }
}

export interface FileDeps {
  storage: StorageRegistry;
  secrets: SecretBox;
}

/**
 * Re-reads the stored object once, streaming: its size and sha256 against the job's, and
 * that it decrypts (with the org's identity) and decompresses to the dump's size. A
 * whole-server job's files are verified one `part` at a time.
 */
export async function verifyJobFile(ctx: ServiceContext, deps: FileDeps, id: string, part?: string) {
  const job = await findJob(ctx.db, ctx.orgId, id);
  const file = await jobFileOf(ctx, job, part);
  const { destination, key } = file;
  const format = (job.format ?? {}) as { compression?: CompressionAlgorithm; encrypted?: boolean };
  const fail = (code: VerifyFailureCode, message: string) => ({ ok: false as const, error: { code, message } });
  const outcome = await (async () => {
    const driver = deps.storage.driverFor(destination);
    let body: ReadableStream<Uint8Array>;
    try {
      const head = await driver.head(key);
      if (!head) return fail("FILE_MISSING", "the stored file is gone");
      if (head.size !== file.storedBytes) return fail("SIZE_MISMATCH", `stored file has ${head.size} bytes, the job recorded ${file.storedBytes}`);
      body = (await driver.get(key)).body;
    } catch (err) {
      return fail("STORAGE_ERROR", err instanceof Error ? err.message : String(err));
    }
    // Pass 1: the bytes as stored. Pass 2: that they decrypt and decompress. Two reads,
    // so a tampered file is reported as the checksum mismatch it is, not as a decrypt error.
    let storedBytes = 0;
    const hash = sha256Tap((n) => (storedBytes += n));
    try {
      await body.pipeThrough(hash.stream).pipeTo(new WritableStream());
    } catch (err) {
      return fail("STORAGE_ERROR", err instanceof Error ? err.message : String(err));
    }
    if (hash.digest() !== file.sha256) return fail("CHECKSUM_MISMATCH", "the stored file's sha256 differs from the one recorded at backup time");
    let dumpBytes = 0;
    let stage: "decrypt" | "decompress" = format.encrypted ? "decrypt" : "decompress";
    try {
      let stream = (await driver.get(key)).body;
      if (format.encrypted) {
        const identity = await orgIdentity(ctx.db, deps.secrets, job.orgId);
        if (!identity) return fail("DECRYPT_FAILED", "the organisation has no age identity");
        stream = await decryptStream(stream, [identity]);
      }
      const decompress = decompressStage(format.compression ?? "none");
      if (decompress) stream = stream.pipeThrough(decompress);
      for await (const chunk of stream) {
        dumpBytes += chunk.byteLength;
        stage = "decompress";
      }
    } catch (err) {
      return fail(stage === "decrypt" ? "DECRYPT_FAILED" : "DECOMPRESS_FAILED", err instanceof Error ? err.message : String(err));
    }
    if (dumpBytes !== file.sizeBytes) return fail("SIZE_MISMATCH", `the file restores to ${dumpBytes} bytes, the dump had ${file.sizeBytes}`);
    return { ok: true as const, sizeBytes: dumpBytes, storedBytes, sha256: hash.digest() };
  })();
  await ctx.db.transaction(async (tx) =>
    recordAudit(tx, ctx, {
      action: "backup_job.verified",
      targetType: "backup_job",
      targetId: id,
      metadata: { ok: outcome.ok, ...(file.part === null ? {} : { part: file.part }), ...(outcome.ok ? {} : { error: outcome.error }) },
    }),
  );
  return outcome;
}

/**
 * A short-lived link: presigned GET on S3, a signed `/downloads/{token}` for local disks. A
 * whole-server job's files have one link each (`part`), saved as `{jobId}-{part file}`.
 */
export async function createDownloadLink(ctx: ServiceContext, deps: FileDeps, id: string, expiresInSeconds: number, part?: string) {
  const job = await findJob(ctx.db, ctx.orgId, id);
  const { destination, key, part: partName } = await jobFileOf(ctx, job, part);
  const issuedAt = new Date();
  const leaf = key.split("/").at(-1)!;
  const url = await orUnavailable(() =>
    deps.storage.driverFor(destination).downloadUrl(key, { expiresInSeconds, filename: partName === null ? leaf : `${job.id}-${leaf}`, nodeId: job.nodeId ?? undefined }),
  );
  await ctx.db.transaction(async (tx) =>
    recordAudit(tx, ctx, {
      action: "backup_job.download_link_created",
      targetType: "backup_job",
      targetId: id,
      metadata: { expiresInSeconds, ...(partName === null ? {} : { part: partName }) },
    }),
  );
  return { url, expiresAt: isoOf(issuedAt.getTime() + expiresInSeconds * 1000) };
}

/**
 * Deletes the stored file (storage first, then the row), keeping the job as history with
 * `fileDeletedAt`. Deleting again is a no-op; a job that never stored a file is a 409.
 */
export async function deleteJobFile(ctx: ServiceContext, deps: FileDeps, id: string): Promise<void> {
  const job = await findJob(ctx.db, ctx.orgId, id);
  if (job.fileDeletedAt !== null) return;
  if (job.status !== "succeeded" || !job.objectKey) throw new AppError("CONFLICT", `the job has no stored file (status ${job.status})`);
  await orUnavailable(async () => deleteBackupFile(ctx.db, deps.storage, await destinationOf(ctx, job), job, ctx, { reason: "manual" }));
}
