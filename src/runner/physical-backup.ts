import type { DumpCommand } from "../engines/dump.ts";
import { ProbeError, classifyConnectError } from "../engines/network.ts";
import { baseBackupCommand, ensureReservedSlot, slotNameOf, walPosition, type WalPosition } from "../engines/physical.ts";
import type { SourceTarget } from "../engines/types.ts";
import { formatLsn, segmentName, segnoOf } from "../engines/wal-names.ts";
import { nowMs } from "../lib/clock.ts";
import { redactSecret } from "../lib/redact.ts";
import { COMPRESSION_EXT, type Compression } from "./compression.ts";
import { JobSetupError } from "./job-error.ts";

/** The first layer of a base backup's file: a tar (`.tar.zst.age`), what `tar -x` reads. */
export const PHYSICAL_DUMP = "pg_basebackup_tar";

export function physicalFormatOf(compression: Compression, encrypted: boolean) {
  const ext = `tar${COMPRESSION_EXT[compression.algorithm]}${encrypted ? ".age" : ""}`;
  return { engine: "postgres", dump: PHYSICAL_DUMP, compression: compression.algorithm, encrypted, ext };
}

/**
 * What a base backup job records (`backup_jobs.physical`): the WAL a restore from it needs
 * and when it became consistent. The LSNs are bounds read from the server around the tool:
 * `startLsn` the position before pg_basebackup started (at or before the backup's own start,
 * its checkpoint's redo point), `stopLsn` the position once it had finished (at or after the
 * backup's end). So the WAL from `startSegno` through `stopSegno` is all a restore can need
 * to reach consistency, and `stoppedAt` (the daemon's clock when the tool exited) is the
 * earliest instant a restore from it can target.
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
 */
export async function ensureSlot(target: SourceTarget, slot: string): Promise<void> {
  try {
    await ensureReservedSlot(target, slot);
  } catch (err) {
    throw serverFailure(err, target, `creating the replication slot ${slot}`);
  }
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
export async function preparePhysicalBackup(
  target: SourceTarget,
  toolPath: string,
  ids: { dataSourceId: string; jobId: string },
  fastCheckpoint: boolean,
  signal?: AbortSignal,
): Promise<PhysicalRun> {
  if (target.engine !== "postgres") throw new JobSetupError("INVALID_POLICY", `a physical policy backs up PostgreSQL only; this data source is ${target.engine}`);
  const slot = slotNameOf(ids.dataSourceId);
  if (signal?.aborted) throw new JobSetupError("CANCELED", "canceled before pg_basebackup started");
  await ensureSlot(target, slot);
  const before = await positionOf(target, "before");
  const startedAt = nowMs();
  const label = `snapdb ${ids.jobId}`;
  const command = baseBackupCommand(target, toolPath, { fastCheckpoint, label });
  return {
    command,
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
