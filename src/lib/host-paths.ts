import { lstatSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, resolve, sep } from "node:path";

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
