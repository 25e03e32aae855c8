import { fstat, read } from "node:fs";
import { promisify } from "node:util";

const readAt = promisify(read);
const statOf = promisify(fstat);

/** Big reads: each is one round trip to the thread pool, and the bytes are in the page cache. */
const READ_SIZE = 4 * 1024 * 1024;
/** How long to wait when the reader has caught up with the writer. */
const CATCH_UP_WAIT_MS = 50;
/**
 * While the writer runs, only bytes below a size the file had at least this long ago are
 * read. On weakly ordered CPUs some kernels let a read during an append see the new size
 * before the data behind it (and return zeros); the bytes a size seen 50 ms ago covers
 * are long in place. The reader trails by ~50 ms of output, read at the end.
 */
const SETTLED_MS = 50;

/**
 * The sha256 and size of a file that another process is still appending to (a tool
 * writing a backup straight into it), read from `fd` (positional reads: the writer's
 * offset is untouched) as it grows, so the hash is ready moments after the writer ends.
 * The file is read to its end only after `writerDone` resolves, so every byte written is
 * hashed; if it rejects, reading stops and the returned promise rejects with the same
 * error. What is hashed is what is on disk, not a copy of it on the way there.
 */
export async function hashGrowingFile(fd: number, writerDone: Promise<unknown>, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const hasher = new Bun.CryptoHasher("sha256");
  const buffer = Buffer.allocUnsafe(READ_SIZE);
  const writer: { state: "writing" | "done" | "failed" } = { state: "writing" };
  const settled = writerDone.then(
    () => void (writer.state = "done"),
    () => void (writer.state = "failed"),
  );
  /** Sizes seen while the writer ran, oldest first; each becomes the settled size once SETTLED_MS old. */
  const seen: { at: number; size: number }[] = [];
  let settledSize = 0;
  let size = 0;
  let stalled = false;
  for (;;) {
    // Read the writer's state before reading the file: a short read after "done" is the end.
    const before = writer.state;
    if (before === "failed") break;
    const limit = before === "done" ? Number.POSITIVE_INFINITY : settledSize;
    if (size < limit) {
      const { bytesRead } = await readAt(fd, buffer, 0, Math.min(READ_SIZE, limit - size), size);
      if (bytesRead > 0) {
        hasher.update(buffer.subarray(0, bytesRead));
        size += bytesRead;
        onBytes?.(bytesRead);
        continue;
      }
      if (before === "done") return { sha256: hasher.digest("hex"), size };
      stalled = true; // the file shrank under us: do not spin
    }
    // Caught up with what has settled: look at the file's size again, then wait a little.
    const now = Date.now();
    seen.push({ at: now, size: (await statOf(fd)).size });
    while (seen.length > 0 && now - seen[0]!.at >= SETTLED_MS) settledSize = Math.max(settledSize, seen.shift()!.size);
    if (settledSize <= size || stalled) await Promise.race([settled, Bun.sleep(CATCH_UP_WAIT_MS)]);
    stalled = false;
  }
  await writerDone;
  throw new Error("unreachable: the writer failed");
}
