import { Elysia, t } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { TAGS } from "../../http/openapi-tags.ts";
import type { JobControl } from "../../runner/control.ts";
import { Restore } from "../restores/serialize.ts";
import { presentRestore } from "../restores/service.ts";
import { RestorePlan, RestorePlanCreate, RestorePlanListQuery, RestorePlanPage, RestorePlanParams, RestorePlanPatch } from "./model.ts";
import { createPlan, deletePlan, getPlan, listPlans, presentPlan, runPlanNow, updatePlan } from "./service.ts";

const LIST = "restore-plans";
const tags = [TAGS.restorePlans.name];

const RUN_DESCRIPTION =
  "Each run restores the data source's newest successful logical backup of one database whose file is still stored (a physical policy's base backups are never picked, however new; a whole-server data source, `database: \"*\"`, is refused with 400 at /dataSourceId) and is a restore (`/restores/{id}`) with `planId`, `mode`, `trigger` and, once over, `verification`. " +
  "A run passes when the restore tool succeeded, every table of the backup's fingerprint (policy `fingerprint: true`) exists with exactly its row count, and every check returns what it expects; " +
  "otherwise it fails with the restore's error code, or VERIFICATION_FAILED saying which tables and checks differ. A run that cannot start fails with a code too (NO_BACKUP when there is no such backup, CONNECTION_REFUSED, AUTH_FAILED, …): never silently skipped. " +
  "A drill's scratch database is dropped whatever happens, and after a crash at the daemon's next start. Runs share the runner's slots with backups and restores.";

export function restorePlanRoutes(kit: HttpKit, control: JobControl) {
  const present = async (row: Parameters<typeof presentPlan>[1]) => presentPlan(kit.db, row, control);
  return new Elysia({ name: "snapdb-restore-plans" })
    .use(kit.auth)
    .post(
      "/restore-plans",
      async ({ body, ctx, set }) => {
        const row = await createPlan(ctx, kit.scheduler, body);
        set.status = 201;
        return present(row);
      },
      {
        scope: "backup.restore",
        body: RestorePlanCreate,
        response: { 201: RestorePlan },
        detail: {
          summary: "Create a restore plan: a scheduled drill that proves the newest backup restores, or a scheduled refresh of another database",
          description: `${RUN_DESCRIPTION} A refresh never targets the plan's own data source (the same data source and database, or another data source naming the same server and database): 400; a run checks again against the resolved address and fails INVALID_TARGET without writing anything.`,
          tags,
        },
      },
    )
    .get(
      "/restore-plans",
      async ({ query, ctx }) => {
        const page = await listPlans(ctx, query, kit.cursors.request(LIST, ctx.orgId, query));
        return kit.cursors.answer(LIST, ctx.orgId, { items: await Promise.all(page.items.map(present)), hasMore: page.hasMore });
      },
      { scope: "backup.read", query: RestorePlanListQuery, response: { 200: RestorePlanPage }, detail: { summary: "List restore plans, newest first", tags } },
    )
    .get("/restore-plans/:id", async ({ params, ctx }) => present(await getPlan(ctx, params.id)), {
      scope: "backup.read",
      params: RestorePlanParams,
      response: { 200: RestorePlan },
      detail: { summary: "One restore plan, with its next run time and its newest run", tags },
    })
    .patch("/restore-plans/:id", async ({ params, body, ctx }) => present(await updatePlan(ctx, kit.scheduler, params.id, body)), {
      scope: "backup.restore",
      params: RestorePlanParams,
      body: RestorePlanPatch,
      response: { 200: RestorePlan },
      detail: {
        summary: "Update a restore plan",
        description: "Partial update; `target` and `checks` are replaced as a whole, and the result is checked as a create would be. A new schedule applies at once.",
        tags,
      },
    })
    .delete(
      "/restore-plans/:id",
      async ({ params, ctx, set }) => {
        await deletePlan(ctx, kit.scheduler, params.id);
        set.status = 204;
      },
      {
        scope: "backup.restore",
        params: RestorePlanParams,
        response: { 204: t.Void() },
        detail: { summary: "Delete a restore plan", description: "Its past runs stay (they are restores); a run still queued is canceled, a running one finishes.", tags },
      },
    )
    .post(
      "/restore-plans/:id/run-now",
      async ({ params, ctx, set }) => {
        const row = await runPlanNow(ctx, control, params.id);
        set.status = 202;
        return presentRestore(row, control);
      },
      {
        scope: "backup.restore",
        params: RestorePlanParams,
        response: { 202: Restore },
        detail: {
          summary: "Run a restore plan now (→ 202 with the restore it queued; 409 while its previous run is queued or running)",
          description: RUN_DESCRIPTION,
          tags,
        },
      },
    );
}
