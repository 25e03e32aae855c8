import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { AuditPage, AuditQuery } from "./model.ts";
import { listAuditEvents } from "./service.ts";

const LIST = "audit-log";

/** The audit log is read-only over HTTP: there is deliberately no write route. */
export function auditRoutes(kit: HttpKit) {
  return new Elysia({ name: "snapdb-audit" }).use(kit.auth).get(
    "/audit-log",
    async ({ query, ctx }) => {
      const page = await listAuditEvents(ctx, query, kit.cursors.request(LIST, ctx.orgId, query));
      return kit.cursors.answer(LIST, ctx.orgId, page);
    },
    {
      scope: "audit.read",
      query: AuditQuery,
      response: { 200: AuditPage },
      detail: { summary: "List audit events, newest first", tags: [TAGS.audit.name] },
    },
  );
}
