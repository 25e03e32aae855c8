import { sql } from "drizzle-orm";
import { isPostgres, type Tx } from "../db/client.ts";
import { rawAll, rawGet, rawRun } from "../db/raw.ts";

/*
 * The checks a claiming transaction makes before it sets a job `running`. On SQLite
 * transactions run one at a time (BEGIN IMMEDIATE), so what the queue read still holds. On a
 * PostgreSQL store shared by several nodes two could claim at once: each check takes a lock
 * first, then reads again (each statement sees what committed before it). The locks are
 * always taken in this order (row, source, org), and the row lock is never waited for, so
 * two claims cannot deadlock.
 */

/**
 * Locks a queued job row (`backup_jobs` or `restores`) for this transaction. On PostgreSQL a
 * row another node is claiming right now is skipped (`FOR UPDATE SKIP LOCKED`), not waited
 * for: false, and the caller looks at other work. On SQLite the conditional UPDATE decides.
 */
export async function lockQueuedRow(tx: Tx, table: "backup_jobs" | "restores", id: string): Promise<boolean> {
  if (!isPostgres(tx)) return true;
  const rows = await rawAll(tx, sql`SELECT id FROM ${sql.identifier(table)} WHERE id = ${id} AND status = 'queued' FOR UPDATE SKIP LOCKED`);
  return rows.length === 1;
}

/**
 * May a job of `dataSourceId` (a backup of it, or a restore into it) start now? On
 * PostgreSQL a transaction-scoped advisory lock on the source serialises the claims, and the
 * source is checked again under it.
 */
export async function sourceFreeForClaim(tx: Tx, dataSourceId: string): Promise<boolean> {
  if (!isPostgres(tx)) return true;
  await rawRun(tx, sql`SELECT pg_advisory_xact_lock(hashtext(${dataSourceId}))`);
  const busy = await rawAll(
    tx,
    sql`SELECT 1 FROM backup_jobs WHERE data_source_id = ${dataSourceId} AND status = 'running'
        UNION ALL SELECT 1 FROM restores WHERE target_data_source_id = ${dataSourceId} AND status = 'running' LIMIT 1`,
  );
  return busy.length === 0;
}

/** Jobs (backups and restores) of one org running in the whole fleet: the `running` rows of the store. */
export async function runningOfOrg(tx: Tx, orgId: string): Promise<number> {
  const row = await rawGet<{ n: number }>(
    tx,
    sql`SELECT (SELECT count(*) FROM backup_jobs WHERE org_id = ${orgId} AND status = 'running')
             + (SELECT count(*) FROM restores WHERE org_id = ${orgId} AND status = 'running') AS n`,
    ["n"],
  );
  return row?.n ?? 0;
}

/**
 * Is the org below `maxConcurrentPerOrg` across the fleet? On PostgreSQL an advisory lock per
 * org (its own key space: two int4 keys) serialises the org's claims on every node, so two
 * nodes cannot both take its last slot; the count is read under it.
 */
export async function orgFreeForClaim(tx: Tx, orgId: string, maxConcurrentPerOrg: number): Promise<boolean> {
  if (isPostgres(tx)) await rawRun(tx, sql`SELECT pg_advisory_xact_lock(hashtext('snapdb.org'), hashtext(${orgId}))`);
  return (await runningOfOrg(tx, orgId)) < maxConcurrentPerOrg;
}
