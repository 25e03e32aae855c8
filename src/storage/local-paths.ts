import { lstat, mkdir, open, realpath } from "node:fs/promises";
import { dirname, isAbsolute, join, sep } from "node:path";
import { StorageError } from "./errors.ts";

/** Names of in-progress uploads: never a valid key segment, skipped by list. */
export const TEMP_MARK = ".snapdb-part-";

const invalidKey = (why: string) => new StorageError("INVALID_KEY", `object key refused: ${why}`);

/**
 * Turns a key into a path under `root`, refusing anything that could leave it: absolute
 * keys, `..`/`.`/empty segments, NUL bytes, backslashes, and names reserved for temp files.
 * Symlinks are dealt with by the callers (realpath / lstat walks), since syntax can't see them.
 */
export function keyPath(root: string, key: string): string {
  if (typeof key !== "string" || key === "") throw invalidKey("empty");
  if (key.length > 1024) throw invalidKey("longer than 1024 characters");
  if (key.includes("\0")) throw invalidKey("contains a NUL byte");
  if (key.includes("\\")) throw invalidKey("contains a backslash");
  if (key.startsWith("/") || isAbsolute(key)) throw invalidKey("absolute");
  const segments = key.split("/");
  for (const s of segments) {
    if (s === "" || s === "." || s === "..") throw invalidKey("empty, '.' or '..' segment");
    if (s.startsWith(TEMP_MARK)) throw invalidKey("reserved name");
  }
  const full = join(root, ...segments);
  if (!full.startsWith(root + sep)) throw invalidKey("outside the destination directory");
  return full;
}

/** The directory segments of a list prefix (`a/b/c` → `a/b`), validated like a key's. */
export function prefixDir(root: string, prefix: string): string {
  if (prefix.includes("\0") || prefix.includes("\\") || prefix.startsWith("/")) throw invalidKey("bad prefix");
  const slash = prefix.lastIndexOf("/");
  if (slash <= 0) return root;
  return keyPath(root, prefix.slice(0, slash));
}

export async function realRoot(root: string): Promise<string | null> {
  try {
    return await realpath(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Whether `path` (which must exist) resolves, symlinks followed, to inside `rootReal`. */
export async function resolvesInside(rootReal: string, path: string): Promise<boolean> {
  const real = await realpath(path);
  return real === rootReal || real.startsWith(rootReal + sep);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Creates the directories from `root` down to `dir` one segment at a time, refusing any
 * existing segment that is a symlink or not a directory, so a planted symlink can't make
 * us create or write anything outside the root. New directories are fsynced into their parent.
 */
export async function ensureDirInside(root: string, dir: string): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  if (dir === root) return;
  const rel = dir.slice(root.length + 1).split(sep);
  let current = root;
  for (const s of rel) {
    const next = join(current, s);
    try {
      const st = await lstat(next);
      if (st.isSymbolicLink()) throw invalidKey("a directory on the path is a symlink");
      if (!st.isDirectory()) throw invalidKey("a path segment is not a directory");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      try {
        await mkdir(next, { mode: 0o700 });
        await fsyncDir(current);
      } catch (mkErr) {
        if ((mkErr as NodeJS.ErrnoException).code !== "EEXIST") throw mkErr;
      }
    }
    current = next;
  }
}

export { fsyncDir, dirname };
