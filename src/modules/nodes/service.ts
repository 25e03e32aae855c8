import { and, count, desc, eq, inArray, lt, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { backupJobs, nodes, restores } from "../../db/schema.ts";
import { isoOf, storeNowMs } from "../../lib/clock.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";

type NodeRow = typeof nodes.$inferSelect;

/**
 * Down: stopped cleanly, or silent for longer than the lease (then its jobs are another
 * node's to take over, so the two answers agree).
 */
const statusOf = (row: NodeRow, now: number, leaseMs: number): "up" | "down" => (row.stoppedAt !== null || now - row.lastSeenAt > leaseMs ? "down" : "up");

/** Running backups and restores per node, for the nodes of one page. */
async function runningOn(db: Db, ids: string[]): Promise<Map<string, number>> {
  const running = new Map<string, number>();
  if (!ids.length) return running;
  for (const table of [backupJobs, restores] as const) {
    const rows = await db
      .select({ nodeId: table.nodeId, n: count() })
      .from(table)
      .where(and(eq(table.status, "running"), inArray(table.nodeId, ids)))
      .groupBy(table.nodeId);
    for (const { nodeId, n } of rows) if (nodeId) running.set(nodeId, (running.get(nodeId) ?? 0) + Number(n));
  }
  return running;
}

/**
 * The store's nodes, newest first, one keyset page. Nodes serve every organisation, so any
 * organisation's reader sees all of them; the answer is built field by field, so the master
 * key's fingerprint (the `nodes` row has it, for `doctor`) never reaches it.
 */
export async function listNodes(db: Db, leaseMs: number, page: PageRequest) {
  const where: (SQL | undefined)[] = [];
  if (page.beforeId) where.push(lt(nodes.id, page.beforeId));
  const rows = await db
    .select()
    .from(nodes)
    .where(and(...where))
    .orderBy(desc(nodes.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  const running = await runningOn(
    db,
    items.map((r) => r.id),
  );
  const now = storeNowMs();
  return {
    items: items.map((row) => ({
      id: row.id,
      hostname: row.hostname,
      labels: row.labels,
      version: row.version,
      startedAt: isoOf(row.startedAt),
      lastSeenAt: isoOf(row.lastSeenAt),
      status: statusOf(row, now, leaseMs),
      running: running.get(row.id) ?? 0,
    })),
    hasMore,
  };
}
