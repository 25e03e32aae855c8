import { constants as SQLITE } from "bun:sqlite";
import { closeSync, constants, lstatSync, openSync, readlinkSync, statSync, type Stats } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { Config } from "../config/schema.ts";
import { isNormalizedAbsolute, isWithin, realPathOf, swappableOnTheWay } from "../lib/host-paths.ts";

/**
 * The host boundary of SQLite data sources. A source's `path` is tenant input naming a file
 * on the daemon's host, which the daemon reads (backup, verify) and replaces (restore) with
 * its own rights. So it must resolve (symlinks followed) under a root the operator allowed,
 * and never onto the daemon's own files: its store, its keys, the backups it keeps. Checked
 * when a source is written and again before every use, since a file can be swapped for a
 * symlink after the source was created.
 *
 * A check by name is only as good as the names staying put until the file is opened, and
 * SQLite opens by name: it turns every path it is given, `/proc/self/fd/N/…` included, back
 * into a name (it resolves symlinks itself to find the `-wal` beside the real file), so a
 * pinned directory cannot be handed to it. Hence two rules make the names stay put:
 * - the file itself and its `-wal`/`-shm`/`-journal` are opened without following a symlink
 *   (SQLITE_OPEN_NOFOLLOW, and SQLite's own O_NOFOLLOW for the companions), and must not be
 *   hard links;
 * - every directory between the allowed root and the file must be one that only the
 *   daemon's user (or root) can rename entries of: otherwise whoever can write there can
 *   exchange the file's directory with a symlink to the data dir between the check and
 *   SQLite's open (renameat2 RENAME_EXCHANGE), which no check by name can see. A file
 *   directly in an allowed root needs nothing more (renaming the root needs its parent,
 *   which is the operator's).
 * The daemon's own opens (a restore's temp file, its rename, the directory's fsync) go
 * through the pinned directory (`pinSqlitePath`), never through a name again.
 */

export const SQLITE_ROOTS_KEY = "sources.allowedSqliteRoots";

/** In a root, stands for the organisation's id: `/srv/sqlite/{orgId}` gives each organisation its own root. */
export const ORG_PLACEHOLDER = "{orgId}";

/** How SQLite must open a tenant's file: no symlink anywhere in the path (callers pass the checked real path). */
export const SQLITE_READONLY_NOFOLLOW = SQLITE.SQLITE_OPEN_READONLY | SQLITE.SQLITE_OPEN_NOFOLLOW;
export const SQLITE_READWRITE_NOFOLLOW = SQLITE.SQLITE_OPEN_READWRITE | SQLITE.SQLITE_OPEN_NOFOLLOW;

