import { sql } from "drizzle-orm";
import { isPostgres, type Tx } from "../db/client.ts";
import { rawAll, rawRun } from "../db/raw.ts";

/** How long a claim holds after a progress write renews it (runner.leaseSeconds; set by the runner). */
export let LEASE_RENEW_MS = 30_000;
export const configureLease = (ms: number) => {
  LEASE_RENEW_MS = ms;
};

/**
 * Inside a claiming transaction: may a job of `dataSourceId` (a backup of it, or a restore
 * into it) start now? On SQLite transactions run one at a time, so the queue's own check
 * holds. On a PostgreSQL store shared by several nodes two could claim jobs of one source at
 * once: a transaction-scoped advisory lock on the source serialises the claims, and the
 * source is checked again under it (each statement sees what committed before it).
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
