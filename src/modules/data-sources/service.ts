import { containsPattern } from "../../db/raw.ts";
import { isUniqueViolation } from "../../db/unique-violation.ts";
import { and, count, desc, eq, inArray, isNotNull, isNull, lt, or, sql, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { Tx } from "../../db/client.ts";
import { attachments, backupJobs, dataSources, restorePlans, walSegments } from "../../db/schema.ts";
import { checkSqlitePath, type SqlitePathPolicy } from "../../engines/sqlite-path.ts";
import type { EngineName, EngineOptions } from "../../engines/types.ts";
import type { RunOn } from "../../fleet/run-on.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowMs } from "../../lib/clock.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import { toBackupJob } from "../jobs/serialize.ts";
import { toDataSource, type DataSourceRow } from "./serialize.ts";
import { checkShape, withDefaults, type SourceShape } from "./validate.ts";

export interface DataSourceInput {
  name: string;
  engine: EngineName;
  host?: string;
  port?: number;
  database?: string;
  excludeDatabases?: string[];
  path?: string;
  options?: EngineOptions;
  labels?: Record<string, string>;
  runOn?: RunOn | null;
}

export type DataSourcePatch = Partial<DataSourceInput>;

/** The operator's rules for data sources: the host boundary for SQLite paths, and whether the store is a fleet's. */
export interface SourceRules {
  sqlitePaths: SqlitePathPolicy;
  /** config store.url is set (PostgreSQL, shared by several nodes). */
  fleet: boolean;
}

const TARGET = "data_source";

const nameTaken = (name: string) => new AppError("CONFLICT", `a data source named "${name}" already exists`, [{ path: "/name", message: "must be unique in the organisation" }]);

/** The org's row or 404: another org's id looks exactly like a missing one. */
export async function findDataSource(db: ServiceContext["db"] | Tx, orgId: string, id: string): Promise<DataSourceRow> {
  const row = (
    await db
      .select()
      .from(dataSources)
      .where(and(eq(dataSources.id, id), eq(dataSources.orgId, orgId)))
  )[0];
  if (!row) throw notFound("data source");
  return row;
}

async function assertNameFree(tx: Tx, orgId: string, name: string, exceptId?: string) {
  const clash = (
    await tx
      .select({ id: dataSources.id })
      .from(dataSources)
      .where(and(eq(dataSources.orgId, orgId), eq(dataSources.name, name)))
  )[0];
  if (clash && clash.id !== exceptId) throw nameTaken(name);
}

/** A unique-index race lost between the check and the write is still a 409, not a 500. */
async function asConflict<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isUniqueViolation(err, "data_sources.org_id, data_sources.name")) throw nameTaken(name);
    throw err;
  }
}

/** The host boundary's objection to a SQLite path, or null. */
const pathProblemUnder = (policy: SqlitePathPolicy, orgId: string) => (path: string) => {
  const check = checkSqlitePath(path, policy, orgId);
  return check.ok ? null : check.reason;
};

export async function createDataSource(ctx: ServiceContext, rules: SourceRules, input: DataSourceInput) {
  const shape = withDefaults({
    engine: input.engine,
    host: input.host ?? null,
    port: input.port ?? null,
    database: input.database ?? null,
    excludeDatabases: input.excludeDatabases ?? [],
    path: input.path ?? null,
    options: input.options ?? {},
    labels: input.labels ?? {},
    runOn: input.runOn ?? null,
  });
  checkShape(shape, { pathProblem: pathProblemUnder(rules.sqlitePaths, ctx.orgId), fleet: rules.fleet });
  const now = nowMs();
  const row = await asConflict(
    input.name,
    async () =>
      await ctx.db.transaction(async (tx) => {
        await assertNameFree(tx, ctx.orgId, input.name);
        const id = newId("ds");
        const created = (
          await tx
            .insert(dataSources)
            .values({ id, orgId: ctx.orgId, name: input.name, ...shape, options: shape.options as Record<string, unknown>, createdAt: now, updatedAt: now })
            .returning()
        )[0];
        await recordAudit(tx, ctx, { action: "data_source.created", targetType: TARGET, targetId: id, metadata: { name: input.name, engine: input.engine } });
        return created!;
      }),
  );
  return toDataSource(row);
}

