import { and, eq } from "drizzle-orm";
import { dataSources, restores } from "../../db/schema.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { AppError, invalidInput } from "../../lib/errors.ts";
import { checkRestoreDirectory, type RestoreDirectoryPolicy } from "../../lib/restore-directory.ts";
import { parseTimestamp } from "../../lib/time-input.ts";
import { windowText } from "../../runner/pitr-restore.ts";
import { planPointInTime, recoveryWindowOf } from "../../runner/recovery-window.ts";
import type { CreateRestoreInput, RestoreRow } from "./service.ts";
import { queueRestore } from "./queue.ts";

const PITR_FIELDS = ["dataSourceId", "targetTime", "targetDirectory"] as const;
const DUMP_FIELDS = ["backupJobId", "targetDataSourceId", "targetDatabase", "clean"] as const;

/** A request names a point in time when it carries any of that kind's fields. */
export const isPointInTime = (input: CreateRestoreInput) => PITR_FIELDS.some((f) => input[f] !== undefined);

/**
 * Validates a point-in-time restore and queues it: the source is a PostgreSQL data source
 * of the org, the instant lies in its recovery window, the directory is allowed and empty.
 * The base backup it starts from is recorded as the restore's `backupJobId`.
 */
export async function createPointInTimeRestore(ctx: ServiceContext, restoreDirs: RestoreDirectoryPolicy, input: CreateRestoreInput): Promise<RestoreRow> {
  for (const field of DUMP_FIELDS) {
    // `clean` defaults to false in the schema: only a true one is a mistake here.
    if (input[field] !== undefined && input[field] !== false) throw invalidInput(`/${field}`, `${field} does not apply to a point-in-time restore (dataSourceId, targetTime, targetDirectory)`);
  }
  for (const field of PITR_FIELDS) {
    if (input[field] === undefined) throw invalidInput(`/${field}`, `a point-in-time restore needs dataSourceId, targetTime and targetDirectory: ${field} is missing`);
  }
  const source = (
    await ctx.db
      .select()
      .from(dataSources)
      .where(and(eq(dataSources.orgId, ctx.orgId), eq(dataSources.id, input.dataSourceId!)))
  )[0];
  if (!source) throw invalidInput("/dataSourceId", "dataSourceId does not name a data source of this organisation");
  if (source.engine !== "postgres") throw invalidInput("/dataSourceId", `point-in-time restores are for PostgreSQL sources; this one is ${source.engine}`);
  const targetTime = parseTimestamp(input.targetTime!, "/targetTime");
  const dir = checkRestoreDirectory(input.targetDirectory!, restoreDirs);
  if (!dir.ok) {
    if (/not empty/.test(dir.reason)) throw new AppError("CONFLICT", dir.reason, [{ path: "/targetDirectory", message: dir.reason }]);
    throw invalidInput("/targetDirectory", dir.reason);
  }
  const window = await recoveryWindowOf(ctx.db, source.id);
  const plan = window ? planPointInTime(window, targetTime) : null;
  if (!plan) throw invalidInput("/targetTime", `targetTime ${new Date(targetTime).toISOString()} is outside the recovery window: ${windowText(window)}`);

  return queueRestore(
    ctx,
    { where: eq(restores.targetDirectory, dir.real), name: "directory" },
    {
      backupJobId: plan.backup.job.id,
      sourceDataSourceId: source.id,
      // It runs as a restore of its source: one job per data source at a time.
      targetDataSourceId: source.id,
      targetDatabase: null,
      clean: false,
      databases: null,
      targetTime,
      targetDirectory: dir.real,
      walDelivery: input.walDelivery ?? "copy",
    },
    {
      kind: "point_in_time",
      dataSourceId: source.id,
      backupJobId: plan.backup.job.id,
      targetTime: new Date(targetTime).toISOString(),
      targetDirectory: dir.real,
      walDelivery: input.walDelivery ?? "copy",
    },
  );
}
