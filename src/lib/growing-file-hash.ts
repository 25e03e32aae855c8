import { read } from "node:fs";
import { promisify } from "node:util";

const readAt = promisify(read);

/** Big reads: each is one round trip to the thread pool, and the bytes are in the page cache. */
const READ_SIZE = 4 * 1024 * 1024;
/** How long to wait when the reader has caught up with the writer. */
const CATCH_UP_WAIT_MS = 50;

/**
 * The sha256 and size of a file that another process is still appending to (a tool
 * writing a backup straight into it), read from `fd` (positional reads: the writer's
 * offset is untouched) as it grows, so the hash is ready moments after the writer ends.
 * The file is read to its end only after `writerDone` resolves, so every byte written is
 * hashed; if it rejects, reading stops and the returned promise rejects with the same
 * error. What is hashed is what is on disk, not a copy of it on the way there.
 */
export async function hashGrowingFile(
  fd: number,
  writerDone: Promise<unknown>,
  onBytes?: (n: number) => void,
): Promise<{ sha256: string; size: number }> {
  const hasher = new Bun.CryptoHasher("sha256");
  const buffer = Buffer.allocUnsafe(READ_SIZE);
  const writer: { state: "writing" | "done" | "failed" } = { state: "writing" };
  const settled = writerDone.then(
    () => void (writer.state = "done"),
    () => void (writer.state = "failed"),
  );
  let size = 0;
  for (;;) {
    // Read the writer's state before reading the file: a short read after "done" is the end.
    const before = writer.state;
    if (before === "failed") break;
    const { bytesRead } = await readAt(fd, buffer, 0, READ_SIZE, size);
    if (bytesRead > 0) {
      hasher.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
      onBytes?.(bytesRead);
      continue;
    }
    if (before === "done") return { sha256: hasher.digest("hex"), size };
    await Promise.race([settled, Bun.sleep(CATCH_UP_WAIT_MS)]);
  }
  await writerDone;
  throw new Error("unreachable: the writer failed");
}
