import type { S3Client } from "@aws-sdk/client-s3";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import type { OutboundPolicy } from "../net/outbound-policy.ts";
import { classifyS3Error, StorageError } from "./errors.ts";
import { type ChunkRead, uploadMultipart } from "./s3-multipart.ts";
import type { ByteRange, DownloadUrlOptions, GetResult, ObjectInfo, PutOptions, PutResult, StorageDriver } from "./types.ts";

export interface S3DriverOptions {
  bucket: string;
  region: string;
  /** Empty/undefined for AWS; `http(s)://host:port` for MinIO and other S3-compatible servers. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Left out: the SDK's default chain (environment, instance profile, …). */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Bytes per multipart part (S3's minimum is 5 MiB). */
  partSize?: number;
  /** Parts uploaded concurrently. */
  queueSize?: number;
  /**
   * Tenant endpoints: every connection goes to an address this policy allows (host names
   * are resolved and checked by the agents' lookup; an IP literal is checked here, at
   * construction, and throws OutboundError). Left out for the operator's managed storage.
   */
  outbound?: OutboundPolicy;
}

export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_QUEUE_SIZE = 2;

/**
 * The AWS SDK, loaded when a driver first talks to S3. Importing it costs every daemon start
 * ~50 ms and ~56 MiB of RSS (bench/RESULTS.md), which a daemon with local storage only never
 * needs back.
 */
let sdk: Promise<{
  s3: typeof import("@aws-sdk/client-s3");
  getSignedUrl: typeof import("@aws-sdk/s3-request-presigner").getSignedUrl;
}> | null = null;

export function loadS3Sdk() {
  sdk ??= Promise.all([import("@aws-sdk/client-s3"), import("@aws-sdk/s3-request-presigner")]).then(([s3, presigner]) => ({
    s3,
    getSignedUrl: presigner.getSignedUrl,
  }));
  return sdk;
}

/**
 * S3 (AWS, MinIO, any S3-compatible endpoint) through one @aws-sdk/client-s3 client.
 * Uploads are multipart (s3-multipart.ts) with a bounded part size and queue: at most
 * `(queueSize + 1) × partSize` bytes of an upload are in memory, whatever the object's size.
 */
export class S3Driver implements StorageDriver {
  readonly kind = "s3" as const;
  private clientPromise: Promise<S3Client> | null = null;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(private readonly options: S3DriverOptions) {
    if (options.outbound && options.endpoint) options.outbound.checkUrl(options.endpoint);
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    this.queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
  }

  /** The SDK client, made on first use. Exposed so tests can watch the requests sent (s3rver can't report an AbortMultipartUpload). */
  client(): Promise<S3Client> {
    const { options } = this;
    this.clientPromise ??= loadS3Sdk().then(
      ({ s3 }) =>
        new s3.S3Client({
          region: options.region,
          endpoint: options.endpoint || undefined,
          forcePathStyle: options.forcePathStyle ?? false,
          credentials: options.credentials,
          // Flexible checksums by default break many S3-compatible servers; Content-MD5/ETag suffice.
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED",
          maxAttempts: 3,
          requestHandler: { connectionTimeout: 10_000, ...options.outbound?.agents() },
        }),
    );
    return this.clientPromise;
  }

  /** The client and the SDK's commands, for one operation. */
  private async sdk() {
    const [client, { s3 }] = await Promise.all([this.client(), loadS3Sdk()]);
    return { client, s3 };
  }

  get bucket(): string {
    return this.options.bucket;
  }

