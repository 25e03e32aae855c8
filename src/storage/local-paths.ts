import { lstat, mkdir, open, realpath } from "node:fs/promises";
import type { Stats } from "node:fs";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { isNormalizedAbsolute, isWithin, othersMayRename, realPathOf, swappableOnTheWay } from "../lib/host-paths.ts";
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
 * The rule for the directories of a tenant's local destination, from the allowed root down
 * to the directory an object is in (the destination's own and the YYYY/MM/DD and prefix
 * directories the driver makes below it): only the daemon's user (or root) may write to
 * them. The driver checks by name and then uses the name (mkdir, open, rename, unlink,
 * readdir), so whoever else may write to one of them could exchange the directory below it
 * with a symlink in between (renameat2 RENAME_EXCHANGE) and have the daemon write, read or
 * delete elsewhere, which no check by name can see. The allowed root's own parents are the
 * operator's.
 */
export const LOCAL_ROOTS_KEY = "storage.allowedLocalRoots";

const LAYOUT_RULE = `every directory from the allowed local root down to the destination's must be writable only by the daemon's user (or root), else another user could swap it for a symlink while the daemon writes`;

export type LocalRootCheck = { ok: true; real: string } | { ok: false; reason: string; outside?: true };

/**
 * Whether `path` may be a tenant's local destination now, and if so its real path (use that
 * one, not `path`: it is what was checked). `outside` marks the reason "not under an allowed
 * root", which callers word themselves.
 */
export function checkLocalRoot(path: string, roots: readonly string[]): LocalRootCheck {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (!isNormalizedAbsolute(trimmed)) return { ok: false, reason: `${path} must be an absolute, normalized directory path` };
  const real = realPathOf(trimmed);
  for (const root of roots) {
    const realRoot = realPathOf(resolve(root));
    if (real === null || realRoot === null || !isWithin(real, realRoot)) continue;
    const swappable = swappableOnTheWay(realRoot, real, true);
    if (swappable) return { ok: false, reason: `${trimmed} is refused: ${swappable.holder} is not the daemon's alone (${swappable.why}); ${LAYOUT_RULE}` };
    return { ok: true, real };
  }
  return { ok: false, reason: `${trimmed} is not under an allowed local root`, outside: true };
}

/** Why a directory below a tenant's destination (lstat `stat`) breaks the rule above, or null. */
function subdirProblem(path: string, stat: Stats): string | null {
  if (stat.isSymbolicLink()) return `${path} is a symlink`;
  if (!stat.isDirectory()) return `${path} is not a directory`;
  const why = othersMayRename(stat);
  return why ? `${path} is not the daemon's alone (${why}); ${LAYOUT_RULE}` : null;
}

const layoutRefused = (reason: string) => new StorageError("ACCESS_DENIED", `local storage: ${reason}`);

/**
 * For a tenant's destination: throws ACCESS_DENIED unless every existing directory from the
 * (checked) real root `root` down to `dir`, both included, is the daemon's alone.
 */
export function checkDirsBelow(root: string, dir: string): void {
  const swappable = swappableOnTheWay(root, dir, true);
  if (swappable) throw layoutRefused(`${swappable.holder} is not the daemon's alone (${swappable.why}); ${LAYOUT_RULE}`);
}

/**
 * Creates the directories from `root` down to `dir` one segment at a time (0700, the
 * daemon's), refusing any existing segment that is a symlink or not a directory, so a
 * planted symlink can't make us create or write anything outside the root. With `strict`
 * (a tenant's destination) every one of them, `root` included, must also be the daemon's
 * alone, those it just made too. New directories are fsynced into their parent.
 */
export async function ensureDirInside(root: string, dir: string, strict = false): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  if (strict) {
    const problem = subdirProblem(root, await lstat(root));
    if (problem) throw layoutRefused(problem);
  }
  if (dir === root) return;
  const rel = dir.slice(root.length + 1).split(sep);
  let current = root;
  for (const s of rel) {
    const next = join(current, s);
    let st: Stats;
    try {
      st = await lstat(next);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      try {
        await mkdir(next, { mode: 0o700 });
        await fsyncDir(current);
      } catch (mkErr) {
        if ((mkErr as NodeJS.ErrnoException).code !== "EEXIST") throw mkErr;
      }
      st = await lstat(next);
    }
    if (st.isSymbolicLink()) throw invalidKey("a directory on the path is a symlink");
    if (!st.isDirectory()) throw invalidKey("a path segment is not a directory");
    if (strict) {
      const problem = subdirProblem(next, st);
      if (problem) throw layoutRefused(problem);
    }
    current = next;
  }
}

export { fsyncDir, dirname };
