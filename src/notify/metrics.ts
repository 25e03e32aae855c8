import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { Counter, type MetricsRegistry } from "../http/metrics.ts";

/**
 * Notification metrics. The deliveries by channel type and status are read from the store
 * at scrape time (right after a restart too); the counter counts deliveries that ended
 * since start, for alerts on `increase(...{status="failed"}[…])`.
 */
export class NotifyMetrics {
  private readonly deliveries = new Counter("snapdb_notification_deliveries", "Notification deliveries in the store, by channel type and status.", "gauge");
  private readonly finished = new Counter("snapdb_notification_deliveries_finished_total", "Notification deliveries that ended (delivered or failed) since start, by channel type.");
  private readonly attempts = new Counter("snapdb_notification_delivery_attempts_total", "Notification send attempts since start, by channel type and outcome (delivered, retry, failed).");

  private readonly seen = new Set<string>();

  constructor(db: Db, registry: MetricsRegistry) {
    for (const m of [this.deliveries, this.finished, this.attempts]) registry.register(m);
    registry.onCollect(() => {
      const rows = db.all<{ type: string; status: string; n: number }>(
        sql`SELECT channel_type AS type, status, count(*) AS n FROM notification_deliveries GROUP BY channel_type, status`,
      );
      // A series seen once stays, at 0 when its rows are gone (e.g. no pending delivery left).
      for (const key of this.seen) this.deliveries.set(JSON.parse(key), 0);
      for (const r of rows) {
        const labels = { channel_type: r.type, status: r.status };
        this.seen.add(JSON.stringify(labels));
        this.deliveries.set(labels, r.n);
      }
    });
  }

  attempt(channelType: string, outcome: "delivered" | "retry" | "failed"): void {
    this.attempts.inc({ channel_type: channelType, outcome });
    if (outcome !== "retry") this.finished.inc({ channel_type: channelType, status: outcome });
  }
}
