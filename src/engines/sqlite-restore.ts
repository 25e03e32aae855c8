import { Database } from "bun:sqlite";
import { existsSync, rmSync, statSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { RestoreSetupError } from "./restore.ts";

/**
 * SQLite restores never write into the target file: the database is written to a temp file
 * beside it (same directory, so the rename is atomic on the same filesystem), fsynced,
 * checked with `PRAGMA integrity_check`, and only then renamed over the target. A failure or
 * cancel at any point removes the temp file; the target is the old file or the new one,
 * never half of each.
 */

/** The temp file of one restore: hidden, named after it, so recovery can find and remove it. */
export const sqliteTempPath = (target: string, restoreId: string) => join(dirname(target), `.${basename(target)}.snapdb-restore-${restoreId}.tmp`);

export function removeSqliteTemp(tmp: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(tmp + suffix, { force: true });
}

/** Tables and views of a SQLite file; null when the file is missing, -1 when it is not a database. */
export function sqliteUserObjects(path: string): number | null {
  if (!existsSync(path)) return null;
  if (statSync(path).size === 0) return 0;
  let db: Database | null = null;
  try {
    db = new Database(path, { readonly: true });
    const row = db.query("SELECT count(*) AS n FROM sqlite_master WHERE type IN ('table','view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").get() as { n: number };
    return row.n;
  } catch {
    return -1;
  } finally {
    db?.close();
  }
}

function integrityOf(path: string): string {
  let db: Database | null = null;
  try {
    db = new Database(path);
    const rows = db.query("PRAGMA integrity_check").all() as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join("; ");
  } catch (err) {
    return (err as Error).message;
  } finally {
    db?.close();
  }
}

/**
 * Writes `input` to `tmp` (backpressure: each chunk is written before the next is read),
 * fsyncs it, checks it, then `hooks.beforeRename()` (the caller's last look at the target) and the
 * atomic rename.
 */
export async function writeSqliteAtomically(
  input: ReadableStream<Uint8Array>,
  target: string,
  tmp: string,
  signal: AbortSignal,
  hooks: { beforeRename(): void; renamed(): void },
): Promise<void> {
  const mode = existsSync(target) ? statSync(target).mode & 0o777 : 0o600;
  let renamed = false;
  try {
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
    const integrity = integrityOf(tmp);
    if (integrity !== "ok") throw new RestoreSetupError("RESTORE_FAILED", `the restored file is not a sound SQLite database: ${integrity.slice(0, 500)}`);
    // Opening it may have left -wal/-shm beside the temp file; they must not follow it.
    for (const suffix of ["-wal", "-shm", "-journal"]) rmSync(tmp + suffix, { force: true });
    hooks.beforeRename();
    if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
    // A WAL beside the old target would be replayed into the new file on the next open:
    // fold it into the old file first, then drop it once the new file is in place.
    if (existsSync(`${target}-wal`)) checkpoint(target);
    await rename(tmp, target);
    renamed = true;
    hooks.renamed();
    for (const suffix of ["-wal", "-shm"]) rmSync(target + suffix, { force: true });
    await fsyncDir(dirname(target));
  } finally {
    if (!renamed) removeSqliteTemp(tmp);
  }
}

function checkpoint(target: string): void {
  let db: Database | null = null;
  try {
    db = new Database(target);
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (err) {
    throw new RestoreSetupError("RESTORE_FAILED", `could not checkpoint the target's WAL (is an application holding it?): ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