export interface SqlitePathPolicy {
  /** Where SQLite sources may be (`sources.allowedSqliteRoots`, `{orgId}` not yet replaced); empty = none anywhere. */
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

/**
 * Whether an organisation id can stand for `{orgId}` in a root: one plain path segment (no
 * `/`, not `.` or `..`, no NUL), else it would lead into another directory.
 */
export const isPathSegment = (orgId: string) => orgId.length > 0 && orgId.length <= 255 && !/[/\0]/.test(orgId) && orgId !== "." && orgId !== "..";

/** The roots that hold for `orgId`: a root with `{orgId}` is that organisation's alone; one without is shared by all. */
export function rootsFor(policy: SqlitePathPolicy, orgId: string): string[] {
  return policy.roots.flatMap((root) => {
    if (!root.includes(ORG_PLACEHOLDER)) return [root];
    return isPathSegment(orgId) ? [root.split(ORG_PLACEHOLDER).join(orgId)] : [];
  });
}

export type SqlitePathCheck = { ok: true; real: string } | { ok: false; reason: string; missing?: true };

const statOf = (path: string, follow = true): Stats | null => {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch {
    return null;
  }
};

const refuse = (reason: string, missing?: true): SqlitePathCheck => ({ ok: false, reason, ...(missing ? { missing } : {}) });

/**
 * What SQLite opens beside a database file: it reads `-wal` into the database and rolls a
 * hot `-journal` back into it. A companion that is a symlink or a hard link to another
 * file would feed it that file's pages (or, on a checkpoint, truncate it).
 */
export const COMPANIONS = ["-wal", "-shm", "-journal"];

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
 * Why the file (or a companion) whose lstat is `stat` may not be read or replaced, or null.
 * A hard link is refused whatever it links to: it may be another tenant's file.
 */
function entryProblem(path: string, suffix: string, stat: Stats | null, policy: SqlitePathPolicy): string | null {
  if (!stat) return null;
  const what = suffix ? `${path}${suffix} (SQLite reads it with the database)` : path;
  if (stat.isSymbolicLink()) return `${what} is a symlink`;
  if (!stat.isFile()) return `${what} is not a regular file`;
  if (isReservedInode(stat, policy)) return `${path}${suffix} is one of the daemon's own files`;
  if (stat.nlink > 1) return `${what} is a hard link (it has ${stat.nlink} names); SQLite sources must have one`;
  return null;
}

/**
 * Whether `path` may be a SQLite source of `orgId` now, and if so the real path to use (open
 * that one, not `path`: it is what was checked). Reasons name the path as given and the
 * operator's key, never where the daemon's own files are.
 */
export function checkSqlitePath(path: string, policy: SqlitePathPolicy, orgId: string): SqlitePathCheck {
  if (!policy.roots.length) {
    return refuse(`SQLite data sources are turned off on this daemon: the operator allows no SQLite paths (${SQLITE_ROOTS_KEY} is empty)`);
  }
  const roots = rootsFor(policy, orgId);
  if (!roots.length) return refuse(`this organisation's id cannot name a directory, and every SQLite root of this daemon is per organisation (${SQLITE_ROOTS_KEY} with ${ORG_PLACEHOLDER})`);
  if (!isNormalizedAbsolute(path)) return refuse(`${path} must be an absolute, normalized path (no . or .. segments, no trailing or doubled /)`);
  const real = realPathOf(path);
  if (real === null) return refuse(`${path} cannot be resolved (a dangling symlink, a symlink loop or an unreadable directory on the way)`);
  const stat = statOf(real, false);
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
  for (const suffix of ["", ...COMPANIONS]) {
    const problem = entryProblem(path, suffix, statOf(real + suffix, false), policy);
    if (problem) return refuse(problem);
  }
  for (const root of roots) {
    const realRoot = isAbsolute(root) ? realPathOf(root) : null;
    if (realRoot === null || !isWithin(real, realRoot)) continue;
    const swappable = real === realRoot ? null : swappableOnTheWay(realRoot, dirname(real));
    if (swappable) {
      return refuse(
        `${path} lies below a directory (${swappable.part}) that a user other than the daemon's could swap for a symlink while the daemon opens the file: keep the file directly in an allowed root, or let only the daemon's user write to the directories above it`,
      );
    }
    return { ok: true, real };
  }
  return refuse(`${path} is not under a directory the operator allows for SQLite sources (${SQLITE_ROOTS_KEY}: ${policy.roots.join(", ")})`);
}

/**
 * A checked SQLite path with its directory held open: the daemon's own opens go through
 * `at(name)` (`/proc/self/fd/N/name`, which the kernel resolves to the held directory
 * whatever happens to the names), SQLite's through `real` with the NOFOLLOW flags. Close it
 * when done (`using`).
 */
export interface SqlitePin {
  /** The checked real path of the file. */
  readonly real: string;
  /** The file's name in its directory. */
  readonly name: string;
  /** The held directory's descriptor. */
  readonly dirFd: number;
  /** `name` (default: the file's) in the held directory. */
  at(name?: string): string;
  /** Looks again: null while the directory is still where it was checked and the file and its companions are still plain files. */
  recheck(): string | null;
  close(): void;
  [Symbol.dispose](): void;
}

const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/**
 * `checkSqlitePath`, then the file's directory opened and checked again through the
 * descriptor: it must still be the directory that was checked by name (its path, as the
 * kernel knows it, unchanged), and the file and its companions, looked at in that very
 * directory, plain files.
 */
export function pinSqlitePath(path: string, policy: SqlitePathPolicy, orgId: string): { ok: true; pin: SqlitePin } | { ok: false; reason: string; missing?: true } {
  const check = checkSqlitePath(path, policy, orgId);
  if (!check.ok) return check;
  const dir = dirname(check.real);
  const name = basename(check.real);
  let fd: number;
  try {
    fd = openSync(dir, O_DIR);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ok: false, reason: `${path} is in a directory that does not exist`, missing: true };
    return { ok: false, reason: `${path}: its directory cannot be opened (${code ?? "error"})` };
  }
  let open = true;
  const at = (entry = name) => `/proc/self/fd/${fd}/${entry}`;
  const recheck = (): string | null => {
    let now: string;
    try {
      now = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return `${path}: its directory can no longer be looked at`;
    }
    if (now !== dir) return `${path} changed while it was being checked (its directory moved or was swapped)`;
    for (const suffix of ["", ...COMPANIONS]) {
      const problem = entryProblem(path, suffix, statOf(at(name + suffix), false), policy);
      if (problem) return problem;
    }
    return null;
  };
  const close = () => {
    if (!open) return;
    open = false;
    closeSync(fd);
  };
  const pin: SqlitePin = { real: check.real, name, dirFd: fd, at, recheck, close, [Symbol.dispose]: close };
  const problem = recheck();
  if (problem) {
    close();
    return { ok: false, reason: problem };
  }
  return { ok: true, pin };
}
