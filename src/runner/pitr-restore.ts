import { appendFileSync, chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { and, eq, isNull } from "drizzle-orm";
import type { Config } from "../config/schema.ts";
import { orgIdentity } from "../crypto/org-keys.ts";
import { walSegments } from "../db/schema.ts";
import { findTool } from "../engines/process.ts";
import { RestoreSetupError } from "../engines/restore.ts";
import { toolInput } from "../engines/tool-stream.ts";
import { checkRestoreDirectory, type RestoreDirectoryPolicy } from "../lib/restore-directory.ts";
import { planPointInTime, recoveryWindowOf, type RecoveryWindow } from "./recovery-window.ts";
import type { RestoreDeps, RestoreProgress, RestoreRow } from "./restore.ts";
import { restoreCommandFor, type WalFetchInvocation } from "./wal-fetch-command.ts";
import { fetchWalFile, identityOnce, plainStream, type ReadDeps, type StoredFile } from "./wal-file.ts";

/** The WAL a restore needs, copied into the data directory: restore_command reads it there. */
export const WAL_ARCHIVE_DIR = "pg_wal_archive";

export function restoreDirectoryPolicy(config: Config): RestoreDirectoryPolicy {
  const reservedDirs = [config.dataDir, ...config.storage.allowedLocalRoots];
  if (config.managedStorage.type === "local") reservedDirs.push(config.managedStorage.path);
  return { roots: config.storage.allowedRestoreRoots, reservedDirs };
}

export const windowText = (w: RecoveryWindow | null) =>
  w ? `the recovery window is ${new Date(w.from).toISOString()} to ${new Date(w.to).toISOString()}` : "there is no recovery window yet (no base backup with its WAL archived)";

/** How far a point-in-time restore got: what a failure leaves (nothing: it cleans up). */
export interface PitrState {
  directory: string | null;
  /** Whether the restore made the directory (else it was there, empty). */
  created: boolean;
}

export function pitrStateNote(state: PitrState): string {
  if (!state.directory) return "the target directory was not touched";
  return state.created ? `the directory ${state.directory} that the restore had created was removed` : `the directory ${state.directory} was emptied again`;
}

/** `2026-11-26 10:00:00.123+00`: what recovery_target_time parses (it refuses the ISO `T…Z` form). */
export const pgTimestamp = (ms: number) => `${new Date(ms).toISOString().replace("T", " ").replace("Z", "")}+00`;

/** A GUC value in postgresql.auto.conf: single-quoted, `'` doubled. */
const gucValue = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * A point-in-time restore: builds a PostgreSQL data directory at `targetDirectory` that
 * recovers to `targetTime` on its first start and is promoted there. The newest base backup
 * that ended at or before the target is unpacked (`tar -x`, the stored file decrypted and
 * decompressed on the way) and postgresql.auto.conf gets a restore_command, the target and
 * `recovery_target_action = 'promote'` (unless the target is at or after the last archived
 * transaction: then all of the WAL is replayed), `archive_mode = 'off'`, plus `recovery.signal`. The WAL reaches PostgreSQL
 * one of two ways (the restore's `walDelivery`):
 * - `copy` (the default): the WAL the recovery needs is copied, plain, into
 *   `pg_wal_archive/` inside the directory, and `restore_command = 'cp pg_wal_archive/%f %p'`
 *   (run with the data directory as working directory). PostgreSQL, running as its own OS
 *   user, needs nothing of snapdb's.
 * - `fetch`: nothing is copied; restore_command runs `snapdb wal-fetch` (this binary, the
 *   daemon's config), which reads each file from the archive as PostgreSQL asks for it. That
 *   user must be able to read snapdb's config, store and master key.
 * A failure removes what it wrote.
 */
export async function runPointInTimeRestore(
  deps: RestoreDeps & { restoreDirs: RestoreDirectoryPolicy; walFetch: WalFetchInvocation },
  row: RestoreRow,
  signal: AbortSignal,
  progress: RestoreProgress,
  state: PitrState,
): Promise<void> {
  const targetTime = row.targetTime!;
  const window = await recoveryWindowOf(deps.db, row.sourceDataSourceId);
  const plan = window ? planPointInTime(window, targetTime) : null;
  if (!plan) throw new RestoreSetupError("OUTSIDE_WINDOW", `${new Date(targetTime).toISOString()} is no longer reachable: ${windowText(window)}`);
  const check = checkRestoreDirectory(row.targetDirectory!, deps.restoreDirs);
  if (!check.ok) throw new RestoreSetupError(/not empty/.test(check.reason) ? "TARGET_NOT_EMPTY" : "PATH_NOT_ALLOWED", check.reason);
  const tar = findTool("tar", deps.dumpEnv.toolPath);
  if (!tar) throw new RestoreSetupError("RESTORE_TOOL_MISSING", "tar is not on the daemon's PATH");
  const job = plan.backup.job;
  const read: ReadDeps = {
    db: deps.db,
    storage: deps.storage,
    toolPath: deps.dumpEnv.toolPath,
    identity: identityOnce(() => orgIdentity(deps.db, deps.secrets, row.orgId)),
  };

  const dir = check.real;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  state.directory = dir;
  state.created = !check.exists;
  // PostgreSQL refuses a data directory others may read.
  chmodSync(dir, 0o700);

  const base = await plainStream(
    read,
    job.destinationId,
    { objectKey: job.objectKey!, sha256: job.sha256, storedBytes: job.storedBytes, format: (job.format ?? {}) as StoredFile["format"] },
    signal,
    progress,
  );
  // --no-same-owner: the files belong to the daemon's user, whoever owned them on the source.
  await toolInput([tar, "-x", "-f", "-", "-C", dir, "--no-same-owner"], base, { toolPath: deps.dumpEnv.toolPath, signal });

  let restoreCommand: string;
  if (row.walDelivery === "fetch") {
    // PostgreSQL asks snapdb for each file as it needs it: nothing is copied.
    restoreCommand = restoreCommandFor(deps.walFetch, row.sourceDataSourceId, plan.segments.at(-1)?.name ?? null);
  } else {
    const archive = join(dir, WAL_ARCHIVE_DIR);
    mkdirSync(archive, { recursive: true, mode: 0o700 });
    const histories = await deps.db
      .select()
      .from(walSegments)
      .where(and(eq(walSegments.dataSourceId, row.sourceDataSourceId), isNull(walSegments.segno)));
    for (const segment of [...histories, ...plan.segments]) {
      if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
      await fetchWalFile(read, segment, join(archive, segment.name), signal, progress);
    }
    restoreCommand = `cp ${WAL_ARCHIVE_DIR}/%f %p`;
  }

  const lines = [
    "",
    `# snapdb point-in-time restore ${row.id}: recover from the base backup ${job.id} to ${new Date(targetTime).toISOString()}`,
    `restore_command = ${gucValue(restoreCommand)}`,
    // The source's own archive_mode/archive_command came along in the base backup: a promoted
    // copy must not push its WAL (a new timeline) into the source's archive.
    "archive_mode = 'off'",
  ];
  if (plan.untilEnd) lines.push(`# ${new Date(targetTime).toISOString()} is at or after the last archived transaction: all of the archived WAL is replayed`);
  else lines.push(`recovery_target_time = ${gucValue(pgTimestamp(targetTime))}`, "recovery_target_action = 'promote'");
  appendFileSync(join(dir, "postgresql.auto.conf"), `${lines.join("\n")}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "recovery.signal"), "", { mode: 0o600 });
}

/** Removes what a failed restore wrote: the directory it made, or the contents of the empty one it was given. */
export function cleanUpPointInTime(state: PitrState): void {
  if (!state.directory) return;
  if (state.created) rmSync(state.directory, { recursive: true, force: true });
  else for (const name of readdirSync(state.directory)) rmSync(join(state.directory, name), { recursive: true, force: true });
}
