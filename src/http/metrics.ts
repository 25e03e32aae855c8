/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
 * text exposition format. Enough for snapdb's own metrics without a dependency.
 */
type Labels = Record<string, string>;

const labelKey = (labels: Labels) =>
  Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`)
    .join(",");

const withLabels = (name: string, key: string) => (key ? `${name}{${key}}` : name);

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string, readonly type: "counter" | "gauge" = "counter") {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  set(labels: Labels, value: number): void {
    this.values.set(labelKey(labels), value);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [key, value] of this.values) lines.push(`${withLabels(this.name, key)} ${value}`);
    return lines.join("\n");
  }
}

export class Histogram implements Metric {
  private series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}
  observe(labels: Labels, value: number): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    this.buckets.forEach((le, i) => {
      if (value <= le) s!.counts[i]!++;
    });
    s.sum += value;
    s.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const sep = key ? `${key},` : "";
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket{${sep}le="${le}"} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      lines.push(`${withLabels(`${this.name}_sum`, key)} ${s.sum}`);
      lines.push(`${withLabels(`${this.name}_count`, key)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

export class MetricsRegistry {
  private metrics: Metric[] = [];
  /** Computed at scrape time (queue depth, jobs by status) instead of kept in step by hand. */
  private collectors: (() => void)[] = [];

  readonly httpRequests = this.register(
    new Counter("snapdb_http_requests_total", "HTTP requests by method, route and status."),
  );
  readonly httpDuration = this.register(
    new Histogram("snapdb_http_request_duration_seconds", "HTTP request latency by method and route.", [
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]),
  );

  register<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }

  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  render(): string {
    for (const collect of this.collectors) collect();
    return this.metrics.map((m) => m.render()).join("\n") + "\n";
  }
}
