import { and, asc, eq, isNotNull, isNull, lte, notInArray, or, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { rawAll } from "../db/raw.ts";
import { backupJobs, dataSources, restores } from "../db/schema.ts";
import { runsOn } from "../fleet/run-on.ts";
import type { JobRow } from "./backup.ts";
import type { RestoreRow } from "./restore.ts";

/*
 * Which queued work may start now, and whose turn it is. Backups and restores share the
 * runner's slots and its rules:
 * - one job per data source (a restore counts for its target), in this process (`busy`)
 *   and as a `running` row;
 * - only jobs this node may run: a source whose `runOn` labels the node lacks is passed over
 *   (`busy` carries it too, see sourcesPinnedElsewhere);
 * - at most `maxConcurrentPerOrg` of one org at once across the fleet (`fullOrgs`, see orgsAtLimit);
 * - orgs with queued work take turns; within an org the oldest job goes first.
 */

const sourceFree = (column: typeof backupJobs.dataSourceId | typeof restores.targetDataSourceId, busy: string[]): SQL[] => [
  sql`${column} NOT IN (SELECT data_source_id FROM backup_jobs WHERE status = 'running')`,
  sql`${column} NOT IN (SELECT target_data_source_id FROM restores WHERE status = 'running')`,
  ...(busy.length ? [notInArray(column, busy)] : []),
];

function runnableBackups(now: number, busy: string[], fullOrgs: string[]): SQL {
  return and(
    eq(backupJobs.status, "queued"),
    or(isNull(backupJobs.notBefore), lte(backupJobs.notBefore, now)),
    ...sourceFree(backupJobs.dataSourceId, busy),
    fullOrgs.length ? notInArray(backupJobs.orgId, fullOrgs) : undefined,
  )!;
}

function runnableRestores(busy: string[], fullOrgs: string[]): SQL {
  return and(eq(restores.status, "queued"), ...sourceFree(restores.targetDataSourceId, busy), fullOrgs.length ? notInArray(restores.orgId, fullOrgs) : undefined)!;
}

/**
 * The data sources whose `runOn` labels this node (`nodeLabels`, config `node.labels`) does
 * not carry: their backups, and restores and plan runs into them, are another node's to run.
 * Few sources are pinned, so the labels are compared here rather than in SQL (JSON on two
 * engines).
 */
export async function sourcesPinnedElsewhere(db: Db, nodeLabels: Record<string, string>): Promise<string[]> {
  const pinned = await db.select({ id: dataSources.id, runOn: dataSources.runOn }).from(dataSources).where(isNotNull(dataSources.runOn));
  return pinned.filter((s) => !runsOn(s.runOn, nodeLabels)).map((s) => s.id);
}

/**
 * Orgs running `maxConcurrentPerOrg` jobs (backups and restores) or more: the store's
 * `running` rows, so the limit holds for the whole fleet, not per node.
 */
export async function orgsAtLimit(db: Db, maxConcurrentPerOrg: number): Promise<string[]> {
  const rows = await rawAll<{ org_id: string; n: number }>(
    db,
    sql`SELECT org_id, count(*) AS n FROM (
          SELECT org_id FROM backup_jobs WHERE status = 'running'
          UNION ALL SELECT org_id FROM restores WHERE status = 'running'
        ) AS r GROUP BY org_id`,
    ["n"],
  );
  return rows.filter((r) => r.n >= maxConcurrentPerOrg).map((r) => r.org_id);
}

/** Each org that has work able to start now → when its oldest such job was queued. */
export async function orgsWithRunnableWork(db: Db, now: number, busy: string[], fullOrgs: string[]): Promise<Map<string, number>> {
  const heads = new Map<string, number>();
  const backups = await db
    .select({ orgId: backupJobs.orgId, oldest: sql<number>`min(${backupJobs.queuedAt})`.mapWith(Number) })
    .from(backupJobs)
    .where(runnableBackups(now, busy, fullOrgs))
    .groupBy(backupJobs.orgId);
  const queuedRestores = await db
    .select({ orgId: restores.orgId, oldest: sql<number>`min(${restores.queuedAt})`.mapWith(Number) })
    .from(restores)
    .where(runnableRestores(busy, fullOrgs))
    .groupBy(restores.orgId);
  for (const { orgId, oldest } of [...backups, ...queuedRestores]) heads.set(orgId, Math.min(oldest, heads.get(orgId) ?? Infinity));
  return heads;
}

/** The org's oldest backup that may start now. */
export async function nextQueuedBackup(db: Db, now: number, busy: string[], orgId: string): Promise<JobRow | undefined> {
  return (
    await db
      .select()
      .from(backupJobs)
      .where(and(eq(backupJobs.orgId, orgId), runnableBackups(now, busy, [])))
      .orderBy(asc(backupJobs.queuedAt), asc(backupJobs.id))
      .limit(1)
  )[0];
}

/** The org's oldest restore whose target is free. */
export async function nextQueuedRestore(db: Db, busy: string[], orgId: string): Promise<RestoreRow | undefined> {
  return (
    await db
      .select()
      .from(restores)
      .where(and(eq(restores.orgId, orgId), runnableRestores(busy, [])))
      .orderBy(asc(restores.queuedAt), asc(restores.id))
      .limit(1)
  )[0];
}

/**
 * Round robin among orgs: of the orgs with work to start, the one that started a job least
 * recently goes next (one that never did first; between those, the oldest job). The map
 * holds one number per org that ever ran a job in this process.
 */
export class OrgTurns {
  private tick = 0;
  private readonly lastStart = new Map<string, number>();

  pick(candidates: Map<string, number>): string | undefined {
    let best: { orgId: string; last: number; oldest: number } | undefined;
    for (const [orgId, oldest] of candidates) {
      const last = this.lastStart.get(orgId) ?? 0;
      if (!best || last < best.last || (last === best.last && (oldest < best.oldest || (oldest === best.oldest && orgId < best.orgId)))) {
        best = { orgId, last, oldest };
      }
    }
    return best?.orgId;
  }

  started(orgId: string): void {
    this.lastStart.set(orgId, ++this.tick);
  }
}
