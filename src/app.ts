import { Elysia } from "elysia";
import type { Config } from "./config/schema.ts";
import type { Store } from "./db/client.ts";
import { authPlugin, bearerToken, METRICS_SCOPE, type TokenVerifier } from "./http/auth.ts";
import { jsonBody } from "./http/body.ts";
import { refuseNul } from "./http/no-nul.ts";
import { useStrictDateTimeFormat } from "./http/date-time-format.ts";
import { errorHandler } from "./http/errors.ts";
import { healthRoutes, type Readiness } from "./http/health.ts";
import type { MetricsRegistry } from "./http/metrics.ts";
import { openapiRoutes } from "./http/openapi.ts";
import { LoginCodes } from "./http/ui/login-codes.ts";
import { uiRoutes } from "./http/ui/routes.ts";
import type { Cursors } from "./http/pagination.ts";
import { requestMeta } from "./http/request-meta.ts";
import type { HttpKit } from "./http/kit.ts";
import type { Logger } from "./lib/logger.ts";
import type { SecretBox } from "./crypto/secrets.ts";
import { AppError } from "./lib/errors.ts";
import { VERSION } from "./version.ts";
import { auditRoutes } from "./modules/audit/routes.ts";
import { dataSourceRoutes } from "./modules/data-sources/routes.ts";
import { destinationRoutes } from "./modules/destinations/routes.ts";
import { downloadRoutes } from "./modules/downloads/routes.ts";
import type { StorageRegistry } from "./storage/registry.ts";
import { policyRoutes } from "./modules/policies/routes.ts";
import { attachmentRoutes } from "./modules/attachments/routes.ts";
import type { ScheduleSync } from "./scheduler/types.ts";
import type { JobControl } from "./runner/control.ts";
import { jobRoutes } from "./modules/jobs/routes.ts";
import { restoreRoutes } from "./modules/restores/routes.ts";
import { notificationRoutes } from "./modules/notifications/routes.ts";
import { restorePlanRoutes } from "./modules/restore-plans/routes.ts";
import { nodeRoutes } from "./modules/nodes/routes.ts";

export interface AppDeps {
  config: Config;
  store: Store;
  logger: Logger;
  verifyToken: TokenVerifier;
  cursors: Cursors;
  secrets: SecretBox;
  metrics: MetricsRegistry;
  readiness: Readiness;
  storage: StorageRegistry;
  scheduler: ScheduleSync;
  /** The runner, as the jobs API sees it (wake, cancel, live progress). */
  jobs: JobControl;
  /** One-time dashboard login codes (`snapdb ui-link`); a fresh in-memory set by default. */
  loginCodes?: LoginCodes;
}

/** Builds the whole HTTP API: the kit (errors, body, request ids, metrics), then every module. */
export function buildApp(deps: AppDeps) {
  const { config, logger, metrics } = deps;
  useStrictDateTimeFormat();
  const kit: HttpKit = {
    db: deps.store.db,
    config,
    logger,
    cursors: deps.cursors,
    secrets: deps.secrets,
    auth: authPlugin(deps.verifyToken, deps.store.db),
    storage: deps.storage,
    scheduler: deps.scheduler,
  };
  // Any org's token verifies, but only the operator scope opens the metrics (they span orgs).
  const metricsGuard = config.http.metricsPublic
    ? undefined
    : async (request: Request) => {
        const principal = await deps.verifyToken(bearerToken(request.headers.get("authorization")));
        if (!principal.scopes.has(METRICS_SCOPE)) throw new AppError("FORBIDDEN", `token lacks the ${METRICS_SCOPE} scope`);
      };

  // `normalize: false`: unknown body fields are rejected, never silently dropped.
  const app: Elysia<any, any, any, any, any, any, any> = new Elysia({ normalize: false })
    .use(errorHandler(logger))
    .onRequest(({ request, set }) => {
      set.headers["x-request-id"] = requestMeta(request).id;
    })
    .use(jsonBody(config.http.bodyLimitBytes))
    .use(refuseNul())
    .onAfterResponse({ as: "global" }, ({ request, route, set }) => {
      const meta = requestMeta(request);
      const seconds = (performance.now() - meta.startedAt) / 1000;
      const status = String(set.status ?? 200);
      const labels = { method: request.method, route: route || "unmatched" };
      metrics.httpRequests.inc({ ...labels, status });
      metrics.httpDuration.observe(labels, seconds);
      logger.debug("request", { requestId: meta.id, ...labels, status, ms: Math.round(seconds * 1000) });
    })
    .use(openapiRoutes(() => app, VERSION, config.http.publicUrl))
    .use(healthRoutes(deps.readiness, metrics, metricsGuard))
    .use(uiRoutes(kit, deps.verifyToken, deps.loginCodes ?? new LoginCodes()))
    .use(auditRoutes(kit))
    .use(downloadRoutes(kit))
    .use(destinationRoutes(kit))
    .use(policyRoutes(kit))
    .use(attachmentRoutes(kit))
    .use(dataSourceRoutes(kit))
    .use(jobRoutes(kit, deps.jobs))
    .use(restoreRoutes(kit, deps.jobs))
    .use(notificationRoutes(kit))
    .use(restorePlanRoutes(kit, deps.jobs))
    .use(nodeRoutes(kit));
  return app;
}
