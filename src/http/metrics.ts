import { collectDefaultMetrics, Counter, Histogram, type Metric, Registry } from "prom-client";

/**
 * The process metrics kept from prom-client's defaults. The rest read V8's heap spaces and GC
 * (zero or meaningless under Bun's JavaScriptCore), `process_heap_bytes` (VmData, gigabytes of
 * address space Bun reserves) or Node-only handle counts.
 */
const PROCESS_METRICS = [
  "process_cpu_user_seconds_total",
  "process_cpu_system_seconds_total",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "process_resident_memory_bytes",
  "process_open_fds",
  "process_max_fds",
] as const;

let processMetrics: Metric[] | undefined;

/**
 * collectDefaultMetrics registers all of its metrics at once, so it runs once per process into
 * a scratch registry and the chosen ones are shared by every app's registry (they describe the
 * process, not an app). Its event-loop monitor is started too but never read: sampled slowly.
 */
function sharedProcessMetrics(): Metric[] {
  if (!processMetrics) {
    const scratch = new Registry();
    collectDefaultMetrics({ register: scratch, eventLoopMonitoringPrecision: 1000 });
    processMetrics = PROCESS_METRICS.map((name) => scratch.getSingleMetric(name)).filter((m): m is Metric => m !== undefined);
  }
  return processMetrics;
}

/**
 * One app's Prometheus registry (never prom-client's global one: tests build many apps in one
 * process). Parts of the daemon add their metrics to `registry`; gauges read from the store
 * compute their values in `collect()` at scrape time.
 */
export class MetricsRegistry {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: "snapdb_http_requests_total",
    help: "HTTP requests by method, route and status.",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: "snapdb_http_request_duration_seconds",
    help: "HTTP request latency by method and route.",
    labelNames: ["method", "route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor() {
    for (const metric of sharedProcessMetrics()) this.registry.registerMetric(metric);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
