import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The metadata store's tables. Ids are prefixed ULIDs (src/lib/ids.ts), so ordering by id
 * is ordering by creation time; every list index starts with org_id and ends with id to
 * serve keyset pages newest first.
 */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    occurredAt: integer("occurred_at").notNull(), // ms since epoch
    actorType: text("actor_type", { enum: ["user", "system"] }).notNull(),
    actorId: text("actor_id").notNull(),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id").notNull(),
    requestId: text("request_id"),
    ip: text("ip"),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  },
  (t) => [
    index("audit_events_org_id_idx").on(t.orgId, t.id),
    index("audit_events_org_action_idx").on(t.orgId, t.action, t.id),
    index("audit_events_org_target_idx").on(t.orgId, t.targetId, t.id),
    index("audit_events_org_actor_idx").on(t.orgId, t.actorId, t.id),
  ],
);
