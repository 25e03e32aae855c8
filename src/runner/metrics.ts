import { rawAll, rawGet } from "../db/raw.ts";
import { sql } from "drizzle-orm";
import { Counter, Gauge, Histogram } from "prom-client";
import type { Db } from "../db/client.ts";
import type { MetricsRegistry } from "../http/metrics.ts";

interface JobLabels {
  dataSourceId: string;
  orgId: string;
}

const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "canceled"] as const;
const DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 14400, 86400];

/**
 * The runner's Prometheus metrics. Counts by status and the last success per data source
 * are read from the store at scrape time, so they are right after a restart too, and a
 * deleted data source's series goes with it (a stale timestamp would keep a "backup too
 * old" alert firing forever).
 */
export class RunnerMetrics {
  private readonly runningJobs: Gauge;
  private readonly bytes: Counter<"kind">;
  private readonly finished: Counter<"code" | "status">;
  private readonly duration: Histogram;
  private readonly restoresFinished: Counter<"code" | "status">;
  private readonly restoreDuration: Histogram;

  constructor(db: Db, metrics: MetricsRegistry) {
    const registers = [metrics.registry];
    new Gauge({
      name: "snapdb_backup_jobs",
      help: "Backup jobs by status (from the store).",
      labelNames: ["status"] as const,
      registers,
      async collect() {
        const counts = await rawAll<{ status: string; n: number }>(db, sql`SELECT status, count(*) AS n FROM backup_jobs GROUP BY status`, ["n"]);
        for (const status of JOB_STATUSES) this.set({ status }, counts.find((c) => c.status === status)?.n ?? 0);
      },
    });
    new Gauge({
      name: "snapdb_backup_last_success_timestamp_seconds",
      help: "Finish time of the newest successful backup per data source.",
      labelNames: ["data_source_id"] as const,
      registers,
      async collect() {
        const last = await rawAll<{ data_source_id: string; at: number }>(
          db,
          sql`SELECT j.data_source_id, max(j.finished_at) AS at FROM backup_jobs j JOIN data_sources d ON d.id = j.data_source_id
              WHERE j.status = 'succeeded' GROUP BY j.data_source_id`,
          ["at"],
        );
        this.reset();
        for (const row of last) this.set({ data_source_id: row.data_source_id }, Math.floor(row.at / 1000));
      },
    });
    new Gauge({
      name: "snapdb_runner_queue_depth",
      help: "Queued backup jobs.",
      registers,
      async collect() {
        this.set((await rawGet<{ n: number }>(db, sql`SELECT count(*) AS n FROM backup_jobs WHERE status = 'queued'`, ["n"]))?.n ?? 0);
      },
    });
    this.runningJobs = new Gauge({ name: "snapdb_runner_running_jobs", help: "Backup jobs running now.", registers });
    this.bytes = new Counter({
      name: "snapdb_backup_bytes_total",
      help: "Bytes of successful backups: dump (tool output) and stored (after compression and encryption).",
      labelNames: ["kind"] as const,
      registers,
    });
    this.finished = new Counter({
      name: "snapdb_backup_jobs_finished_total",
      help: "Backup jobs finished since start, by status and error code.",
      labelNames: ["code", "status"] as const,
      registers,
    });
    this.duration = new Histogram({ name: "snapdb_backup_duration_seconds", help: "Duration of successful backups.", buckets: DURATION_BUCKETS, registers });
    this.restoresFinished = new Counter({
      name: "snapdb_restores_finished_total",
      help: "Restores finished since start, by status and error code.",
      labelNames: ["code", "status"] as const,
      registers,
    });
    this.restoreDuration = new Histogram({ name: "snapdb_restore_duration_seconds", help: "Duration of successful restores.", buckets: DURATION_BUCKETS, registers });
  }

  setRunning(n: number): void {
    this.runningJobs.set(n);
  }

  recordSuccess(_job: JobLabels, sizeBytes: number, storedBytes: number, durationMs: number): void {
    this.bytes.inc({ kind: "dump" }, sizeBytes);
    this.bytes.inc({ kind: "stored" }, storedBytes);
    this.finished.inc({ code: "", status: "succeeded" });
    this.duration.observe(durationMs / 1000);
  }

  recordFailure(_job: JobLabels, code: string): void {
    this.finished.inc({ code, status: code === "CANCELED" ? "canceled" : "failed" });
  }

  /** A restore's end: `code` is null for a success (then its duration is observed). */
  recordRestore(status: "succeeded" | "failed" | "canceled", code: string | null, durationMs: number): void {
    this.restoresFinished.inc({ code: code ?? "", status });
    if (status === "succeeded") this.restoreDuration.observe(durationMs / 1000);
  }
}