  async put(key: string, body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const { signal } = options;
    const aborted = () => new StorageError("ABORTED", "upload aborted");
    if (signal?.aborted) {
      await body.cancel().catch(() => {});
      throw aborted();
    }
    // Loaded before the RSS baseline below, so the SDK's own memory is not taken for the upload's.
    const { client, s3 } = await this.sdk();
    const reader = body.getReader();
    // The source as the uploader reads it: an abort ends it (a pending read is released by
    // cancelling the reader), and its own failure is told apart from S3's.
    let sourceError: unknown = null;
    const source = {
      async read() {
        if (signal?.aborted) throw aborted();
        let next: ChunkRead;
        try {
          next = await reader.read();
        } catch (err) {
          sourceError = err;
          throw err;
        }
        if (signal?.aborted) throw aborted();
        return next;
      },
    };
    const onAbort = () => void reader.cancel().catch(() => {});
    signal?.addEventListener("abort", onAbort, { once: true });
    let sinceCollect = 0;
    const partSize = this.partSize;
    const rssAtStart = process.memoryUsage.rss();
    const allowance = (this.queueSize + 2) * partSize;
    const onChunk = (chunk: Uint8Array) => {
      sinceCollect += chunk.byteLength;
      if (sinceCollect < partSize) return;
      // Bun's HTTP client leaves a copy of every part behind as garbage that JavaScriptCore
      // does not count towards its next collection. A full collection (~40 ms) per part
      // once the process has grown by more than the upload's own buffers since it began
      // keeps it near that bound (bench/RESULTS.md, "S3 upload memory").
      sinceCollect = 0;
      if (process.memoryUsage.rss() - rssAtStart > allowance) Bun.gc(true);
    };
    const state: { uploadId?: string } = {};
    try {
      const contentType = options.contentType ?? "application/octet-stream";
      const result = await uploadMultipart({ client, sdk: s3, bucket: this.bucket, key, contentType, source, partSize, queueSize: this.queueSize, onChunk }, state);
      if (signal?.aborted) {
        // Completed just as the caller gave up: remove it so nothing looks whole.
        await this.delete(key).catch(() => {});
        throw aborted();
      }
      return { size: result.size, etag: result.etag?.replaceAll('"', "") };
    } catch (err) {
      await reader.cancel().catch(() => {});
      await this.abortUpload(key, state.uploadId);
      if (signal?.aborted) throw aborted();
      if (sourceError) throw sourceError;
      if (err instanceof StorageError) throw err;
      throw classifyS3Error(err, "S3 upload");
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // After a multipart upload its part buffers and the HTTP client's copies are garbage:
      // collected here, the next backup starts from the daemon's idle size instead of on top
      // of this one's (back-to-back S3 backups: idle 79 → 131 MiB over four jobs without,
      // 79 → ~100 with).
      if (state.uploadId) Bun.gc(true);
    }
  }

  /** Removes the parts of an upload that failed or was aborted (S3 keeps them, and bills them, otherwise). */
  private async abortUpload(key: string, uploadId: string | undefined): Promise<void> {
    if (!uploadId) return;
    const { client, s3 } = await this.sdk();
    await client.send(new s3.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => {});
  }

  async get(key: string, options: { range?: ByteRange } = {}): Promise<GetResult> {
    const { range } = options;
    if (range && (!Number.isInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start))) {
      throw new StorageError("INVALID_RANGE", "the byte range is outside the object");
    }
    const { client, s3 } = await this.sdk();
    try {
      const out = await client.send(
        new s3.GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end ?? ""}` : undefined,
        }),
      );
      const size = out.ContentLength ?? 0;
      const total = out.ContentRange ? Number(out.ContentRange.split("/")[1]) : size;
      const body = out.Body ? (out.Body.transformToWebStream() as ReadableStream<Uint8Array>) : new ReadableStream({ start: (c) => c.close() });
      return { body, size, totalSize: Number.isFinite(total) ? total : size };
    } catch (err) {
      if ((err as { name?: string }).name === "InvalidRange") throw new StorageError("INVALID_RANGE", "the byte range is outside the object");
      throw classifyS3Error(err, "S3 get");
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const { client, s3 } = await this.sdk();
    try {
      const out = await client.send(new s3.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0), etag: out.ETag?.replaceAll('"', "") };
    } catch (err) {
      const e = classifyS3Error(err, "S3 head");
      if (e.code === "NOT_FOUND") return null;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const { client, s3 } = await this.sdk();
    try {
      await client.send(new s3.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const e = classifyS3Error(err, "S3 delete");
      if (e.code !== "NOT_FOUND") throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const { client, s3 } = await this.sdk();
    let token: string | undefined;
    do {
      let out;
      try {
        out = await client.send(new s3.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix || undefined, ContinuationToken: token }));
      } catch (err) {
        throw classifyS3Error(err, "S3 list");
      }
      for (const o of out.Contents ?? []) {
        if (!o.Key) continue;
        yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), etag: o.ETag?.replaceAll('"', "") };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async downloadUrl(key: string, options: DownloadUrlOptions): Promise<string> {
    const filename = (options.filename ?? key.slice(key.lastIndexOf("/") + 1)).replace(/["\\\r\n]/g, "_");
    const [{ client, s3 }, { getSignedUrl }] = await Promise.all([this.sdk(), loadS3Sdk()]);
    const command = new s3.GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ResponseContentDisposition: `attachment; filename="${filename}"`,
    });
    try {
      return await getSignedUrl(client, command, { expiresIn: options.expiresInSeconds, signingDate: options.issuedAt });
    } catch (err) {
      throw classifyS3Error(err, "S3 presign");
    }
  }

  async cleanupUpload(key: string): Promise<void> {
    const { client, s3 } = await this.sdk();
    let out;
    try {
      out = await client.send(new s3.ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key }));
    } catch (err) {
      const e = classifyS3Error(err, "S3 list uploads");
      // Some S3-compatible servers (s3rver) don't implement it: nothing we can clean there.
      if ((err as { name?: string }).name === "NotImplemented") return;
      throw e;
    }
    for (const u of out.Uploads ?? []) {
      if (u.Key === key) await this.abortUpload(key, u.UploadId);
    }
  }

  close(): void {
    void this.clientPromise?.then((client) => client.destroy());
  }
}
