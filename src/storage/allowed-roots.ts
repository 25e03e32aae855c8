import { realpathSync } from "node:fs";
import { dirname, isAbsolute, resolve, sep } from "node:path";

/** The real path of `path`, or of its nearest existing ancestor with the rest appended. */
function realish(path: string): string {
  let current = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return resolve(realpathSync(current), ...rest.reverse());
    } catch {
      const parent = dirname(current);
      if (parent === current) return path;
      rest.push(current.slice(parent.length).replace(/^\/+/, ""));
      current = parent;
    }
  }
}

/**
 * Whether a local destination path lies under one of the operator's allowed roots, with
 * symlinks resolved on both sides (a symlink inside a root that points out doesn't count).
 * The path must be absolute and normalized (no `.`/`..` segments, no NUL).
 */
export function underAllowedRoot(path: string, roots: readonly string[]): string | null {
  if (!isAbsolute(path) || path.includes("\0") || resolve(path) !== path.replace(/\/+$/, "")) return null;
  const real = realish(path);
  for (const root of roots) {
    const realRoot = realish(resolve(root));
    if (real === realRoot || real.startsWith(realRoot + sep)) return root;
  }
  return null;
}
