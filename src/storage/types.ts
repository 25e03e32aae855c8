/**
 * What the runner and the API need from a place that stores backup files. Keys are
 * `/`-separated object keys (see keys.ts); a driver never buffers an object whole.
 */
export interface PutOptions {
  /** Aborting stops the upload and removes whatever was written; `put` then rejects. */
  signal?: AbortSignal;
  contentType?: string;
}

export interface PutResult {
  /** Bytes stored, counted as they passed through. */
  size: number;
  etag?: string;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive; to the end when left out. */
  end?: number;
}

export interface GetResult {
  body: ReadableStream<Uint8Array>;
  /** Bytes in `body` (the range's length when a range was asked for). */
  size: number;
  /** The whole object's size. */
  totalSize: number;
  /**
   * The same bytes as a Blob, when the driver has one (local files): an HTTP answer built
   * from it carries Content-Length (Bun sends a ReadableStream chunked) and uses sendfile.
   * Use either `blob` or `body`, not both.
   */
  blob?: Blob;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  etag?: string;
}

export interface DownloadUrlOptions {
  expiresInSeconds: number;
  /** The file name a browser saves it as; the key's last segment by default. */
  filename?: string;
  /** When the link's lifetime starts (now by default); tests use a past time to get an expired link. */
  issuedAt?: Date;
  /** Local destinations: the fleet node that wrote the file (its disk holds it). */
  nodeId?: string;
}

/**
 * A new object written by the caller's own child processes, not through the daemon: a temp
 * file beside the object's path (local destinations only), named as `put`'s are, so recovery
 * after a crash removes it the same way.
 */
export interface DirectWrite {
  /** The temp file, open for reading and writing: a tool's stdout, read back with positional reads. */
  fd: number;
  /**
   * fsync, close, rename into place, fsync the directory: the object then exists whole.
   * With `expectedSize`, a file of another size is discarded instead (STORAGE_ERROR).
   */
  commit(expectedSize?: number): Promise<PutResult>;
  /** Closes and removes the temp file; a no-op once committed or discarded. */
  discard(): Promise<void>;
}

export interface StorageDriver {
  readonly kind: "local" | "s3";
  /** Streams `body` (of unknown length) to `key`. Either the whole object exists afterwards or nothing does. */
  put(key: string, body: ReadableStream<Uint8Array>, options?: PutOptions): Promise<PutResult>;
  /** A file for tools to write `key` into themselves (local only); aborting `signal` before commit makes it fail. */
  openDirectWrite?(key: string, options?: { signal?: AbortSignal }): Promise<DirectWrite>;
  /** Throws StorageError NOT_FOUND when there is no such object. */
  get(key: string, options?: { range?: ByteRange }): Promise<GetResult>;
  /** null when there is no such object. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Idempotent: deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in key order, fetched page by page. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** A URL that downloads `key` without a bearer token until it expires. */
  downloadUrl(key: string, options: DownloadUrlOptions): Promise<string>;
  /**
   * Removes what an interrupted upload of `key` may have left (S3 multipart uploads in
   * progress, local temp files): for recovery after a crash. Never touches a complete object.
   */
  cleanupUpload(key: string): Promise<void>;
  /** Releases connections; the driver is not used afterwards. */
  close(): void;
}