export async function getDataSource(ctx: ServiceContext, id: string) {
  return toDataSource(await findDataSource(ctx.db, ctx.orgId, id));
}

export interface DataSourceFilters {
  engine?: EngineName;
  q?: string;
}

/** Newest first, one keyset page; `q` matches anywhere in the name, ignoring ASCII case. */
export async function listDataSources(ctx: ServiceContext, filters: DataSourceFilters, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(dataSources.orgId, ctx.orgId)];
  if (filters.engine) where.push(eq(dataSources.engine, filters.engine));
  // The search text's own `%` and `_` are escaped: they are literal.
  if (filters.q) where.push(sql`lower(${dataSources.name}) LIKE ${containsPattern(filters.q.toLowerCase())} ESCAPE '\\'`);
  if (page.beforeId) where.push(lt(dataSources.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(dataSources)
    .where(and(...where))
    .orderBy(desc(dataSources.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: items.map(toDataSource), hasMore };
}

/**
 * A new SQLite path is checked against the host boundary; an unchanged one is not (it is
 * checked before every use anyway, and a label change should not fail because the operator
 * has since narrowed the roots).
 */
export async function updateDataSource(ctx: ServiceContext, rules: SourceRules, id: string, patch: DataSourcePatch) {
  const name = patch.name;
  const row = await asConflict(
    name ?? "",
    async () =>
      await ctx.db.transaction(async (tx) => {
        const current = await findDataSource(tx, ctx.orgId, id);
        if (patch.engine !== undefined && patch.engine !== current.engine) {
          throw new AppError("INVALID_INPUT", "engine cannot be changed: create a new data source", [{ path: "/engine", message: "cannot be changed" }]);
        }
        const shape: SourceShape = withDefaults({
          engine: current.engine,
          host: patch.host ?? current.host,
          port: patch.port ?? current.port,
          database: patch.database ?? current.database,
          excludeDatabases: patch.excludeDatabases ?? current.excludeDatabases,
          path: patch.path ?? current.path,
          options: (patch.options ?? current.options) as EngineOptions,
          labels: patch.labels ?? current.labels,
          runOn: patch.runOn === undefined ? current.runOn : patch.runOn,
        });
        checkShape(shape, { pathProblem: patch.path !== undefined ? pathProblemUnder(rules.sqlitePaths, ctx.orgId) : undefined, fleet: rules.fleet });
        if (name !== undefined && name !== current.name) await assertNameFree(tx, ctx.orgId, name, id);
        const changed = Object.keys(patch).filter((k) => k !== "engine");
        const updated = (
          await tx
            .update(dataSources)
            .set({ name: name ?? current.name, ...shape, options: shape.options as Record<string, unknown>, updatedAt: nowMs() })
            .where(eq(dataSources.id, id))
            .returning()
        )[0];
        await recordAudit(tx, ctx, { action: "data_source.updated", targetType: TARGET, targetId: id, metadata: { changed } });
        return updated!;
      }),
  );
  return toDataSource(row);
}

/** A stored backup file that goes with a job deleted by a cascade (or an archived WAL file: `jobId` is its name). */
export interface StoredBackupFile {
  jobId: string;
  destinationId: string | null;
  objectKey: string;
}

export interface DeleteHooks {
  /**
   * Removes the stored files of the jobs a cascade deleted, after the rows are gone
   * (routes wire it to the storage registry, see files.ts). Without it a cascade deletes
   * rows only and `onFilesLeft` is told which files stay behind.
   */
  removeBackupFiles?: (ctx: ServiceContext, files: StoredBackupFile[]) => Promise<void>;
  onFilesLeft?: (files: StoredBackupFile[], error: unknown) => void;
}

/**
 * Deletes a data source. With attachments or jobs it is a 409 unless `cascade`: then the
 * attachments, the jobs and the source go in one transaction with the audit event, and the
 * jobs' stored files are removed afterwards (a failure there leaves orphaned files, never
 * rows pointing at missing files). A source with a queued or running job is never cascaded.
 */
export async function deleteDataSource(ctx: ServiceContext, id: string, opts: { cascade: boolean }, hooks: DeleteHooks = {}) {
  const files = await ctx.db.transaction(async (tx) => {
    const row = await findDataSource(tx, ctx.orgId, id);
    const nAtt = (await tx.select({ n: count() }).from(attachments).where(eq(attachments.dataSourceId, id)))[0]!.n;
    const nJobs = (await tx.select({ n: count() }).from(backupJobs).where(eq(backupJobs.dataSourceId, id)))[0]!.n;
    // Restore plans restore this source's backups, or restore into it: they go with it too.
    const plans = await tx
      .select({ id: restorePlans.id })
      .from(restorePlans)
      .where(or(eq(restorePlans.dataSourceId, id), eq(restorePlans.targetDataSourceId, id)));
    if ((nAtt || nJobs || plans.length) && !opts.cascade) {
      const withPlans = plans.length ? ` and ${plans.length} restore plan(s)` : "";
      throw new AppError("CONFLICT", `data source has ${nAtt} attachment(s) and ${nJobs} backup job(s)${withPlans}; detach them first or delete with ?cascade=true`);
    }
    const active = (
      await tx
        .select({ n: count() })
        .from(backupJobs)
        .where(and(eq(backupJobs.dataSourceId, id), inArray(backupJobs.status, ["queued", "running"])))
    )[0]!.n;
    if (active) throw new AppError("CONFLICT", `data source has ${active} queued or running backup job(s); cancel them first`);
    const stored = (await tx
      .select({ jobId: backupJobs.id, destinationId: backupJobs.destinationId, objectKey: backupJobs.objectKey })
      .from(backupJobs)
      .where(and(eq(backupJobs.dataSourceId, id), isNotNull(backupJobs.objectKey), isNull(backupJobs.fileDeletedAt)))) as StoredBackupFile[];
    // Its archived WAL (physical policies) goes with it.
    const wal = await tx.select({ jobId: walSegments.name, destinationId: walSegments.destinationId, objectKey: walSegments.objectKey }).from(walSegments).where(eq(walSegments.dataSourceId, id));
    stored.push(...wal);
    await tx.delete(walSegments).where(eq(walSegments.dataSourceId, id));
    await tx.delete(attachments).where(eq(attachments.dataSourceId, id));
    for (const plan of plans) {
      await tx.delete(restorePlans).where(eq(restorePlans.id, plan.id));
      await recordAudit(tx, ctx, { action: "restore_plan.deleted", targetType: "restore_plan", targetId: plan.id, metadata: { cascade: true, dataSourceId: id } });
    }
    await tx.delete(backupJobs).where(eq(backupJobs.dataSourceId, id));
    await tx.delete(dataSources).where(eq(dataSources.id, id));
    await recordAudit(tx, ctx, {
      action: "data_source.deleted",
      targetType: TARGET,
      targetId: id,
      metadata: { name: row.name, engine: row.engine, cascade: opts.cascade, attachmentsDeleted: nAtt, jobsDeleted: nJobs, filesToDelete: stored.length },
    });
    return stored;
  });
  if (!files.length) return;
  if (!hooks.removeBackupFiles) {
    hooks.onFilesLeft?.(files, new Error("no storage is wired for cascade file deletion"));
    return;
  }
  try {
    await hooks.removeBackupFiles(ctx, files);
  } catch (err) {
    hooks.onFilesLeft?.(files, err);
  }
}

/** One data source's backup jobs, newest first (the source must be the org's). */
export async function listDataSourceJobs(ctx: ServiceContext, id: string, page: PageRequest) {
  await findDataSource(ctx.db, ctx.orgId, id);
  const where: (SQL | undefined)[] = [eq(backupJobs.orgId, ctx.orgId), eq(backupJobs.dataSourceId, id)];
  if (page.beforeId) where.push(lt(backupJobs.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(backupJobs)
    .where(and(...where))
    .orderBy(desc(backupJobs.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: items.map(toBackupJob), hasMore };
}
