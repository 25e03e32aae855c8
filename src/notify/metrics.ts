import { rawAll } from "../db/raw.ts";
import { sql } from "drizzle-orm";
import { Counter, Gauge } from "prom-client";
import type { Db } from "../db/client.ts";
import type { MetricsRegistry } from "../http/metrics.ts";

/**
 * Notification metrics. The deliveries by channel type and status are read from the store
 * at scrape time (right after a restart too); the counters count what happened since start,
 * for alerts on `increase(...{status="failed"}[…])`.
 */
export class NotifyMetrics {
  private readonly finished: Counter<"channel_type" | "status">;
  private readonly attempts: Counter<"channel_type" | "outcome">;

  constructor(db: Db, metrics: MetricsRegistry) {
    const registers = [metrics.registry];
    // A series seen once stays, at 0 when its rows are gone (e.g. no pending delivery left).
    const seen = new Set<string>();
    new Gauge({
      name: "snapdb_notification_deliveries",
      help: "Notification deliveries in the store, by channel type and status.",
      labelNames: ["channel_type", "status"] as const,
      registers,
      async collect() {
        const rows = await rawAll<{ type: string; status: string; n: number }>(db, sql`SELECT channel_type AS type, status, count(*) AS n FROM notification_deliveries GROUP BY channel_type, status`, [
          "n",
        ]);
        for (const key of seen) this.set(JSON.parse(key), 0);
        for (const r of rows) {
          const labels = { channel_type: r.type, status: r.status };
          seen.add(JSON.stringify(labels));
          this.set(labels, r.n);
        }
      },
    });
    this.finished = new Counter({
      name: "snapdb_notification_deliveries_finished_total",
      help: "Notification deliveries that ended (delivered or failed) since start, by channel type.",
      labelNames: ["channel_type", "status"] as const,
      registers,
    });
    this.attempts = new Counter({
      name: "snapdb_notification_delivery_attempts_total",
      help: "Notification send attempts since start, by channel type and outcome (delivered, retry, failed).",
      labelNames: ["channel_type", "outcome"] as const,
      registers,
    });
  }

  attempt(channelType: string, outcome: "delivered" | "retry" | "failed"): void {
    this.attempts.inc({ channel_type: channelType, outcome });
    if (outcome !== "retry") this.finished.inc({ channel_type: channelType, status: outcome });
  }
}
