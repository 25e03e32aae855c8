import { storeNowMs } from "../lib/clock.ts";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { and, eq, inArray, isNotNull, isNull, lt, or } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { dataSources, restorePlans, restores } from "../db/schema.ts";
import { pinTarget } from "../engines/network.ts";
import { dropScratchDatabase, listScratchDatabases, restoreIdOfScratch, SCRATCH_PREFIX } from "../engines/scratch-db.ts";
import { removeSqliteTemp, sqliteTempPath } from "../engines/sqlite-restore.ts";
import type { SourceTarget } from "../engines/types.ts";
import { realPathOf } from "../lib/host-paths.ts";
import type { Logger } from "../lib/logger.ts";
import type { OutboundPolicy } from "../net/outbound-policy.ts";
import { recordPlanRunEnd, type PlanRunHook } from "./plan-run-record.ts";
import { notVerified } from "./verify-restore.ts";

/**
 * What a killed daemon leaves of restore drills, cleaned at the next start:
 * - plan runs still `running`: failed INTERRUPTED, reported like any failed run
 *   (`drill.failed`), before the generic restore recovery sees them;
 * - scratch files of SQLite drills in the data dir's tmp/;
 * - scratch databases (`snapdb_drill_…`) on the servers drills restore to. Only those of
 *   this daemon's own drills that are over are dropped (the name carries the restore's id):
 *   another snapdb using the same server for its drills keeps its own.
 */

const INTERRUPTED = {
  drill: "the daemon stopped (crash or kill) while the drill ran; its scratch database or file is removed at this start",
  refresh:
    "the daemon stopped (crash or kill) while the refresh ran: a SQLite target is unchanged, a PostgreSQL target is unchanged (pg_restore's single transaction was never committed), " +
    "a MySQL/MariaDB target may be partially restored; the next run replaces it",
};

/** Fails the plan runs a dead process left `running`; returns their ids. Call before the runner starts. */
export async function recoverInterruptedPlanRuns(db: Db, logger: Logger, hook?: PlanRunHook, nodeId?: string): Promise<string[]> {
  // Another live node's runs are its own (fleet): only this node's, pre-fleet ones, and those whose lease ran out.
  const mine = nodeId ? or(isNull(restores.nodeId), eq(restores.nodeId, nodeId), lt(restores.leaseUntil, storeNowMs())) : undefined;
  const rows = await db
    .select()
    .from(restores)
    .where(and(eq(restores.status, "running"), isNotNull(restores.planId), mine));
  for (const row of rows) {
    const mode = row.mode ?? "drill";
    await recordPlanRunEnd(
      db,
      row,
      {
        status: "failed",
        error: { code: "INTERRUPTED", message: INTERRUPTED[mode] },
        verification: notVerified(false, row.startedAt ? Date.now() - row.startedAt : 0),
        progress: { bytesRead: row.bytesRead, bytesWritten: row.bytesWritten },
      },
      hook,
    );
    if (mode !== "refresh") continue;
    // A refresh of a SQLite target writes a temp file beside it, as any restore does.
    const target = (await db.select({ engine: dataSources.engine, path: dataSources.path }).from(dataSources).where(eq(dataSources.id, row.targetDataSourceId)))[0];
    if (target?.engine !== "sqlite" || !target.path) continue;
    for (const path of new Set([target.path, realPathOf(target.path) ?? target.path])) removeSqliteTemp(sqliteTempPath(path, row.id));
  }
  if (rows.length) logger.warn("marked interrupted restore plan runs failed", { restores: rows.map((r) => r.id) });
  return rows.map((r) => r.id);
}

/** Removes SQLite drills' scratch files (and their temp files) from the scratch dir; returns how many. */
export function removeDrillScratchFiles(scratchDir: string): number {
  if (!existsSync(scratchDir)) return 0;
  let removed = 0;
  for (const name of readdirSync(scratchDir)) {
    if (!name.startsWith(SCRATCH_PREFIX) && !name.startsWith(`.${SCRATCH_PREFIX}`)) continue;
    rmSync(join(scratchDir, name), { force: true, recursive: true });
    removed++;
  }
  return removed;
}

/**
 * Drops leftover scratch databases on the servers of every data source drills restore to
 * (plans' targets, and targets of past drills). Unreachable servers are logged and tried
 * again at the next start. Returns the names dropped.
 */
export async function dropLeftoverScratchDatabases(db: Db, targetOf: (row: typeof dataSources.$inferSelect) => SourceTarget, outbound: OutboundPolicy, logger: Logger): Promise<string[]> {
  const planTargets = await db.selectDistinct({ id: restorePlans.targetDataSourceId }).from(restorePlans).where(eq(restorePlans.mode, "drill"));
  const pastTargets = await db.selectDistinct({ id: restores.targetDataSourceId }).from(restores).where(eq(restores.mode, "drill"));
  const ids = [...new Set([...planTargets, ...pastTargets].map((r) => r.id))];
  if (!ids.length) return [];
  const sources = await db.select().from(dataSources).where(inArray(dataSources.id, ids));
  const dropped: string[] = [];
  for (const source of sources) {
    if (source.engine === "sqlite") continue;
    try {
      const target = await pinTarget(targetOf(source), outbound);
      for (const name of await listScratchDatabases(target)) {
        const restoreId = restoreIdOfScratch(name);
        const run = restoreId ? (await db.select({ status: restores.status, target: restores.targetDataSourceId }).from(restores).where(eq(restores.id, restoreId)))[0] : undefined;
        // Not ours (another daemon's drill), or a drill that is still to run or running: left alone.
        if (!run || run.target !== source.id || run.status === "queued" || run.status === "running") continue;
        await dropScratchDatabase(target, name, AbortSignal.timeout(60_000));
        dropped.push(name);
      }
    } catch (err) {
      logger.warn("could not look for leftover drill scratch databases; tried again at the next start", { dataSourceId: source.id, error: err });
    }
  }
  if (dropped.length) logger.warn("dropped scratch databases left by interrupted restore drills", { databases: dropped });
  return dropped;
}
