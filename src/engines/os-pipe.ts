import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { findTool } from "./process.ts";

/** The private directory a FIFO is made in (removed at once; at start, if a kill left one). */
export const PIPE_DIR_PREFIX = "pipe-";

/** The two ends of an OS pipe, as file descriptors owned by the caller until closed. */
export interface OsPipe {
  read: number;
  write: number;
}

/**
 * Makes an OS pipe to join two child processes (`pg_dump | zstd`) without the bytes passing
 * through the daemon. Bun has no pipe(2), so: a FIFO in a private directory, opened at both
 * ends, then unlinked, which leaves two fds that behave as an anonymous pipe. The order
 * keeps every open from blocking: an O_RDWR "keeper" (Linux allows it on a FIFO) lets the
 * read end open without a writer, the write end then opens because a reader exists, and
 * the keeper closes, so the reader sees end-of-file once the writer's copies are closed.
 * Bun opens files close-on-exec, so no other child inherits an end. Null when no FIFO can
 * be made (no `mkfifo`, or a sandbox that refuses it): the caller relays instead.
 */
export async function openOsPipe(toolPath: string, dir: string): Promise<OsPipe | null> {
  const mkfifo = findTool("mkfifo", toolPath);
  if (!mkfifo) return null;
  let tmp: string | null = null;
  const opened: number[] = [];
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    tmp = mkdtempSync(join(dir, PIPE_DIR_PREFIX));
    const path = join(tmp, "fifo");
    const proc = Bun.spawn([mkfifo, "-m", "600", path], { env: { PATH: toolPath }, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    if ((await proc.exited) !== 0) return null;
    opened.push(openSync(path, "r+"));
    const read = openSync(path, "r");
    opened.push(read);
    const write = openSync(path, "w");
    closeSync(opened.shift()!);
    return { read, write };
  } catch {
    // A sandbox that refuses FIFOs (or a full disk) costs speed, not the backup.
    for (const fd of opened) closeSync(fd);
    return null;
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

export function closeOsPipe(pipe: OsPipe): void {
  for (const fd of [pipe.read, pipe.write]) {
    try {
      closeSync(fd);
    } catch {}
  }
}
