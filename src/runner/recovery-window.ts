import { and, asc, eq, isNotNull, isNull } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { backupJobs, walSegments } from "../db/schema.ts";
import type { JobRow } from "./backup.ts";
import { type PhysicalInfo, physicalInfoOf } from "./physical-backup.ts";

type SegmentRow = typeof walSegments.$inferSelect;

export interface BaseBackup {
  job: JobRow;
  info: PhysicalInfo;
  /** The earliest instant a restore from it can reach (ms): when pg_basebackup finished. */
  stoppedAt: number;
}

/**
 * The instants a point-in-time restore can reach, from what is archived:
 *
 * - `from`: the end of the oldest base backup that the unbroken WAL run ending at `endSegno`
 *   starts at or before. Earlier, the database was not yet consistent in any backup.
 * - `to`: the end time of the last transaction in that run, rounded up to the millisecond.
 *   PostgreSQL stops a time-targeted recovery before the first transaction that ended after
 *   the target, so every instant before the last archived transaction is reached exactly;
 *   at `to` itself the restore replays the whole run. WAL still in the server's current
 *   segment (not finished, so not archived) is not in the window. When no transaction
 *   ended since the backup, `to` is `from`.
 *
 * The run stops at the first missing segment (a gap): instants after it are unreachable
 * until a base backup is taken after the gap.
 */
export interface RecoveryWindow {
  from: number;
  to: number;
  /** The newest archived transaction end in the run (µs since the epoch), if any. */
  lastXactAtUs: number | null;
  endSegno: number;
  /** Base backups whose WAL reaches `endSegno` unbroken, oldest first. */
  backups: BaseBackup[];
  segments: SegmentRow[];
}

export async function baseBackupsOf(db: Db, dataSourceId: string): Promise<BaseBackup[]> {
  const jobs = await db
    .select()
    .from(backupJobs)
    .where(and(eq(backupJobs.dataSourceId, dataSourceId), eq(backupJobs.status, "succeeded"), isNull(backupJobs.fileDeletedAt), isNotNull(backupJobs.physical)));
  const out: BaseBackup[] = [];
  for (const job of jobs) {
    const info = physicalInfoOf(job.physical);
    if (info && job.objectKey) out.push({ job, info, stoppedAt: Date.parse(info.stoppedAt) });
  }
  return out.sort((a, b) => a.stoppedAt - b.stoppedAt);
}

/** The archived WAL segments of a source, by segment number (timeline history files left out). */
export async function segmentsOf(db: Db, dataSourceId: string): Promise<SegmentRow[]> {
  return await db
    .select()
    .from(walSegments)
    .where(and(eq(walSegments.dataSourceId, dataSourceId), isNotNull(walSegments.segno)))
    .orderBy(asc(walSegments.segno), asc(walSegments.timeline));
}

/** The last segment number of the unbroken run that starts at `start`, or null when `start` is missing. */
function runEnd(present: Set<number>, start: number): number | null {
  if (!present.has(start)) return null;
  let n = start;
  while (present.has(n + 1)) n++;
  return n;
}

export async function recoveryWindowOf(db: Db, dataSourceId: string): Promise<RecoveryWindow | null> {
  const backups = await baseBackupsOf(db, dataSourceId);
  if (!backups.length) return null;
  const segments = await segmentsOf(db, dataSourceId);
  const present = new Set(segments.map((s) => s.segno!));
  const usable = backups.map((b) => ({ b, end: runEnd(present, b.info.startSegno) })).filter((u): u is { b: BaseBackup; end: number } => u.end !== null && u.end >= u.b.info.stopSegno);
  if (!usable.length) return null;
  const endSegno = usable[usable.length - 1]!.end;
  const reaching = usable.filter((u) => u.end === endSegno).map((u) => u.b);
  const startSegno = Math.min(...reaching.map((b) => b.info.startSegno));
  const run = segments.filter((s) => s.segno! >= startSegno && s.segno! <= endSegno);
  let lastXactAtUs: number | null = null;
  for (const s of run) if (s.lastXactAtUs !== null && (lastXactAtUs === null || s.lastXactAtUs > lastXactAtUs)) lastXactAtUs = s.lastXactAtUs;
  const from = reaching[0]!.stoppedAt;
  const lastXactMs = lastXactAtUs === null ? null : Math.ceil(lastXactAtUs / 1000);
  return { from, to: lastXactMs === null ? from : Math.max(from, lastXactMs), lastXactAtUs, endSegno, backups: reaching, segments: run };
}

/**
 * What a restore to `targetTime` (ms) needs: the newest base backup that ended at or before
 * it, and the archived segments from that backup's start through the first one holding a
 * transaction that ended after the target (where recovery stops), or through the run's
 * end when the target is at or after the last archived transaction (`untilEnd`: recover
 * all of it, no target time). Null when the target is outside the window.
 */
export interface PointInTimePlan {
  window: RecoveryWindow;
  backup: BaseBackup;
  segments: SegmentRow[];
  untilEnd: boolean;
}

export function planPointInTime(window: RecoveryWindow, targetTime: number): PointInTimePlan | null {
  if (targetTime < window.from || targetTime > window.to) return null;
  const backup = window.backups.filter((b) => b.stoppedAt <= targetTime).at(-1);
  if (!backup) return null;
  const targetUs = targetTime * 1000;
  const untilEnd = window.lastXactAtUs === null || targetUs >= window.lastXactAtUs;
  let last = window.endSegno;
  if (!untilEnd) {
    const stopAt = window.segments.find((s) => s.segno! >= backup.info.startSegno && s.lastXactAtUs !== null && s.lastXactAtUs > targetUs);
    if (stopAt) last = Math.max(stopAt.segno!, backup.info.stopSegno);
  }
  const segments = window.segments.filter((s) => s.segno! >= backup.info.startSegno && s.segno! <= last);
  return { window, backup, segments, untilEnd };
}
