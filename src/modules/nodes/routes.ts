import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { NodePage, NodeQuery } from "./model.ts";
import { listNodes } from "./service.ts";

const LIST = "nodes";

/** The fleet's nodes: read-only, any organisation's `backup.read` token (they serve every organisation). */
export function nodeRoutes(kit: HttpKit) {
  const leaseMs = kit.config.runner.leaseSeconds * 1000;
  return new Elysia({ name: "snapdb-nodes" }).use(kit.auth).get(
    "/nodes",
    async ({ query, ctx }) => {
      const page = await listNodes(ctx.db, leaseMs, kit.cursors.request(LIST, ctx.orgId, query));
      return kit.cursors.answer(LIST, ctx.orgId, page);
    },
    {
      scope: "backup.read",
      query: NodeQuery,
      response: { 200: NodePage },
      detail: {
        summary: "List the daemons sharing the store (fleet nodes), newest first",
        description:
          "Every daemon on the same store is a node: with the embedded store there is one. `status` is `down` once a node stopped cleanly or sent no heartbeat for `runner.leaseSeconds`; `running` counts its running backup jobs and restores across organisations.",
        tags: [TAGS.nodes.name],
      },
    },
  );
}
