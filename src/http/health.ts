import { TAGS } from "./openapi-tags.ts";
import { Elysia, t } from "elysia";
import { ErrorBody } from "./errors.ts";
import type { MetricsRegistry } from "./metrics.ts";

/**
 * Named readiness checks that parts of the daemon register as they come up (store,
 * migrations, scheduler, …); `/readyz` is ready when every one passes.
 */
export class Readiness {
  private checks = new Map<string, () => boolean>();
  register(name: string, check: () => boolean): void {
    this.checks.set(name, check);
  }
  failing(): string[] {
    return [...this.checks]
      .filter(([, check]) => {
        try {
          return !check();
        } catch {
          return true;
        }
      })
      .map(([name]) => name);
  }
}

const Alive = t.Object({ status: t.Literal("ok") });
const Ready = t.Object({ status: t.Literal("ready") });

export function healthRoutes(readiness: Readiness, metrics: MetricsRegistry, metricsGuard?: (request: Request) => Promise<void>) {
  return new Elysia({ name: "snapdb-health", detail: { tags: [TAGS.operations.name] } })
    .get("/healthz", () => ({ status: "ok" as const }), {
      response: { 200: Alive },
      detail: { summary: "The process is up", tags: [TAGS.operations.name] },
    })
    .get(
      "/readyz",
      ({ set }) => {
        const failing = readiness.failing();
        if (failing.length === 0) return { status: "ready" as const };
        set.status = 503;
        return { code: "UNAVAILABLE" as const, message: `not ready: ${failing.join(", ")}` };
      },
      {
        response: { 200: Ready, 503: ErrorBody },
        detail: {
          summary: "Ready to serve: store open, migrations applied, scheduler running",
          tags: [TAGS.operations.name],
        },
      },
    )
    .get(
      "/metrics",
      async ({ request, set }) => {
        if (metricsGuard) await metricsGuard(request);
        set.headers["content-type"] = metrics.contentType;
        return metrics.render();
      },
      {
        detail: {
          summary: "Prometheus metrics",
          description:
            "Prometheus text: HTTP requests and latency by method, route template and status; backup jobs by status; " +
            "finished jobs by status and error code; dump and stored bytes; backup durations; queue depth and running jobs; " +
            "finished restores by status and error code and restore durations; the process's CPU time, resident memory, start time and open file descriptors; " +
            "the last successful backup per data source (label `data_source_id`, every organisation's sources, no org ids; " +
            "read from the store at scrape time, so a deleted data source's series is gone at the next scrape). " +
            "Public when `http.metricsPublic` is true (the default; the daemon listens on loopback by default). " +
            "When false, a bearer token whose scope includes `metrics.read` (an operator scope, never in a default token) is required.",
          tags: [TAGS.operations.name],
          responses: {
            200: { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } },
            401: { description: "http.metricsPublic is false and the token is missing or invalid" },
            403: { description: "http.metricsPublic is false and the token lacks the metrics.read scope" },
          },
        },
      },
    );
}
