import { lstatSync, realpathSync, type Stats } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

/**
 * The real path of `path` (symlinks followed), or of its nearest existing ancestor with the
 * missing rest appended. Null when some component exists but cannot be resolved (a dangling
 * symlink, a loop, no permission): where such a path leads is unknown, so it is nowhere allowed.
 */
export function realPathOf(path: string): string | null {
  let current = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return resolve(realpathSync(current), ...rest.reverse());
    } catch {
      try {
        lstatSync(current);
        return null; // it is there, but where it points is not
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") return null;
      }
      const parent = dirname(current);
      if (parent === current) return null;
      rest.push(current.slice(parent.length).replace(/^\/+/, ""));
      current = parent;
    }
  }
}

/** Whether the real path `real` is `dir` itself or lies below it (both already resolved). */
export const isWithin = (real: string, dir: string) => real === dir || real.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/** An absolute path with no `.`/`..` segments, no doubled or trailing slash, no NUL. */
export function isNormalizedAbsolute(path: string): boolean {
  return isAbsolute(path) && !path.includes("\0") && resolve(path) === path;
}

/**
 * The allowed root that `path` lies under, with symlinks resolved on both sides (a symlink
 * inside a root that points out doesn't count), or null. The path must be absolute and
 * normalized (no `.`/`..` segments, no NUL; a trailing slash is tolerated).
 */
export function underAllowedRoot(path: string, roots: readonly string[]): string | null {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (!isNormalizedAbsolute(trimmed)) return null;
  const real = realPathOf(trimmed);
  if (real === null) return null;
  for (const root of roots) {
    const realRoot = realPathOf(resolve(root));
    if (realRoot !== null && isWithin(real, realRoot)) return root;
  }
  return null;
}

/**
 * Why someone other than the daemon's user (or root) may create, remove or rename entries
 * of the directory whose lstat is `stat`, or null: it is theirs, or its group or others may
 * write to it (an ACL granting write shows in the group bits). Whoever may do that can
 * exchange an entry with a symlink (renameat2 RENAME_EXCHANGE) between a check by name and
 * the use of that name, which no check by name can see.
 */
export function othersMayRename(stat: Stats): string | null {
  const me = process.geteuid?.() ?? -1;
  if (stat.uid !== me && stat.uid !== 0) return `it belongs to uid ${stat.uid}`;
  if ((stat.mode & 0o022) !== 0) return `its mode ${(stat.mode & 0o7777).toString(8).padStart(4, "0")} lets its group or others write to it`;
  return null;
}

/** A directory on the way whose entries someone else could swap: `holder`, the entry below it (`part`, null when the holder is the last directory itself), and why. */
export interface Swappable {
  holder: string;
  part: string | null;
  why: string;
}

const lstatOrNull = (path: string): Stats | null => {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
};

/**
 * The first directory on the way from the real directory `root` down to `dir` (below it or
 * `root` itself) whose entries someone other than the daemon's user or root could swap, or
 * null. The holders are `root` and each directory down to `dir`'s parent, and `dir` itself
 * when `withDir` (when the daemon uses names inside it, not only `dir`'s own). Each is
 * checked from the root down, so each name looked at is one that only the daemon or root can
 * change. A part that does not exist yet is left to the next check (whoever creates it is
 * the daemon or root, the only ones who may write in its parent).
 */
export function swappableOnTheWay(root: string, dir: string, withDir = false): Swappable | null {
  const parts = relative(root, dir).split(sep).filter(Boolean);
  let holder = root;
  for (const part of [...parts, null]) {
    if (part === null && !withDir) break;
    const stat = lstatOrNull(holder);
    if (!stat) return null;
    if (!stat.isDirectory()) return { holder, part, why: "it is not a directory" };
    const why = othersMayRename(stat);
    if (why) return { holder, part, why };
    if (part !== null) holder = join(holder, part);
  }
  return null;
}
