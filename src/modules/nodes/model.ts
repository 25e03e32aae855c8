import { t } from "elysia";
import { Int } from "../../http/json-int.ts";
import { PageQuery, pageOf } from "../../http/pagination.ts";

/** A daemon sharing the store. Fleet-wide, not per organisation; nothing secret (no key fingerprint). */
export const Node = t.Object(
  {
    id: t.String({ examples: ["node_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"], description: "Minted once and kept in the node's data dir: a restarted daemon is the same node." }),
    hostname: t.String(),
    labels: t.Record(t.String(), t.String(), { description: "The node's `node.labels` (env `SNAPDB_NODE_LABELS`), what data sources' `runOn.labels` are matched against." }),
    version: t.String({ description: "The snapdb version the node runs." }),
    startedAt: t.String({ format: "date-time" }),
    lastSeenAt: t.String({ format: "date-time", description: "Its last heartbeat (every `runner.leaseSeconds / 3`)." }),
    status: t.Union([t.Literal("up"), t.Literal("down")], {
      description: "`down`: stopped cleanly, or no heartbeat for longer than `runner.leaseSeconds` (its running jobs then move to other nodes).",
    }),
    running: Int({ description: "Backup jobs and restores running on it now (every organisation's)." }),
  },
  { $id: "#/components/schemas/Node", title: "Node" },
);

export const NodeQuery = t.Object({ ...PageQuery }, { additionalProperties: false });

export const NodePage = pageOf(Node);
