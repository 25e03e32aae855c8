import { and, desc, eq, lt, or, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { SecretBox } from "../../crypto/secrets.ts";
import type { Tx } from "../../db/client.ts";
import { backupJobs, dataSources, restores } from "../../db/schema.ts";
import { pinTarget, ProbeError } from "../../engines/network.ts";
import { DATABASE_NAME, engineFamily, inspectDatabase, RestoreSetupError } from "../../engines/restore.ts";
import { checkSqlitePath, type SqlitePathPolicy } from "../../engines/sqlite-path.ts";
import { notReplaceable, sqliteUserObjects } from "../../engines/sqlite-restore.ts";
import type { EngineName, SourceTarget } from "../../engines/types.ts";
import { WHOLE_SERVER } from "../../engines/whole-server.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowMs } from "../../lib/clock.ts";
import { AppError, invalidInput, notFound } from "../../lib/errors.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import type { OutboundPolicy } from "../../net/outbound-policy.ts";
import type { JobControl } from "../../runner/control.ts";
import type { StorageRegistry } from "../../storage/registry.ts";
import { targetOf } from "../data-sources/credentials.ts";
import { storedFileOf } from "../jobs/service.ts";
import { storedParts } from "../jobs/parts.ts";
import { checkPartsStored, checkServerTarget, chooseDatabases } from "./server.ts";
import type { RestoreDirectoryPolicy } from "../../lib/restore-directory.ts";
import { createPointInTimeRestore, isPointInTime } from "./point-in-time.ts";
import { queueRestore } from "./queue.ts";
import { toRestore } from "./serialize.ts";

export type RestoreRow = typeof restores.$inferSelect;

export interface RestoreServiceDeps {
  storage: StorageRegistry;
  /** Where point-in-time restores may build data directories (none when left out). */
  restoreDirs?: RestoreDirectoryPolicy;
  secrets: SecretBox;
  sqlitePaths: SqlitePathPolicy;
  /** Where a target's host may resolve to (config `network`). */
  outbound: OutboundPolicy;
}

export interface CreateRestoreInput {
  backupJobId?: string;
  targetDataSourceId?: string;
  targetDatabase?: string;
  clean?: boolean;
  databases?: string[];
  dataSourceId?: string;
  targetTime?: string;
  targetDirectory?: string;
  walDelivery?: "copy" | "fetch";
}

export async function findRestore(db: ServiceContext["db"] | Tx, orgId: string, id: string): Promise<RestoreRow> {
  const row = (
    await db
      .select()
      .from(restores)
      .where(and(eq(restores.orgId, orgId), eq(restores.id, id)))
  )[0];
  if (!row) throw notFound("restore");
  return row;
}

/** The API shape, with live progress for a restore the runner is working on. */
export function presentRestore(row: RestoreRow, control: JobControl) {
  const restore = toRestore(row);
  const live = row.status === "running" ? control.restoreProgressOf(row.id) : null;
  return live ? { ...restore, progress: live } : restore;
}

export async function listRestores(ctx: ServiceContext, filters: { dataSourceId?: string; planId?: string; status?: RestoreRow["status"] }, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(restores.orgId, ctx.orgId)];
  if (filters.dataSourceId) where.push(or(eq(restores.targetDataSourceId, filters.dataSourceId), eq(restores.sourceDataSourceId, filters.dataSourceId)));
  if (filters.planId) where.push(eq(restores.planId, filters.planId));
  if (filters.status) where.push(eq(restores.status, filters.status));
  if (page.beforeId) where.push(lt(restores.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(restores)
    .where(and(...where))
    .orderBy(desc(restores.id))
    .limit(page.limit + 1);
  return takePage(rows, page.limit);
}

/**
 * Looks at the target before anything is queued: a target that holds tables is refused
 * (409) unless `clean`, and so is one that cannot be reached to look (the restore would
 * fail the same way). The runner looks again when the restore starts.
 */
async function checkTarget(target: SourceTarget, database: string | null, clean: boolean, sqlitePaths: SqlitePathPolicy, outbound: OutboundPolicy, orgId: string): Promise<void> {
  if (target.engine === "sqlite") {
    const check = checkSqlitePath(target.path ?? "", sqlitePaths, orgId);
    if (!check.ok) throw new AppError("CONFLICT", `the target data source's path is refused: ${check.reason}`);
    const problem = notReplaceable(check.real);
    if (problem) throw new AppError("CONFLICT", `the target ${target.path} ${problem}`);
    const objects = await sqliteUserObjects(check.real);
    if (objects === -1 && !clean) throw new AppError("CONFLICT", `the target file ${target.path} exists and is not a SQLite database; set clean: true to replace it`);
    if (objects && objects > 0 && !clean) {
      throw new AppError("CONFLICT", `the target ${target.path} is not empty (${objects} tables or views); set clean: true to replace it`);
    }
    return;
  }
  let relations: number;
  try {
    relations = (await inspectDatabase(await pinTarget(target, outbound), database!)).relations;
  } catch (err) {
    if (err instanceof ProbeError) throw new AppError("CONFLICT", `the target could not be checked: ${err.verifyError.code}: ${err.verifyError.message}`);
    if (err instanceof RestoreSetupError) throw new AppError("CONFLICT", `the target could not be checked: ${err.code}: ${err.message}`);
    throw err;
  }
  if (relations > 0 && !clean) {
    throw new AppError("CONFLICT", `the target database ${database} is not empty (${relations} tables, views or sequences); set clean: true to replace its contents`);
  }
}

/** Validates the request, checks the target, and queues the restore (202). */
export async function createRestore(ctx: ServiceContext, deps: RestoreServiceDeps, input: CreateRestoreInput): Promise<RestoreRow> {
  if (isPointInTime(input)) return createPointInTimeRestore(ctx, deps.restoreDirs ?? { roots: [], reservedDirs: [] }, input);
  if (input.walDelivery !== undefined) throw invalidInput("/walDelivery", "walDelivery applies to a point-in-time restore (dataSourceId, targetTime, targetDirectory) only");
  if (input.backupJobId === undefined) {
    throw invalidInput("/backupJobId", "backupJobId is required (or dataSourceId, targetTime and targetDirectory for a point-in-time restore)");
  }
  const clean = input.clean ?? false;
  const job = (
    await ctx.db
      .select()
      .from(backupJobs)
      .where(and(eq(backupJobs.orgId, ctx.orgId), eq(backupJobs.id, input.backupJobId)))
  )[0];
  if (!job) throw invalidInput("/backupJobId", "backupJobId does not name a backup job of this organisation");
  if (job.physical !== null) {
    throw invalidInput("/backupJobId", "this is a physical base backup: restore it to a point in time with dataSourceId, targetTime and targetDirectory");
  }
  const { destination, key } = await storedFileOf(ctx, job);
  // A whole-server backup: the databases it restores, and the files of those and of the globals.
  const databases = job.parts ? chooseDatabases(job, input.databases) : null;
  if (databases) {
    await checkPartsStored(
      deps.storage,
      destination,
      storedParts(job).filter((p) => p.kind === "globals" || databases.includes(p.name)),
    );
  } else {
    if (input.databases !== undefined) throw invalidInput("/databases", 'databases applies to a whole-server backup (a data source with database "*") only');
    const head = await deps.storage
      .driverFor(destination)
      .head(key)
      .catch((err: Error) => {
        throw new AppError("CONFLICT", `the backup's storage could not be reached: ${err.message}`);
      });
    if (!head) throw new AppError("CONFLICT", "the backup's file is missing from its storage destination");
    if (head.size !== job.storedBytes) throw new AppError("CONFLICT", `the stored file has ${head.size} bytes, the backup recorded ${job.storedBytes}`);
  }

  const targetId = input.targetDataSourceId ?? job.dataSourceId;
  const target = (
    await ctx.db
      .select()
      .from(dataSources)
      .where(and(eq(dataSources.orgId, ctx.orgId), eq(dataSources.id, targetId)))
  )[0];
  if (!target) throw invalidInput("/targetDataSourceId", "targetDataSourceId does not name a data source of this organisation");
  const backupEngine = ((job.format as { engine?: string } | null)?.engine ?? target.engine) as EngineName;
  if (engineFamily(backupEngine) !== engineFamily(target.engine)) {
    throw invalidInput("/targetDataSourceId", `a ${backupEngine} backup cannot be restored into a ${target.engine} data source`);
  }
  let database: string | null = null;
  if (target.engine === "sqlite") {
    if (input.targetDatabase !== undefined) throw invalidInput("/targetDatabase", "targetDatabase applies to network engines only; a SQLite target is its data source's path");
  } else if (databases) {
    if (input.targetDatabase !== undefined)
      throw invalidInput("/targetDatabase", "a whole-server backup restores each database under its own name: leave targetDatabase out (choose them with databases)");
  } else {
    if (input.targetDatabase !== undefined && !DATABASE_NAME.test(input.targetDatabase)) {
      throw invalidInput("/targetDatabase", "targetDatabase must start with a letter or _ and hold only letters, digits, _, $ and - (at most 63)");
    }
    // A whole-server target (`*`) names no database of its own.
    database = input.targetDatabase ?? (target.database === WHOLE_SERVER ? null : target.database);
    if (!database) throw invalidInput("/targetDatabase", "the target data source names no database: give targetDatabase");
  }
  if (databases) await checkServerTarget(targetOf(target, deps.secrets), databases, clean, deps.outbound);
  else await checkTarget(targetOf(target, deps.secrets), database, clean, deps.sqlitePaths, deps.outbound, ctx.orgId);

  return queueRestore(
    ctx,
    { where: eq(restores.targetDataSourceId, target.id), name: "data source" },
    { backupJobId: job.id, sourceDataSourceId: job.dataSourceId, targetDataSourceId: target.id, targetDatabase: database, clean, databases, targetTime: null, targetDirectory: null },
    { backupJobId: job.id, sourceDataSourceId: job.dataSourceId, targetDataSourceId: target.id, targetDatabase: database, clean, ...(databases ? { databases } : {}) },
  );
}

/**
 * Like a job's cancel: a queued restore is canceled at once; a running one is aborted and
 * turns `canceled` when its pipeline has stopped (its error says what state the target is
 * in). A finished restore is a 409.
 */
export async function cancelRestore(ctx: ServiceContext, control: JobControl, id: string): Promise<RestoreRow> {
  const row = await findRestore(ctx.db, ctx.orgId, id);
  if (row.status === "queued") {
    const canceled = await ctx.db.transaction(async (tx) => {
      const rows = await tx
        .update(restores)
        .set({ status: "canceled", finishedAt: nowMs(), error: { code: "CANCELED", message: "the restore was canceled before it started; the target was not touched" } })
        .where(and(eq(restores.id, id), eq(restores.status, "queued")))
        .returning();
      if (rows.length) await recordAudit(tx, ctx, { action: "restore.canceled", targetType: "restore", targetId: id, metadata: { was: "queued" } });
      return rows[0];
    });
    if (canceled) return canceled;
    return cancelRestore(ctx, control, id); // it started meanwhile
  }
  if (row.status === "running") {
    // Recorded in the row too: in a fleet the restore may run on another node, which sees it
    // at its next progress write (within a second) and stops it.
    await ctx.db.transaction(async (tx) => {
      await tx
        .update(restores)
        .set({ cancelRequestedAt: nowMs() })
        .where(and(eq(restores.id, id), eq(restores.status, "running")));
      await recordAudit(tx, ctx, { action: "restore.cancel_requested", targetType: "restore", targetId: id });
    });
    control.abortRunning(id, "canceled");
    return findRestore(ctx.db, ctx.orgId, id);
  }
  throw new AppError("CONFLICT", `the restore is already ${row.status}`);
}
