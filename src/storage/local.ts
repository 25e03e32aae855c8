import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { lstat, open, readdir, realpath, rename, rmdir, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import type { DownloadTokens } from "./download-token.ts";
import { classifyFsError, StorageError } from "./errors.ts";
import { checkDirsBelow, checkLocalRoot, ensureDirInside, fsyncDir, keyPath, prefixDir, realRoot, resolvesInside, TEMP_MARK } from "./local-paths.ts";
import type { ByteRange, DirectWrite, DownloadUrlOptions, GetResult, ObjectInfo, PutOptions, PutResult, StorageDriver } from "./types.ts";

export interface LocalDriverOptions {
  /** Absolute directory that holds every object of this destination. */
  root: string;
  /** How download links are made: the daemon serves `/downloads/{token}`. */
  download?: { destinationId: string; tokens: DownloadTokens; baseUrl: string };
  /**
   * The operator's allowed roots (tenant destinations; not the managed one). Checked on every
   * operation, not only when the driver is built: the driver outlives jobs, and the directory
   * (or a parent) may be swapped for a symlink that leads elsewhere in the meantime. With
   * them, every directory from the allowed root down to an object's must also be the
   * daemon's alone (local-paths.ts, `checkLocalRoot`), so that the names checked stay put.
   */
  allowedRoots?: readonly string[];
}

const aborted = () => new StorageError("ABORTED", "upload aborted");
const escapes = () => new StorageError("INVALID_KEY", "object key refused: it resolves outside the destination directory");

/**
 * A directory as object storage. A put writes `.snapdb-part-<name>.<random>` beside the
 * target, fsyncs it, renames it into place and fsyncs the directory: after a crash there is
 * either the complete file or a temp name that list and get never show.
 */
const WRITE_BATCH = 1024 * 1024;

/** Writes all of `chunks` (`total` bytes); a short vectored write is finished plainly, which reports ENOSPC. */
async function writeAll(fh: FileHandle, chunks: Uint8Array[], total: number): Promise<void> {
  if (total === 0) return;
  const { bytesWritten } = await fh.writev(chunks);
  if (bytesWritten === total) return;
  const rest = Buffer.concat(chunks).subarray(bytesWritten);
  let offset = 0;
  while (offset < rest.length) {
    const { bytesWritten } = await fh.write(rest, offset, rest.length - offset);
    if (bytesWritten === 0) throw Object.assign(new Error("the disk took no more bytes"), { code: "ENOSPC" });
    offset += bytesWritten;
  }
}

export class LocalDriver implements StorageDriver {
  readonly kind = "local" as const;

  constructor(private readonly options: LocalDriverOptions) {}

  get root(): string {
    return this.options.root;
  }

  /** A tenant's destination: the layout rule holds for it (local-paths.ts). */
  private get strict(): boolean {
    return this.options.allowedRoots !== undefined;
  }

  /**
   * The directory to use for this operation. A tenant's is checked again and its real path
   * used (what was checked, by names that only the daemon or root can change); the managed
   * one is the operator's, used as configured.
   */
  private place(): string {
    const roots = this.options.allowedRoots;
    if (!roots) return this.root;
    const check = checkLocalRoot(this.root, roots);
    if (check.ok) return check.real;
    throw new StorageError("ACCESS_DENIED", check.outside ? "the directory is no longer under an allowed local root" : `local storage: ${check.reason}`);
  }

  /** For a tenant's destination: the directories from `root` down to `dir` must still be the daemon's alone. */
  private checkBelow(root: string, dir: string): void {
    if (this.strict) checkDirsBelow(root, dir);
  }

  /** The path of an existing object (and the root used), after checking that symlinks don't lead it out of the root. */
  private async existingPath(key: string): Promise<{ root: string; file: string } | null> {
    const root = this.place();
    const file = keyPath(root, key);
    const rootReal = await realRoot(root);
    if (!rootReal) return null;
    this.checkBelow(root, dirname(file));
    try {
      if (!(await resolvesInside(rootReal, file))) throw escapes();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw classifyFsError(err, "local storage");
    }
    return { root, file };
  }

  /** Creates `.snapdb-part-<name>.<random>` beside the object's path: 0600, new, never through a symlink. */
  private async createTemp(key: string, access: number): Promise<{ file: string; dir: string; tmp: string; fh: FileHandle }> {
    const root = this.place();
    const file = keyPath(root, key);
    const dir = dirname(file);
    const tmp = join(dir, `${TEMP_MARK}${basename(file)}.${randomBytes(6).toString("hex")}`);
    try {
      await ensureDirInside(root, dir, this.strict);
      const fh = await open(tmp, access | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      return { file, dir, tmp, fh };
    } catch (err) {
      throw classifyFsError(err, "local storage");
    }
  }

  /** A complete temp file (fsynced and closed) becomes the object; if the caller gave up meanwhile, nothing is left. */
  private async commitTemp(tmp: string, file: string, dir: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw aborted();
    await rename(tmp, file);
    await fsyncDir(dir);
    if (signal?.aborted) {
      // Too late to stop, but the caller gave up on it: leave nothing that looks whole.
      await unlink(file).catch(() => {});
      throw aborted();
    }
  }

  async put(key: string, body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const { signal } = options;
    if (signal?.aborted) {
      await body.cancel().catch(() => {});
      throw aborted();
    }
    let temp: Awaited<ReturnType<LocalDriver["createTemp"]>>;
    try {
      temp = await this.createTemp(key, constants.O_WRONLY);
    } catch (err) {
      await body.cancel().catch(() => {});
      throw err;
    }
    const { file, dir, tmp, fh } = temp;
    const reader = body.getReader();
    const onAbort = () => void reader.cancel().catch(() => {});
    signal?.addEventListener("abort", onAbort, { once: true });
    let size = 0;
    let closed = false;
    let stage: "read" | "write" = "read";
    // Chunks are gathered into ~1 MiB writes: each write is a round trip to the thread
    // pool, and one per 64 KiB chunk cost twice the CPU (bench/RESULTS.md).
    let batch: Uint8Array[] = [];
    let batched = 0;
    try {
      for (;;) {
        stage = "read";
        const { done, value } = await reader.read();
        if (signal?.aborted) throw aborted();
        if (!done) {
          batch.push(value);
          batched += value.byteLength;
        }
        if (batched >= WRITE_BATCH || (done && batched > 0)) {
          stage = "write";
          await writeAll(fh, batch, batched);
          size += batched;
          batch = [];
          batched = 0;
        }
        if (done) break;
      }
      stage = "write";
      await fh.sync();
      await fh.close();
      closed = true;
      await this.commitTemp(tmp, file, dir, signal);
      return { size };
    } catch (err) {
      if (!closed) await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      if (stage === "write") await reader.cancel().catch(() => {});
      if (err instanceof StorageError) throw err;
      if (signal?.aborted) throw aborted();
      // A failing source is the caller's error (e.g. the dump died): pass it on as is.
      throw stage === "read" ? err : classifyFsError(err, "local storage write");
    } finally {
      signal?.removeEventListener("abort", onAbort);
      reader.releaseLock?.();
    }
  }

  async openDirectWrite(key: string, options: { signal?: AbortSignal } = {}): Promise<DirectWrite> {
    if (options.signal?.aborted) throw aborted();
    const { file, dir, tmp, fh } = await this.createTemp(key, constants.O_RDWR);
    let state: "open" | "committed" | "discarded" = "open";
    const discard = async () => {
      if (state !== "open") return;
      state = "discarded";
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    };
    const commitTemp = () => this.commitTemp(tmp, file, dir, options.signal);
    return {
      fd: fh.fd,
      async commit(expectedSize?: number) {
        if (state !== "open") throw new StorageError("STORAGE_ERROR", "the direct write was already finished");
        try {
          await fh.sync();
          const { size } = await fh.stat();
          if (expectedSize !== undefined && size !== expectedSize) {
            throw new StorageError("STORAGE_ERROR", `local storage write: ${size} bytes on disk, ${expectedSize} expected`);
          }
          state = "committed";
          await fh.close();
          await commitTemp();
          return { size };
        } catch (err) {
          state = "open";
          await discard();
          if (err instanceof StorageError) throw err;
          throw classifyFsError(err, "local storage write");
        }
      },
      discard,
    };
  }

  async get(key: string, options: { range?: ByteRange } = {}): Promise<GetResult> {
    const found = await this.existingPath(key);
    if (!found) throw new StorageError("NOT_FOUND", "no such object");
    const { root, file } = found;
    let real: string;
    let totalSize: number;
    try {
      // The resolved path, checked inside the root by existingPath: what we open is what was checked.
      real = await realpath(file);
      const rootReal = await realpath(root);
      const st = await stat(real);
      // A symlink as the object itself is refused, even one that stays inside the root.
      if (!st.isFile() || real !== join(rootReal, relative(root, file))) throw new StorageError("NOT_FOUND", "no such object");
      totalSize = st.size;
    } catch (err) {
      throw classifyFsError(err, "local storage read");
    }
    let start = 0;
    let endExclusive = totalSize;
    if (options.range) {
      start = options.range.start;
      endExclusive = Math.min(totalSize, (options.range.end ?? totalSize - 1) + 1);
      if (!Number.isInteger(start) || start < 0 || start >= totalSize || endExclusive <= start) {
        throw new StorageError("INVALID_RANGE", "the byte range is outside the object");
      }
    }
    // A lazily read file slice: Bun streams it in chunks (memory stays flat), and an HTTP
    // response built from the Blob itself gets Content-Length and sendfile.
    const blob = Bun.file(real).slice(start, endExclusive);
    return { body: blob.stream() as ReadableStream<Uint8Array>, size: endExclusive - start, totalSize, blob };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const found = await this.existingPath(key);
    if (!found) return null;
    const st = await lstat(found.file).catch(() => null);
    if (!st || !st.isFile()) return null;
    return { key, size: st.size, lastModified: st.mtime };
  }

  async delete(key: string): Promise<void> {
    const root = this.place();
    const file = keyPath(root, key);
    const rootReal = await realRoot(root);
    if (!rootReal) return;
    const dir = dirname(file);
    this.checkBelow(root, dir);
    try {
      // The parent must resolve inside the root, or unlink could remove a file elsewhere.
      if (!(await resolvesInside(rootReal, dir))) throw escapes();
      await unlink(file);
      await fsyncDir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw classifyFsError(err, "local storage delete");
    }
    // Prune the date directories it leaves empty; rmdir fails (harmlessly) on a non-empty one.
    for (let d = dir; d.startsWith(root + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        break;
      }
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const root = this.place();
    const start = prefixDir(root, prefix);
    const rootReal = await realRoot(root);
    if (!rootReal) return;
    this.checkBelow(root, start);
    try {
      if (!(await resolvesInside(rootReal, start))) throw escapes();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw classifyFsError(err, "local storage list");
    }
    yield* this.walk(root, start, prefix);
  }

  private async *walk(root: string, dir: string, prefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      // A directory read here holds the next names used: for a tenant, it must be the daemon's alone.
      if (this.strict && dir !== root) checkDirsBelow(dir, dir);
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw classifyFsError(err, "local storage list");
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_MARK)) continue;
      const path = join(dir, entry.name);
      const key = relative(root, path).split(sep).join("/");
      // Symlinks are never followed: they could lead out of the root.
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(root, path, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const st = await stat(path).catch(() => null);
        if (st) yield { key, size: st.size, lastModified: st.mtime };
      }
    }
  }

  async downloadUrl(key: string, options: DownloadUrlOptions): Promise<string> {
    const download = this.options.download;
    if (!download) throw new StorageError("STORAGE_ERROR", "this local destination has no download links configured");
    keyPath(this.place(), key);
    const issuedAt = options.issuedAt?.getTime() ?? Date.now();
    const token = download.tokens.sign({
      destinationId: download.destinationId,
      key,
      expiresAt: issuedAt + options.expiresInSeconds * 1000,
      filename: options.filename ?? key.slice(key.lastIndexOf("/") + 1),
      nodeId: options.nodeId,
    });
    return `${download.baseUrl.replace(/\/+$/, "")}/downloads/${token}`;
  }

  async cleanupUpload(key: string): Promise<void> {
    const root = this.place();
    const file = keyPath(root, key);
    const dir = dirname(file);
    const rootReal = await realRoot(root);
    if (!rootReal) return;
    this.checkBelow(root, dir);
    try {
      if (!(await resolvesInside(rootReal, dir))) throw escapes();
      const mark = `${TEMP_MARK}${basename(file)}.`;
      for (const name of await readdir(dir)) {
        if (name.startsWith(mark)) await unlink(join(dir, name)).catch(() => {});
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw classifyFsError(err, "local storage cleanup");
    }
  }

  close(): void {}
}
