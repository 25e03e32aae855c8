import { closeSync, constants, existsSync, fstatSync, fsyncSync, lstatSync, openSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { RestoreSetupError } from "./restore.ts";
import { inspectSqlite } from "./sqlite-inspect.ts";
import { COMPANIONS, type SqlitePin } from "./sqlite-path.ts";

/**
 * SQLite restores never write into the target file: the database is written to a temp file
 * beside it (same directory, so the rename is atomic on the same filesystem), fsynced,
 * checked with `PRAGMA integrity_check`, and only then renamed over the target. A failure or
 * cancel at any point removes the temp file; the target is the old file or the new one,
 * never half of each. Every step happens in the target's directory held open (a SqlitePin):
 * the daemon's own opens and the rename go through the descriptor, SQLite's through the
 * checked real path with NOFOLLOW.
 */

/** The temp file's name beside `name`: hidden, named after the restore, so recovery can find and remove it. */
const sqliteTempName = (name: string, restoreId: string) => `.${name}.snapdb-restore-${restoreId}.tmp`;

/** The temp file of one restore beside `target`. */
export const sqliteTempPath = (target: string, restoreId: string) => join(dirname(target), sqliteTempName(basename(target), restoreId));

export function removeSqliteTemp(tmp: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(tmp + suffix, { force: true });
}

/** The first 16 bytes of every SQLite database file. */
const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");

/**
 * Why a restore must not put a database at `real` (a resolved path, or a pinned one:
 * `pin.at()`), or null when it may: nothing is there yet and its directory exists, an empty
 * file, or a file that starts with SQLite's header. Anything else (a key, a config, a log)
 * is never replaced, clean or not.
 */
export function notReplaceable(real: string): string | null {
  let stat;
  try {
    stat = lstatSync(real);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") return `cannot be inspected (${code ?? "error"})`;
    try {
      return statSync(dirname(real)).isDirectory() ? null : "is in a path whose parent is not a directory";
    } catch {
      return "is in a directory that does not exist";
    }
  }
  if (!stat.isFile()) return "is not a regular file";
  if (stat.size === 0) return null;
  const head = Buffer.alloc(SQLITE_HEADER.length);
  let fd: number | null = null;
  try {
    // O_NOFOLLOW: a symlink swapped in since `real` was resolved is not read through.
    // O_NONBLOCK: nor does a FIFO swapped in block the daemon's thread in open().
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFile()) return "is not a regular file";
    readSync(fd, head, 0, head.length, 0);
  } catch (err) {
    return `cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`;
  } finally {
    if (fd !== null) closeSync(fd);
  }
  return head.equals(SQLITE_HEADER) ? null : "exists and is not a SQLite database (a restore never replaces another kind of file)";
}

/** Tables and views of a SQLite file (a checked real path); null when the file is missing, -1 when it is not a database. */
export async function sqliteUserObjects(path: string): Promise<number | null> {
  if (!existsSync(path)) return null;
  if (statSync(path).size === 0) return 0;
  // In a child (sqlite-inspect.ts): a FIFO swapped in would block the open, not the daemon.
  const r = await inspectSqlite(path, { objects: true }, { timeoutMs: INSPECT_TIMEOUT_MS }).catch(() => null);
  return r?.objects ?? -1;
}

/** How long opening and reading a schema, or a checkpoint, may take in the child. */
const INSPECT_TIMEOUT_MS = 60_000;
/** PRAGMA integrity_check reads the whole file: minutes for a large one. */
const INTEGRITY_TIMEOUT_MS = 6 * 3600_000;

async function integrityOf(path: string, signal: AbortSignal): Promise<string> {
  const r = await inspectSqlite(path, { integrity: true }, { timeoutMs: INTEGRITY_TIMEOUT_MS, signal }).catch((err: Error) => ({ integrity: err.message }));
  return r.integrity ?? "no answer";
}

/**
 * Writes `input` to a temp file in the pinned directory (backpressure: each chunk is written
 * before the next is read), fsyncs it, checks it, then `hooks.beforeRename()` (the caller's
 * last look at the target) and the atomic rename over `pin.name`. The temp file is removed
 * on any failure or cancel.
 */
export async function writeSqliteAtomically(
  input: ReadableStream<Uint8Array>,
  pin: SqlitePin,
  restoreId: string,
  signal: AbortSignal,
  hooks: { beforeRename(): void | Promise<void>; renamed(): void },
): Promise<void> {
  const tmpName = sqliteTempName(pin.name, restoreId);
  const tmp = pin.at(tmpName);
  const target = pin.at();
  // The old file's mode (a symlink's own is 0777: then the private default).
  const old = lexists(target) ? lstatSync(target) : null;
  const mode = old?.isFile() ? old.mode & 0o777 : 0o600;
  let renamed = false;
  try {
    // O_EXCL: never through a symlink someone put at the temp name.
    const fh = await open(tmp, "wx", mode);
    try {
      for await (const chunk of input) {
        if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
        await fh.write(chunk);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
    // Nothing has opened the temp file yet, so a -wal or -journal beside it is someone else's
    // (a link to another database's pages): SQLite would read it into the restored file.
    for (const suffix of COMPANIONS) {
      if (lexists(tmp + suffix)) throw new RestoreSetupError("RESTORE_FAILED", `a file the restore did not make lies beside its temp file (${tmpName}${suffix})`);
    }
    const integrity = await integrityOf(join(dirname(pin.real), tmpName), signal);
    if (integrity !== "ok") throw new RestoreSetupError("RESTORE_FAILED", `the restored file is not a sound SQLite database: ${integrity.slice(0, 500)}`);
    // Opening it may have left -wal/-shm beside the temp file; they must not follow it.
    for (const suffix of COMPANIONS) rmSync(tmp + suffix, { force: true });
    await hooks.beforeRename();
    if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
    // A WAL beside the old target would be replayed into the new file on the next open:
    // fold it into the old file first, then drop it once the new file is in place.
    if (lexists(`${target}-wal`)) await checkpoint(pin.real);
    // Both names in the held directory: the rename replaces the entry, never follows it.
    renameSync(tmp, target);
    renamed = true;
    hooks.renamed();
    for (const suffix of ["-wal", "-shm"]) rmSync(target + suffix, { force: true });
    fsyncSync(pin.dirFd);
  } finally {
    if (!renamed) removeSqliteTemp(tmp);
  }
}

function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

async function checkpoint(target: string): Promise<void> {
  const r = await inspectSqlite(target, { checkpoint: true }, { timeoutMs: INSPECT_TIMEOUT_MS }).catch((err: Error) => ({ error: err.message, checkpointed: false }));
  if (!r.checkpointed) throw new RestoreSetupError("RESTORE_FAILED", `could not checkpoint the target's WAL (is an application holding it?): ${r.error ?? "no answer"}`);
}
