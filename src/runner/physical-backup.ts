import type { DumpCommand } from "../engines/dump.ts";
import { ProbeError, classifyConnectError } from "../engines/network.ts";
import { recordAudit } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { baseBackupCommand, ensureReservedSlot, slotNameOf, walPosition, type SlotCheck, type WalPosition } from "../engines/physical.ts";
import type { SourceTarget } from "../engines/types.ts";
import { formatLsn, parseLsn, segmentName, segnoOf } from "../engines/wal-names.ts";
import { nowMs } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { redactSecret } from "../lib/redact.ts";
import type { BackupLabel } from "./backup-label.ts";
import { COMPRESSION_EXT, type Compression } from "./compression.ts";
import { JobSetupError } from "./job-error.ts";
import { WAL_ARCHIVER_ACTOR } from "./wal-upload.ts";

/** The first layer of a base backup's file: a tar (`.tar.zst.age`), what `tar -x` reads. */
export const PHYSICAL_DUMP = "pg_basebackup_tar";

export function physicalFormatOf(compression: Compression, encrypted: boolean) {
  const ext = `tar${COMPRESSION_EXT[compression.algorithm]}${encrypted ? ".age" : ""}`;
  return { engine: "postgres", dump: PHYSICAL_DUMP, compression: compression.algorithm, encrypted, ext };
}

/**
 * What a base backup job records (`backup_jobs.physical`): the WAL a restore from it needs
 * and when it became consistent. `startLsn` is the backup's own start, its backup_label's
 * `START WAL LOCATION` (the redo point of the backup's checkpoint, read back from the stored
 * file, see backup-label.ts; the server's position before pg_basebackup started when that
 * read failed, a bound at or before it). `stopLsn` is the server's position once the tool had
 * finished: at or after the backup's end (pg_basebackup reports its end point only when it
 * fetches WAL itself, which `-X none` does not), and the server switches segments at the end
 * of a backup, so the segment before it holds the end. So the WAL from `startSegno` through
 * `stopSegno` is all a restore can need to reach consistency, and `stoppedAt` (the daemon's
 * clock when the tool exited) is the earliest instant a restore from it can target.
 */
export interface PhysicalInfo {
  label: string;
  slot: string;
  timeline: number;
  walSegmentSize: number;
  startLsn: string;
  stopLsn: string;
  startSegno: number;
  stopSegno: number;
  startWalFile: string;
  stopWalFile: string;
  startedAt: string;
  stoppedAt: string;
  /** From the backup_label: the backup's checkpoint; null when it could not be read. */
  checkpointLsn?: string | null;
  /** The backup_label's text as PostgreSQL wrote it; null when it could not be read. */
  backupLabel?: string | null;
}

/** The job's WAL range with the backup's own start, from its backup_label. */
export function withBackupLabel(info: PhysicalInfo, label: BackupLabel | null): PhysicalInfo {
  const start = label ? parseLsn(label.startLsn) : null;
  if (!label || start === null) return { ...info, checkpointLsn: null, backupLabel: null };
  const startSegno = segnoOf(start, info.walSegmentSize);
  return {
    ...info,
    timeline: label.timeline,
    startLsn: label.startLsn,
    startSegno,
    startWalFile: segmentName(label.timeline, startSegno, info.walSegmentSize),
    stopSegno: Math.max(info.stopSegno, startSegno),
    checkpointLsn: label.checkpointLsn,
    backupLabel: label.text,
  };
}

/** Reads a job row's `physical` column back (null for a dump, or a row written otherwise). */
export function physicalInfoOf(value: unknown): PhysicalInfo | null {
  const v = value as Partial<PhysicalInfo> | null;
  if (!v || typeof v.startSegno !== "number" || typeof v.stopSegno !== "number" || typeof v.stoppedAt !== "string") return null;
  return v as PhysicalInfo;
}

/**
 * Makes sure the source's replication slot exists before the base backup starts: from then
 * on the server keeps every WAL segment the backup will need until the archiver has it, even
 * when the archiver is not running yet (the policy was attached a moment ago) or is down.
 * Returns why the slot had to be made again (its reservation was gone), or null.
 */
export async function ensureSlot(target: SourceTarget, slot: string): Promise<string | null> {
  let check: SlotCheck;
  try {
    check = await ensureReservedSlot(target, slot);
  } catch (err) {
    throw serverFailure(err, target, `creating the replication slot ${slot}`);
  }
  if (!check.recreated) return null;
  return `the replication slot had lost its WAL reservation (wal_status ${check.walStatus ?? "null"}): the server removed WAL the archive did not have yet; the slot was made again at the server's current position`;
}

