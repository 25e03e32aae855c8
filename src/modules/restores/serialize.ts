import { t, type Static } from "elysia";
import { Int } from "../../http/json-int.ts";
import { oneOf } from "../../http/one-of.ts";
import type { restores } from "../../db/schema.ts";
import { isoOf } from "../../lib/clock.ts";
import { RESTORE_ERROR_CODES } from "../../lib/failure-codes.ts";

const Status = t.Union([t.Literal("queued"), t.Literal("running"), t.Literal("succeeded"), t.Literal("failed"), t.Literal("canceled")]);

/** What a restore plan's run found when it checked the restored database. */
export const Verification = t.Object(
  {
    status: t.Union([t.Literal("passed"), t.Literal("failed")], {
      description: "passed: the restore tool succeeded, every row count matched the backup's fingerprint and every check returned what it expects.",
    }),
    fingerprint: t.Boolean({
      description: "Whether the backup carried a fingerprint (its policy has `fingerprint: true`) to compare row counts with; without one only the restore and the checks decide.",
    }),
    tables: Int({ description: "Tables of the backup (its fingerprint's; without one, the tables found after the restore)." }),
    rowsCompared: Int({ description: "Rows counted in the restored tables and compared with the fingerprint." }),
    mismatches: t.Array(
      t.Object({
        table: t.String(),
        expected: Int({ description: "Rows the table held in the dump's snapshot." }),
        found: t.Union([Int(), t.Null()], { description: "Rows after the restore; null: the table is missing." }),
      }),
    ),
    checks: t.Array(
      t.Object({
        name: t.String(),
        ok: t.Boolean(),
        found: t.Union([t.String(), t.Null()], { description: "The first column of the first row, as text; null for no row, NULL, or an error." }),
        error: t.Optional(t.String({ description: "Why the check could not run (its SQL error, a timeout)." })),
      }),
    ),
    durationMs: Int({ description: "Measured recovery time: the restore plus the verification." }),
  },
  { description: "Present on a restore plan's run once it is over (also when the restore itself failed: then status is failed and the counts are 0)." },
);

/** A restore as the API shows it (docs/api.md): the lifecycle, progress and error shape of a backup job. */
export const Restore = t.Object(
  {
    id: t.String({ examples: ["rst_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    backupJobId: t.Union([t.String(), t.Null()], { description: "The backup restored; null only for a restore plan's run that found no successful backup (error NO_BACKUP)." }),
    sourceDataSourceId: t.String({ description: "The data source the backup was taken of." }),
    targetDataSourceId: t.String(),
    targetDatabase: t.Union([t.String(), t.Null()], {
      description:
        "The database written (network engines); null for SQLite, whose target is the data source's path. A drill's is its scratch database (snapdb_drill_…), dropped when the drill is over.",
    }),
    clean: t.Boolean(),
    status: Status,
    nodeId: t.Union([t.String(), t.Null()], { description: "The fleet node (`GET /nodes`) that ran the restore; null until one claimed it." }),
    queuedAt: t.String({ format: "date-time" }),
    startedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    finishedAt: t.Union([t.String({ format: "date-time" }), t.Null()]),
    progress: t.Object({
      bytesRead: Int({ description: "Bytes of the stored file read so far." }),
      bytesWritten: Int({ description: "Bytes of the dump (decrypted, decompressed) handed to the restore tool or file." }),
    }),
    targetTime: t.Union([t.String({ format: "date-time" }), t.Null()], { description: "Point-in-time restores: the instant recovered to; null for a restore of a dump." }),
    targetDirectory: t.Union([t.String(), t.Null()], {
      description: "Point-in-time restores: the PostgreSQL data directory built; start PostgreSQL on it (as its owner) to recover and promote. Null for a restore of a dump.",
    }),
    walDelivery: t.Union([t.Literal("copy"), t.Literal("fetch"), t.Null()], {
      description: "Point-in-time restores: how PostgreSQL gets the WAL (`copy` into `pg_wal_archive/`, or `fetch` with `snapdb wal-fetch`); null for a restore of a dump.",
    }),
    error: t.Union([t.Object({ code: oneOf(RESTORE_ERROR_CODES), message: t.String({ description: "Also says what state the target was left in." }) }), t.Null()]),
    databases: t.Union([t.Array(t.String()), t.Null()], { description: "A whole-server backup's restore: the databases it restores, in order. Null otherwise." }),
    notes: t.Array(t.String(), { description: "What the restore tolerated on the way, e.g. roles or users that already existed on the target." }),
    planId: t.Union([t.String(), t.Null()], { description: "The restore plan whose run this is; null for a restore asked for directly." }),
    mode: t.Union([t.Literal("drill"), t.Literal("refresh"), t.Null()], { description: "A plan run's mode; null for a restore asked for directly." }),
    trigger: t.Union([t.Literal("schedule"), t.Literal("manual")]),
    verification: t.Union([Verification, t.Null()], { description: "A plan run's verification, once it is over; null otherwise." }),
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
    nodeId: row.nodeId,
    queuedAt: isoOf(row.queuedAt),
    startedAt: isoOrNull(row.startedAt),
    finishedAt: isoOrNull(row.finishedAt),
    progress: { bytesRead: row.bytesRead, bytesWritten: row.bytesWritten },
    targetTime: isoOrNull(row.targetTime),
    targetDirectory: row.targetDirectory,
    walDelivery: row.walDelivery ?? null,
    error: row.error ?? null,
    databases: row.databases ?? null,
    notes: row.notes ?? [],
    planId: row.planId,
    mode: row.mode,
    trigger: row.trigger,
    verification: (row.verification as Static<typeof Verification> | null) ?? null,
  };
}
