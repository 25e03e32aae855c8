import type { Tx } from "../db/client.ts";
import { auditEvents } from "../db/schema.ts";
import type { ServiceContext } from "../lib/context.ts";
import { newId } from "../lib/ids.ts";
import { nowMs } from "../lib/clock.ts";
import type { AuditAction, AuditTargetType } from "./actions.ts";

export type { AuditAction, AuditTargetType } from "./actions.ts";

export interface AuditInput {
  action: AuditAction;
  targetType: AuditTargetType;
  targetId: string;
  metadata?: Record<string, unknown>;
}

/** Keys whose values never reach the audit log, at any depth, whatever a caller passes. */
const SECRET_KEY = /pass(word)?|secret|token|private.?key|credential.?value|^key$|master.?key|authorization/i;

export function scrubSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(scrubSecrets);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !SECRET_KEY.test(k))
        .map(([k, v]) => [k, scrubSecrets(v)]),
    );
  }
  return value;
}

/**
 * Writes one audit event inside the caller's transaction, so the event exists exactly
 * when the change it records does.
 */
export async function recordAudit(tx: Tx, ctx: Omit<ServiceContext, "db">, event: AuditInput): Promise<string> {
  const id = newId("aud");
  await tx.insert(auditEvents).values({
    id,
    orgId: ctx.orgId,
    occurredAt: nowMs(),
    actorType: ctx.actor.type,
    actorId: ctx.actor.id,
    action: event.action,
    targetType: event.targetType,
    targetId: event.targetId,
    requestId: ctx.requestId,
    ip: ctx.ip,
    metadata: scrubSecrets(event.metadata ?? {}) as Record<string, unknown>,
  });
  return id;
}
