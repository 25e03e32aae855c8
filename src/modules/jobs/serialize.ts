import { t } from "elysia";
import { Int } from "../../http/json-int.ts";
import { oneOf } from "../../http/one-of.ts";
import type { backupJobs } from "../../db/schema.ts";
import type { DumpFormat } from "../../engines/dump.ts";
import type { EngineName } from "../../engines/types.ts";
import { isoOf } from "../../lib/clock.ts";
import type { CompressionAlgorithm } from "../../runner/compression.ts";
import { JOB_ERROR_CODES } from "../../lib/failure-codes.ts";

/** One file of a whole-server backup job. */
export const BackupPart = t.Object(
  {
    name: t.String({ description: "The database's name, or `:globals` for the server's roles/users and grants." }),
    kind: t.Union([t.Literal("globals"), t.Literal("database")]),
    objectKey: t.Union([t.String(), t.Null()], { description: "Where the file is; null for a database skipped because it was dropped while the job ran (see `note`)." }),
    sizeBytes: t.Union([Int(), t.Null()], { description: "Bytes the dump tool produced; null until the part is stored." }),
    storedBytes: t.Union([Int(), t.Null()], { description: "Bytes of the stored file (after compression and encryption)." }),
    sha256: t.Union([t.String(), t.Null()], { description: "Hex sha256 of the stored file." }),
    note: t.Optional(t.String()),
    charset: t.Optional(
      t.Union([t.String(), t.Null()], {
        description:
          "MySQL/MariaDB database parts: the database's default character set when it was backed up. Its dump holds no CREATE DATABASE: a restore (snapdb's, or one by hand) creates the database with this and `collation`. Absent for PostgreSQL, whose archive carries its database's own.",
      }),
    ),
    collation: t.Optional(t.Union([t.String(), t.Null()], { description: "MySQL/MariaDB database parts: the database's default collation when it was backed up (see `charset`)." })),
  },
  { $id: "#/components/schemas/BackupPart", title: "BackupPart" },
);

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
    attempt: Int(),
    nodeId: t.Union([t.String(), t.Null()], {
      description: "The fleet node (`GET /nodes`) that claimed the job's latest attempt; null until one has.",
    }),
    queuedAt: t.String({ format: "date-time" }),
    startedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    finishedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    progress: t.Object({ bytesIn: Int(), bytesStored: Int() }),
    sizeBytes: t.Union([Int(), t.Null()], { description: "Bytes the dump tool produced." }),
    storedBytes: t.Union([Int(), t.Null()], { description: "Bytes of the stored object (after compression and encryption)." }),
    sha256: t.Union([t.String(), t.Null()], { description: "Hex sha256 of the stored object." }),
    objectKey: t.Union([t.String(), t.Null()]),
    format: t.Union([
      t.Object(
        {
          engine: oneOf(["postgres", "mysql", "mariadb", "sqlite"]),
          dump: oneOf(["pg_custom", "sql", "sqlite", "pg_basebackup_tar"], {
            description: "pg_dump's custom format, SQL text (mysqldump, mariadb-dump), a SQLite database file, or a PostgreSQL base backup (pg_basebackup's tar, physical policies).",
          }),
          compression: oneOf(["zstd", "gzip", "none"]),
          encrypted: t.Boolean(),
          ext: t.Optional(t.String({ description: "The stored file's extension, e.g. `dump.zst.age`." })),
        },
        { additionalProperties: true },
      ),
      t.Null(),
    ]),
    error: t.Union([t.Object({ code: oneOf(JOB_ERROR_CODES), message: t.String() }), t.Null()], {
      description: "Why the job failed or was canceled; kept from the last failed attempt while a retry is queued.",
    }),
    fileDeletedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    parts: t.Union([t.Array(BackupPart), t.Null()], {
      description:
        'A whole-server backup (`database: "*"`): one file per database and one for the globals, listed as soon as the job has found the databases, each with its figures once stored. ' +
        "Such a job's `objectKey` is the folder of its parts (ending in `/`), `sizeBytes`/`storedBytes` their sums, and `sha256` null. A failed job's parts say how far it got; none of their files is kept. Null for one-file backups.",
    }),
    fingerprint: t.Union(
      [
        t.Object({
          tables: t.Record(t.String(), Int(), { description: "Rows per table (`schema.table` for PostgreSQL) in the dump's snapshot." }),
          takenAt: t.String({ format: "date-time" }),
        }),
        t.Null(),
      ],
      { description: "Row counts recorded with the dump when the policy has `fingerprint: true`; restore drills compare a restore with them." },
    ),
    physical: t.Union(
      [
        t.Object(
          {
            label: t.String({ description: "pg_basebackup's --label." }),
            timeline: Int(),
            startLsn: t.String({
              description:
                "Where recovery from the backup starts: its backup_label's START WAL LOCATION (the redo point of its checkpoint). If the label could not be read back, the server's WAL position before the backup started (at or before it).",
            }),
            stopLsn: t.String({
              description: "The server's WAL position once the backup had finished (at or after the backup's own end: pg_basebackup -X none does not report its end point).",
            }),
            checkpointLsn: t.Union([t.String(), t.Null()], { description: "The backup's checkpoint (backup_label's CHECKPOINT LOCATION); null if the label could not be read back." }),
            backupLabel: t.Union([t.String(), t.Null()], {
              description: "The backup_label file PostgreSQL wrote into the backup (START WAL LOCATION, CHECKPOINT LOCATION, START TIME, LABEL, START TIMELINE, …); null if it could not be read back.",
            }),
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
type JobFormat = { engine: EngineName; dump: DumpFormat | "pg_basebackup_tar"; compression: CompressionAlgorithm; encrypted: boolean; ext?: string };

const isoOrNull = (ms: number | null) => (ms === null ? null : isoOf(ms));

type PhysicalView = {
  label: string;
  timeline: number;
  startLsn: string;
  stopLsn: string;
  checkpointLsn: string | null;
  backupLabel: string | null;
  startWalFile: string;
  stopWalFile: string;
  startedAt: string;
  stoppedAt: string;
};

function physicalOf(value: Record<string, unknown> | null): PhysicalView | null {
  if (!value) return null;
  const { label, timeline, startLsn, stopLsn, checkpointLsn, backupLabel, startWalFile, stopWalFile, startedAt, stoppedAt } = value as Partial<PhysicalView>;
  return {
    label: label!,
    timeline: timeline!,
    startLsn: startLsn!,
    stopLsn: stopLsn!,
    // Jobs recorded before the backup_label was read back have neither.
    checkpointLsn: checkpointLsn ?? null,
    backupLabel: backupLabel ?? null,
    startWalFile: startWalFile!,
    stopWalFile: stopWalFile!,
    startedAt: startedAt!,
    stoppedAt: stoppedAt!,
  };
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
    nodeId: row.nodeId,
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
    fingerprint: row.fingerprint ? { tables: row.fingerprint.tables, takenAt: isoOf(row.fingerprint.takenAt) } : null,
    parts: row.parts ? row.parts.map(toBackupPart) : null,
  };
}

/** Field by field; a MySQL/MariaDB database's charset and collation are shown, as a restore by hand needs them. */
function toBackupPart(p: NonNullable<JobRow["parts"]>[number]) {
  return {
    name: p.name,
    kind: p.kind,
    objectKey: p.objectKey,
    sizeBytes: p.sizeBytes,
    storedBytes: p.storedBytes,
    sha256: p.sha256,
    ...(p.note ? { note: p.note } : {}),
    ...(p.charset !== undefined ? { charset: p.charset, collation: p.collation ?? null } : {}),
  };
}
