import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { Counter, Histogram, type MetricsRegistry } from "../http/metrics.ts";

interface JobLabels {
  dataSourceId: string;
  orgId: string;
}

/**
 * The runner's Prometheus metrics. Counts by status and the last success per data source
 * are read from the store at scrape time, so they are right after a restart too.
 */
export class RunnerMetrics {
  private readonly jobsByStatus = new Counter("snapdb_backup_jobs", "Backup jobs by status (from the store).", "gauge");
  private readonly lastSuccess = new Counter("snapdb_backup_last_success_timestamp_seconds", "Finish time of the newest successful backup per data source.", "gauge");
  private readonly queueDepth = new Counter("snapdb_runner_queue_depth", "Queued backup jobs.", "gauge");
  private readonly runningJobs = new Counter("snapdb_runner_running_jobs", "Backup jobs running now.", "gauge");
  private readonly bytes = new Counter("snapdb_backup_bytes_total", "Bytes of successful backups: dump (tool output) and stored (after compression and encryption).");
  private readonly finished = new Counter("snapdb_backup_jobs_finished_total", "Backup jobs finished since start, by status and error code.");
  private readonly duration = new Histogram("snapdb_backup_duration_seconds", "Duration of successful backups.", [1, 5, 15, 60, 300, 900, 3600, 14400, 86400]);

  constructor(db: Db, registry: MetricsRegistry) {
    for (const m of [this.jobsByStatus, this.lastSuccess, this.queueDepth, this.runningJobs, this.bytes, this.finished, this.duration]) registry.register(m);
    registry.onCollect(() => {
      const counts = db.all<{ status: string; n: number }>(sql`SELECT status, count(*) AS n FROM backup_jobs GROUP BY status`);
      for (const s of ["queued", "running", "succeeded", "failed", "canceled"]) {
        this.jobsByStatus.set({ status: s }, counts.find((c) => c.status === s)?.n ?? 0);
      }
      this.queueDepth.set({}, counts.find((c) => c.status === "queued")?.n ?? 0);
      const last = db.all<{ data_source_id: string; at: number }>(
        sql`SELECT data_source_id, max(finished_at) AS at FROM backup_jobs WHERE status = 'succeeded' GROUP BY data_source_id`,
      );
      for (const row of last) this.lastSuccess.set({ data_source_id: row.data_source_id }, Math.floor(row.at / 1000));
    });
  }

  setRunning(n: number): void {
    this.runningJobs.set({}, n);
  }

  recordSuccess(_job: JobLabels, sizeBytes: number, storedBytes: number, durationMs: number): void {
    this.bytes.inc({ kind: "dump" }, sizeBytes);
    this.bytes.inc({ kind: "stored" }, storedBytes);
    this.finished.inc({ status: "succeeded", code: "" });
    this.duration.observe({}, durationMs / 1000);
  }

  recordFailure(_job: JobLabels, code: string): void {
    this.finished.inc({ status: code === "CANCELED" ? "canceled" : "failed", code });
  }
}
