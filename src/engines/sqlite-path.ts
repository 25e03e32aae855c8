import { lstatSync, statSync, type Stats } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { Config } from "../config/schema.ts";
import { isNormalizedAbsolute, isWithin, realPathOf } from "../lib/host-paths.ts";

/**
 * The host boundary of SQLite data sources. A source's `path` is tenant input naming a file
 * on the daemon's host, which the daemon reads (backup, verify) and replaces (restore) with
 * its own rights. So it must resolve (symlinks followed) under a root the operator allowed,
 * and never onto the daemon's own files: its store, its keys, the backups it keeps. Checked
 * when a source is written and again before every use, since a file can be swapped for a
 * symlink after the source was created.
 */

export const SQLITE_ROOTS_KEY = "sources.allowedSqliteRoots";

export interface SqlitePathPolicy {
  /** Where SQLite sources may be (`sources.allowedSqliteRoots`); empty = none anywhere. */
  roots: readonly string[];
  /** The daemon's directories: nothing inside them is a source (store, scratch, backups). */
  reservedDirs: readonly string[];
  /** The daemon's files wherever they are, with their rotation siblings (`master.key.old-…`). */
  reservedFiles: readonly string[];
}

export function sqlitePathPolicy(config: Config): SqlitePathPolicy {
  const reservedDirs = [config.dataDir, ...config.storage.allowedLocalRoots];
  if (config.managedStorage.type === "local") reservedDirs.push(config.managedStorage.path);
  return {
    roots: config.sources.allowedSqliteRoots,
    reservedDirs,
    reservedFiles: [config.masterKeyFile, config.auth.jwtSecretFile, join(config.dataDir, "snapdb.db")],
  };
}

export type SqlitePathCheck = { ok: true; real: string } | { ok: false; reason: string };

const statOf = (path: string, follow = true): Stats | null => {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch {
    return null;
  }
};

const refuse = (reason: string): SqlitePathCheck => ({ ok: false, reason });

/**
 * What SQLite opens beside a database file: it reads `-wal` into the database and rolls a
 * hot `-journal` back into it. A companion that is a symlink or a hard link to another
 * file would feed it that file's pages (or, on a checkpoint, truncate it).
 */
const COMPANIONS = ["-wal", "-shm", "-journal"];

/** Whether `stat` is one of the daemon's reserved files (or a companion of one), by inode: hard links included. */
function isReservedInode(stat: Stats, policy: SqlitePathPolicy): boolean {
  return policy.reservedFiles.some((file) =>
    ["", ...COMPANIONS].some((suffix) => {
      const other = statOf(file + suffix);
      return other !== null && other.dev === stat.dev && other.ino === stat.ino;
    }),
  );
}

/**
 * Whether `path` may be a SQLite source now, and if so the real path to use (open that one,
 * not `path`: it is what was checked). Reasons name the path as given and the operator's
 * key, never where the daemon's own files are.
 */
export function checkSqlitePath(path: string, policy: SqlitePathPolicy): SqlitePathCheck {
  if (!policy.roots.length) {
    return refuse(`SQLite data sources are turned off on this daemon: the operator allows no SQLite paths (${SQLITE_ROOTS_KEY} is empty)`);
  }
  if (!isNormalizedAbsolute(path)) return refuse(`${path} must be an absolute, normalized path (no . or .. segments, no trailing or doubled /)`);
  const real = realPathOf(path);
  if (real === null) return refuse(`${path} cannot be resolved (a dangling symlink, a symlink loop or an unreadable directory on the way)`);
  const stat = statOf(real);
  if (stat && !stat.isFile()) return refuse(`${path} is not a regular file`);
  for (const dir of policy.reservedDirs) {
    const realDir = realPathOf(dir) ?? dir;
    if (isWithin(real, realDir) || isWithin(path, dir)) return refuse(`${path} resolves into a directory the daemon keeps for itself`);
  }
  for (const file of policy.reservedFiles) {
    const realFile = realPathOf(file) ?? file;
    // `master.key.old-…`, `master.key.new-…`: the rotation's siblings are keys too.
    if ([file, realFile].some((f) => real === f || real.startsWith(`${f}.`))) return refuse(`${path} is one of the daemon's own files`);
  }
  if (stat && isReservedInode(stat, policy)) return refuse(`${path} is one of the daemon's own files`);
  for (const suffix of COMPANIONS) {
    const companion = statOf(real + suffix, false);
    if (!companion) continue;
    if (!companion.isFile()) return refuse(`${path}${suffix} (SQLite reads it with the database) is not a regular file`);
    if (isReservedInode(companion, policy)) return refuse(`${path}${suffix} is one of the daemon's own files`);
  }
  for (const root of policy.roots) {
    const realRoot = isAbsolute(root) ? realPathOf(root) : null;
    if (realRoot !== null && isWithin(real, realRoot)) return { ok: true, real };
  }
  return refuse(`${path} is not under a directory the operator allows for SQLite sources (${SQLITE_ROOTS_KEY}: ${policy.roots.join(", ")})`);
}
