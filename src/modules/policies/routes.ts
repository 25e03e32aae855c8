import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia, t } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { Policy, PolicyCreate, PolicyDeleteQuery, PolicyListQuery, PolicyPage, PolicyParams, PolicyPatch } from "./model.ts";
import { createPolicy, deletePolicy, getPolicy, listPolicies, updatePolicy } from "./service.ts";

const LIST = "backup-policies";
const tags = [TAGS.policies.name];

export function policyRoutes(kit: HttpKit) {
  const limits = { maxTimeoutSeconds: kit.config.runner.maxTimeoutSeconds };
  return new Elysia({ name: "snapdb-policies" })
    .use(kit.auth)
    .post(
      "/backup-policies",
      async ({ body, ctx, set }) => {
        const policy = await createPolicy(ctx, limits, body);
        set.status = 201;
        return policy;
      },
      {
        scope: "backup.write",
        body: PolicyCreate,
        response: { 201: Policy },
        detail: { summary: "Create a backup policy", tags },
      },
    )
    .get(
      "/backup-policies",
      async ({ query, ctx }) => {
        const page = await listPolicies(ctx, query, kit.cursors.request(LIST, ctx.orgId, query));
        return kit.cursors.answer(LIST, ctx.orgId, page);
      },
      {
        scope: "backup.read",
        query: PolicyListQuery,
        response: { 200: PolicyPage },
        detail: { summary: "List backup policies, newest first", tags },
      },
    )
    .get("/backup-policies/:id", async ({ params, ctx }) => getPolicy(ctx, params.id), {
      scope: "backup.read",
      params: PolicyParams,
      response: { 200: Policy },
      detail: { summary: "Get a backup policy", tags },
    })
    .patch("/backup-policies/:id", async ({ params, body, ctx }) => updatePolicy(ctx, kit.scheduler, limits, params.id, body), {
      scope: "backup.write",
      params: PolicyParams,
      body: PolicyPatch,
      response: { 200: Policy },
      detail: {
        summary: "Update a backup policy",
        description:
          "Partial update. Nested objects (retention, compression, encryption) merge field by field; `encryption.recipients` is replaced as a whole. A new schedule or zone applies to the attached data sources at once.",
        tags,
      },
    })
    .delete(
      "/backup-policies/:id",
      async ({ params, query, ctx, set }) => {
        await deletePolicy(ctx, kit.scheduler, params.id, query.cascade === "true");
        set.status = 204;
      },
      {
        scope: "backup.write",
        params: PolicyParams,
        query: PolicyDeleteQuery,
        response: { 204: t.Void() },
        detail: { summary: "Delete a backup policy", description: "409 while the policy is attached, unless `?cascade=true`, which detaches it first (jobs stay).", tags },
      },
    );
}