/**
 * The slot was made again (or dropped and made again after pg_receivewal found its WAL
 * gone): the archive will have a gap. Said once, in the audit log and the daemon's log; the
 * gap itself is recorded when the next segment is archived.
 */
export async function recordSlotReset(db: Db, logger: Logger | undefined, at: { orgId: string; dataSourceId: string; slot: string; reason: string }): Promise<void> {
  const { orgId, dataSourceId, slot, reason } = at;
  await db.transaction(async (tx) =>
    recordAudit(
      tx,
      { orgId, actor: WAL_ARCHIVER_ACTOR, requestId: null, ip: null },
      {
        action: "wal_archive.slot_reset",
        targetType: "data_source",
        targetId: dataSourceId,
        metadata: { slot, reason: reason.slice(0, 500) },
      },
    ),
  );
  logger?.error("the source no longer has WAL the archive needs; the replication slot was made again and the archive has a gap", { dataSourceId, slot, reason: reason.slice(0, 500) });
}

/**
 * A failed query on the source as a job error: not reaching or not logging in keeps its own
 * code (CONNECTION_REFUSED, AUTH_FAILED, …); an error of the query itself is DUMP_FAILED.
 * The password never appears in the message.
 */
function serverFailure(err: unknown, target: SourceTarget, what: string): Error {
  const errno = (err as { errno?: string }).errno;
  // No `cause`: the failure is logged with its cause chain, and the client's own message may hold
  // the password (classifyConnectError masks it in the message it returns).
  if (!errno || ["28P01", "28000", "3D000"].includes(errno)) return new ProbeError(classifyConnectError(err, target));
  const message = redactSecret(err instanceof Error ? err.message : String(err), target.credentials?.password);
  const hint = errno === "42501" ? " (the role needs the REPLICATION attribute)" : "";
  return new JobSetupError("DUMP_FAILED", `${what} failed${hint}: ${message}`);
}

export interface PhysicalRun {
  command: DumpCommand;
  /** Why the slot was made again before the backup (its reservation was gone), or null. */
  slotReset: string | null;
  /** After the tool exited 0: the recorded WAL range. */
  finish(): Promise<PhysicalInfo>;
}

async function positionOf(target: SourceTarget, when: string): Promise<WalPosition> {
  try {
    return await walPosition(target);
  } catch (err) {
    throw serverFailure(err, target, `reading the server's WAL position ${when} the base backup`);
  }
}

/** Slot, position before, the pg_basebackup command; `finish` reads the position after. */
export async function preparePhysicalBackup(target: SourceTarget, toolPath: string, ids: { dataSourceId: string; jobId: string }, fastCheckpoint: boolean, signal?: AbortSignal): Promise<PhysicalRun> {
  if (target.engine !== "postgres") throw new JobSetupError("INVALID_POLICY", `a physical policy backs up PostgreSQL only; this data source is ${target.engine}`);
  const slot = slotNameOf(ids.dataSourceId);
  if (signal?.aborted) throw new JobSetupError("CANCELED", "canceled before pg_basebackup started");
  const slotReset = await ensureSlot(target, slot);
  const before = await positionOf(target, "before");
  const startedAt = nowMs();
  const label = `snapdb ${ids.jobId}`;
  const command = baseBackupCommand(target, toolPath, { fastCheckpoint, label });
  return {
    command,
    slotReset,
    async finish() {
      const stoppedAt = nowMs();
      const after = await positionOf(target, "after");
      const size = before.segmentSize;
      const startSegno = segnoOf(before.position, size);
      // The segment holding the last byte before `after`: the backup switched segments at its
      // end, so `after` usually sits at the very start of a segment that holds nothing yet.
      const stopSegno = segnoOf(Math.max(after.position - 1, before.position), size);
      return {
        label,
        slot,
        timeline: after.timeline,
        walSegmentSize: size,
        startLsn: formatLsn(before.position),
        stopLsn: formatLsn(after.position),
        startSegno,
        stopSegno,
        startWalFile: segmentName(before.timeline, startSegno, size),
        stopWalFile: segmentName(after.timeline, stopSegno, size),
        startedAt: new Date(startedAt).toISOString(),
        stoppedAt: new Date(stoppedAt).toISOString(),
      };
    },
  };
}
