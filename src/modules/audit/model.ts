import { t } from "elysia";
import { oneOf } from "../../http/one-of.ts";
import { AUDIT_ACTIONS, AUDIT_TARGET_TYPES } from "../../audit/actions.ts";
import { PageQuery, pageOf } from "../../http/pagination.ts";

export const AuditEvent = t.Object(
  {
    id: t.String({ examples: ["aud_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    occurredAt: t.String({ format: "date-time" }),
    actor: t.Object({ type: t.Union([t.Literal("user"), t.Literal("system")]), id: t.String() }),
    action: oneOf(AUDIT_ACTIONS, { examples: ["data_source.created"] }),
    targetType: oneOf(AUDIT_TARGET_TYPES, { examples: ["data_source"] }),
    targetId: t.String(),
    requestId: t.Union([t.String(), t.Null()]),
    ip: t.Union([t.String(), t.Null()]),
    metadata: t.Record(t.String(), t.Unknown()),
  },
  { $id: "#/components/schemas/AuditEvent", title: "AuditEvent" },
);

const commaList = (what: string) => t.Optional(t.String({ maxLength: 2000, description: `Comma-separated ${what}; matches any of them.` }));

export const AuditQuery = t.Object(
  {
    ...PageQuery,
    action: commaList("actions, e.g. `data_source.created,data_source.deleted`"),
    targetType: t.Optional(t.String({ maxLength: 100 })),
    targetId: t.Optional(t.String({ maxLength: 200 })),
    actorId: commaList("actor ids"),
    from: t.Optional(t.String({ maxLength: 40, description: "RFC 3339 time; events at or after it." })),
    to: t.Optional(t.String({ maxLength: 40, description: "RFC 3339 time; events before it." })),
  },
  { additionalProperties: false },
);

export const AuditPage = pageOf(AuditEvent);
