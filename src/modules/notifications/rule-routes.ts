import { Elysia, t } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { TAGS } from "../../http/openapi-tags.ts";
import { IdParams, Rule, RuleCreate, RulePage, RuleQuery, RuleUpdate } from "./model.ts";
import { createRule, deleteRule, getRule, listRules, updateRule } from "./rules.ts";

const LIST = "notification-rules";
const tags = [TAGS.notifications.name];

export function ruleRoutes(kit: HttpKit) {
  return new Elysia({ name: "snapdb-notification-rules" })
    .use(kit.auth)
    .post(
      "/notification-rules",
      async ({ body, ctx, set }) => {
        const rule = await createRule(ctx, body);
        set.status = 201;
        return rule;
      },
      {
        scope: "notify.write",
        body: RuleCreate,
        response: { 201: Rule },
        detail: {
          summary: "Create a notification rule",
          description:
            "Routes `events` of a data source (`dataSourceId`), of backups under a policy (`policyId`), or of the whole organisation " +
            "(neither) to a channel. Events: `backup.succeeded`, `backup.failed`, `backup.stale` (no success for longer than the " +
            "schedule implies: twice the most frequent attached policy's interval plus its timeout, or `staleAfterSeconds`), " +
            "`backup.recovered` (the first success after a failure or a stale period), `restore.succeeded`, `restore.failed` " +
            "(matched on the restore's source or target data source), `drill.succeeded`, `drill.failed`.",
          tags,
        },
      },
    )
    .get(
      "/notification-rules",
      async ({ query, ctx }) => {
        return kit.cursors.answer(LIST, ctx.orgId, await listRules(ctx, query, kit.cursors.request(LIST, ctx.orgId, query)));
      },
      { scope: "backup.read", query: RuleQuery, response: { 200: RulePage }, detail: { summary: "List notification rules, newest first", tags } },
    )
    .get("/notification-rules/:id", async ({ params, ctx }) => getRule(ctx, params.id), {
      scope: "backup.read",
      params: IdParams,
      response: { 200: Rule },
      detail: { summary: "Get a notification rule", tags },
    })
    .patch("/notification-rules/:id", async ({ params, body, ctx }) => updateRule(ctx, params.id, body), {
      scope: "notify.write",
      params: IdParams,
      body: RuleUpdate,
      response: { 200: Rule },
      detail: { summary: "Update a notification rule", description: "`null` removes `dataSourceId`, `policyId` or `staleAfterSeconds`.", tags },
    })
    .delete(
      "/notification-rules/:id",
      async ({ params, ctx, set }) => {
        await deleteRule(ctx, params.id);
        set.status = 204;
      },
      { scope: "notify.write", params: IdParams, response: { 204: t.Void({ description: "No content" }) }, detail: { summary: "Delete a notification rule", tags } },
    );
}
