import { t } from "elysia";
import type { restores } from "../../db/schema.ts";
import { isoOf } from "../../lib/clock.ts";

const Status = t.Union([t.Literal("queued"), t.Literal("running"), t.Literal("succeeded"), t.Literal("failed"), t.Literal("canceled")]);

/** A restore as the API shows it (docs/api.md): the lifecycle, progress and error shape of a backup job. */
export const Restore = t.Object(
  {
    id: t.String({ examples: ["rst_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    backupJobId: t.String(),
    sourceDataSourceId: t.String({ description: "The data source the backup was taken of." }),
    targetDataSourceId: t.String(),
    targetDatabase: t.Union([t.String(), t.Null()], { description: "The database written (network engines); null for SQLite, whose target is the data source's path." }),
    clean: t.Boolean(),
    status: Status,
    queuedAt: t.String({ format: "date-time" }),
    startedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    finishedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    progress: t.Object({
      bytesRead: t.Integer({ description: "Bytes of the stored file read so far." }),
      bytesWritten: t.Integer({ description: "Bytes of the dump (decrypted, decompressed) handed to the restore tool or file." }),
    }),
    targetTime: t.Union([t.String({ format: "date-time" }), t.Null()], { description: "Point-in-time restores: the instant recovered to; null for a restore of a dump." }),
    targetDirectory: t.Union([t.String(), t.Null()], {
      description: "Point-in-time restores: the PostgreSQL data directory built; start PostgreSQL on it (as its owner) to recover and promote. Null for a restore of a dump.",
    }),
    error: t.Union([
      t.Object(
        { code: t.String(), message: t.String({ description: "Also says what state the target was left in." }) },
      ),
      t.Null(),
    ]),
  },
  { $id: "#/components/schemas/Restore", title: "Restore" },
);

type RestoreRow = typeof restores.$inferSelect;
const isoOrNull = (ms: number | null) => (ms === null ? null : isoOf(ms));

export function toRestore(row: RestoreRow) {
  return {
    id: row.id,
    backupJobId: row.backupJobId,
    sourceDataSourceId: row.sourceDataSourceId,
    targetDataSourceId: row.targetDataSourceId,
    targetDatabase: row.targetDatabase,
    clean: row.clean,
    status: row.status,
    queuedAt: isoOf(row.queuedAt),
    startedAt: isoOrNull(row.startedAt),
    finishedAt: isoOrNull(row.finishedAt),
    progress: { bytesRead: row.bytesRead, bytesWritten: row.bytesWritten },
    targetTime: isoOrNull(row.targetTime),
    targetDirectory: row.targetDirectory,
    error: row.error ?? null,
  };
}
