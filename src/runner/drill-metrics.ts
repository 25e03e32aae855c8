import { rawAll } from "../db/raw.ts";
import { sql } from "drizzle-orm";
import { Gauge } from "prom-client";
import type { Db } from "../db/client.ts";
import type { MetricsRegistry } from "../http/metrics.ts";

/**
 * `snapdb_restore_drill_last_success_timestamp_seconds{data_source_id}`: when a drill last
 * proved a data source's backup restores (its run finished succeeded: restored and verified).
 * Read from the store at scrape time, like the backup gauges: right after a restart, and a
 * deleted data source's series goes with it. Alert on `time() - … > 2 * 86400`, say.
 * (Restore durations, drills included, are `snapdb_restore_duration_seconds`.)
 */
export function registerDrillMetrics(db: Db, metrics: MetricsRegistry): void {
  new Gauge({
    name: "snapdb_restore_drill_last_success_timestamp_seconds",
    help: "Finish time of the newest passed restore drill per data source (the source whose backup was restored).",
    labelNames: ["data_source_id"] as const,
    registers: [metrics.registry],
    async collect() {
      const last = await rawAll<{ data_source_id: string; at: number }>(
        db,
        sql`SELECT r.source_data_source_id AS data_source_id, max(r.finished_at) AS at FROM restores r JOIN data_sources d ON d.id = r.source_data_source_id
            WHERE r.mode = 'drill' AND r.status = 'succeeded' GROUP BY r.source_data_source_id`,
        ["at"],
      );
      this.reset();
      for (const row of last) this.set({ data_source_id: row.data_source_id }, Math.floor(row.at / 1000));
    },
  });
}
