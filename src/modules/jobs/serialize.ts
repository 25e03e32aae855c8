import { t } from "elysia";
import type { backupJobs } from "../../db/schema.ts";
import { isoOf } from "../../lib/clock.ts";

/** A backup job as the API shows it (docs/api.md); shared by every route that answers with jobs. */
export const BackupJob = t.Object(
  {
    id: t.String({ examples: ["job_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    dataSourceId: t.String(),
    policyId: t.Union([t.String(), t.Null()]),
    attachmentId: t.Union([t.String(), t.Null()]),
    destinationId: t.Union([t.String(), t.Null()]),
    trigger: t.Union([t.Literal("schedule"), t.Literal("manual")]),
    status: t.Union([t.Literal("queued"), t.Literal("running"), t.Literal("succeeded"), t.Literal("failed"), t.Literal("canceled")]),
    attempt: t.Integer(),
    queuedAt: t.String({ format: "date-time" }),
    startedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    finishedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    progress: t.Object({ bytesIn: t.Integer(), bytesStored: t.Integer() }),
    sizeBytes: t.Union([t.Integer(), t.Null()], { description: "Bytes the dump tool produced." }),
    storedBytes: t.Union([t.Integer(), t.Null()], { description: "Bytes of the stored object (after compression and encryption)." }),
    sha256: t.Union([t.String(), t.Null()], { description: "Hex sha256 of the stored object." }),
    objectKey: t.Union([t.String(), t.Null()]),
    format: t.Union([
      t.Object(
        { engine: t.String(), dump: t.String(), compression: t.String(), encrypted: t.Boolean() },
        { additionalProperties: true },
      ),
      t.Null(),
    ]),
    error: t.Union([t.Object({ code: t.String(), message: t.String() }), t.Null()]),
    fileDeletedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    physical: t.Union(
      [
        t.Object(
          {
            label: t.String({ description: "pg_basebackup's --label." }),
            timeline: t.Integer(),
            startLsn: t.String({ description: "The server's WAL position before the backup started (at or before the backup's own start)." }),
            stopLsn: t.String({ description: "The server's WAL position once it had finished (at or after the backup's own end)." }),
            startWalFile: t.String(),
            stopWalFile: t.String(),
            startedAt: t.String({ format: "date-time" }),
            stoppedAt: t.String({ format: "date-time", description: "The earliest instant a point-in-time restore from this base backup can reach." }),
          },
          { additionalProperties: true },
        ),
        t.Null(),
      ],
      { description: "Base backups of a physical policy: the WAL range a restore from it needs. Null for dumps." },
    ),
  },
  { $id: "#/components/schemas/BackupJob", title: "BackupJob" },
);

type JobRow = typeof backupJobs.$inferSelect;
type JobFormat = { engine: string; dump: string; compression: string; encrypted: boolean };

const isoOrNull = (ms: number | null) => (ms === null ? null : isoOf(ms));

type PhysicalView = { label: string; timeline: number; startLsn: string; stopLsn: string; startWalFile: string; stopWalFile: string; startedAt: string; stoppedAt: string };

function physicalOf(value: Record<string, unknown> | null): PhysicalView | null {
  if (!value) return null;
  const { label, timeline, startLsn, stopLsn, startWalFile, stopWalFile, startedAt, stoppedAt } = value as PhysicalView;
  return { label, timeline, startLsn, stopLsn, startWalFile, stopWalFile, startedAt, stoppedAt };
}

/** The API shape of one `backup_jobs` row. Live progress of a running job is the row's byte counters. */
export function toBackupJob(row: JobRow) {
  return {
    id: row.id,
    dataSourceId: row.dataSourceId,
    policyId: row.policyId,
    attachmentId: row.attachmentId,
    destinationId: row.destinationId,
    trigger: row.trigger,
    status: row.status,
    attempt: row.attempt,
    queuedAt: isoOf(row.queuedAt),
    startedAt: isoOrNull(row.startedAt),
    finishedAt: isoOrNull(row.finishedAt),
    progress: { bytesIn: row.bytesIn, bytesStored: row.bytesStored },
    sizeBytes: row.sizeBytes,
    storedBytes: row.storedBytes,
    sha256: row.sha256,
    objectKey: row.objectKey,
    format: (row.format as JobFormat | null) ?? null,
    error: row.error ?? null,
    fileDeletedAt: isoOrNull(row.fileDeletedAt),
    physical: physicalOf(row.physical),
  };
}
