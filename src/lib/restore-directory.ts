import { readdirSync, statSync } from "node:fs";
import { isNormalizedAbsolute, isWithin, realPathOf } from "./host-paths.ts";

/**
 * The host boundary of point-in-time restores: a tenant names a directory on the daemon's
 * host that the daemon fills with a PostgreSQL data directory. It must resolve (symlinks
 * followed) under a root the operator allowed (`storage.allowedRestoreRoots`), never into
 * the daemon's own directories, and hold nothing yet (or not exist): a restore never
 * writes over files. Checked when the restore is asked for and again when it runs.
 */
export const RESTORE_ROOTS_KEY = "storage.allowedRestoreRoots";

export interface RestoreDirectoryPolicy {
  roots: readonly string[];
  /** The data dir, managed storage, local destination roots: never a restore target. */
  reservedDirs: readonly string[];
}

export type RestoreDirectoryCheck = { ok: true; real: string; exists: boolean } | { ok: false; reason: string };

const refuse = (reason: string): RestoreDirectoryCheck => ({ ok: false, reason });

export function checkRestoreDirectory(path: string, policy: RestoreDirectoryPolicy): RestoreDirectoryCheck {
  if (!policy.roots.length) return refuse(`point-in-time restores are turned off on this daemon: the operator allows no restore directories (${RESTORE_ROOTS_KEY} is empty)`);
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (!isNormalizedAbsolute(trimmed)) return refuse(`${path} must be an absolute, normalized path (no . or .. segments, no doubled /)`);
  const real = realPathOf(trimmed);
  if (real === null) return refuse(`${path} cannot be resolved (a dangling symlink, a symlink loop or an unreadable directory on the way)`);
  for (const dir of policy.reservedDirs) {
    const realDir = realPathOf(dir) ?? dir;
    if (isWithin(real, realDir) || isWithin(realDir, real)) return refuse(`${path} overlaps a directory the daemon keeps for itself`);
  }
  const root = policy.roots.find((r) => {
    const realRoot = realPathOf(r);
    return realRoot !== null && isWithin(real, realRoot) && real !== realRoot;
  });
  if (!root) return refuse(`${path} is not inside a directory the operator allows for restores (${RESTORE_ROOTS_KEY}: ${policy.roots.join(", ")})`);
  let exists = false;
  try {
    const stat = statSync(real);
    if (!stat.isDirectory()) return refuse(`${path} exists and is not a directory`);
    exists = true;
    if (readdirSync(real).length > 0) return refuse(`${path} is not empty: a restore builds a new data directory and never writes over files`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") return refuse(`${path} cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  return { ok: true, real, exists };
}
