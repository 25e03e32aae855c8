import type { S3Client } from "@aws-sdk/client-s3";

type Sdk = typeof import("@aws-sdk/client-s3");

/** One read of a stream reader. */
export type ChunkRead = { done: false; value: Uint8Array } | { done: true; value?: Uint8Array };

export interface MultipartInput {
  client: S3Client;
  sdk: Sdk;
  bucket: string;
  key: string;
  contentType: string;
  /** Read to its end; its chunks are copied into the part buffers. */
  source: { read(): Promise<ChunkRead> };
  /** Bytes per part (S3's minimum is 5 MiB, except the last). */
  partSize: number;
  /** Parts uploading at once. */
  queueSize: number;
  /** Called after each chunk is taken (throw to stop: the upload is aborted). */
  onChunk?: (chunk: Uint8Array) => void;
}

export interface MultipartResult {
  size: number;
  etag?: string;
  /** Set once S3 gave the upload an id: the caller aborts it on failure. */
  uploadId?: string;
}

/**
 * An upload of a stream of unknown length in `partSize` parts, through `queueSize + 1` part
 * buffers allocated once and reused: one filling while the others upload. lib-storage's
 * `Upload` gathered each part from its chunks into a new buffer, and the HTTP client copied
 * it again, leaving ~3 × partSize of garbage per part for the collector (an S3 backup of a
 * 0.5 GB database peaked at 140–166 MiB of daemon RSS; bench/RESULTS.md). A stream shorter
 * than one part is one PutObject; an empty one, an empty object.
 *
 * On failure the error is thrown with `uploadId` attached (`state.uploadId`), after every
 * part in flight has settled, so the caller's AbortMultipartUpload is the last request.
 */
export async function uploadMultipart(input: MultipartInput, state: { uploadId?: string } = {}): Promise<MultipartResult> {
  const { client, sdk, bucket, key, partSize, queueSize } = input;
  const free: Uint8Array<ArrayBuffer>[] = [];
  const inFlight = new Set<Promise<void>>();
  const parts: { PartNumber: number; ETag?: string }[] = [];
  let failure: unknown = null;
  let size = 0;
  let current = new Uint8Array(partSize);
  let filled = 0;

  const startUpload = async () => {
    const out = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: input.contentType }));
    if (!out.UploadId) throw new Error("S3 answered CreateMultipartUpload without an UploadId");
    state.uploadId = out.UploadId;
  };
  const send = (buffer: Uint8Array<ArrayBuffer>, length: number) => {
    const PartNumber = parts.length + 1;
    const part: { PartNumber: number; ETag?: string } = { PartNumber };
    parts.push(part);
    const done: Promise<void> = client
      .send(new sdk.UploadPartCommand({ Bucket: bucket, Key: key, UploadId: state.uploadId, PartNumber, Body: buffer.subarray(0, length) }))
      .then(
        (out) => {
          part.ETag = out.ETag;
        },
        (err) => {
          failure ??= err;
        },
      )
      .finally(() => {
        inFlight.delete(done);
        free.push(buffer);
      });
    inFlight.add(done);
  };
  /** Hands the full buffer to an upload and takes a free one, waiting while `queueSize` are in flight. */
  const flush = async () => {
    if (!state.uploadId) await startUpload();
    send(current, filled);
    while (inFlight.size >= queueSize && failure === null) await Promise.race(inFlight);
    if (failure !== null) throw failure;
    current = free.pop() ?? new Uint8Array(partSize);
    filled = 0;
  };

  try {
    for (;;) {
      const { done, value } = await input.source.read();
      if (done) break;
      input.onChunk?.(value);
      size += value.byteLength;
      let offset = 0;
      while (offset < value.byteLength) {
        const n = Math.min(partSize - filled, value.byteLength - offset);
        current.set(value.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === partSize) await flush();
      }
    }
    if (!state.uploadId) {
      // Shorter than one part: a single PutObject (also for an empty stream).
      const out = await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: current.subarray(0, filled), ContentType: input.contentType }));
      return { size, etag: out.ETag };
    }
    if (filled > 0) send(current, filled);
    await Promise.all(inFlight);
    if (failure !== null) throw failure;
    const out = await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: state.uploadId, MultipartUpload: { Parts: parts } }));
    return { size, etag: out.ETag, uploadId: state.uploadId };
  } catch (err) {
    await Promise.allSettled(inFlight);
    throw err;
  }
}
