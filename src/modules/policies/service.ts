import { containsPattern } from "../../db/raw.ts";
import { and, desc, eq, lt, sql, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { Tx } from "../../db/client.ts";
import { attachments, backupPolicies, storageDestinations } from "../../db/schema.ts";
import { isoOf, nowMs } from "../../lib/clock.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { AppError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import type { ScheduleSync } from "../../scheduler/types.ts";
import { isUniqueViolation } from "../../db/unique-violation.ts";
import {
  checkCompression,
  checkCron,
  checkEncryption,
  checkFastCheckpoint,
  checkMethodUnchanged,
  checkRetention,
  checkTimeout,
  checkZone,
  storedRetention,
  DEFAULTS,
  type Algorithm,
  type PolicyMethod,
  type StoredCompression,
  type StoredEncryption,
  type StoredRetention,
} from "./validate.ts";

type PolicyRow = typeof backupPolicies.$inferSelect;
type RetentionInput = Partial<Record<keyof StoredRetention, number | null>>;

export interface PolicyInput {
  name: string;
  scheduleCron: string;
  timezone?: string;
  destinationId: string;
  retention: RetentionInput;
  compression?: { algorithm?: Algorithm; level?: number };
  encryption?: { enabled?: boolean; recipients?: string[] };
  timeoutSeconds?: number;
  retries?: number;
  fingerprint?: boolean;
  method?: PolicyMethod;
  fastCheckpoint?: boolean;
}
export type PolicyPatchInput = Partial<PolicyInput>;

/** The operator's limits a policy must respect. */
export interface PolicyLimits {
  /** runner.maxTimeoutSeconds */
  maxTimeoutSeconds: number;
}

export function toPolicy(row: PolicyRow) {
  return {
    id: row.id,
    name: row.name,
    scheduleCron: row.scheduleCron,
    timezone: row.timezone,
    destinationId: row.destinationId,
    retention: storedRetention(row.retention),
    compression: row.compression as StoredCompression,
    encryption: row.encryption as StoredEncryption,
    timeoutSeconds: row.timeoutSeconds,
    retries: row.retries,
    fingerprint: row.fingerprint,
    method: row.method,
    fastCheckpoint: row.fastCheckpoint,
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
}

const nameTaken = (name: string) => new AppError("CONFLICT", `a policy named ${JSON.stringify(name)} already exists`, [{ path: "/name", message: "already in use" }]);

async function requireDestination(tx: Tx, orgId: string, destinationId: string): Promise<void> {
  const found = (
    await tx
      .select({ id: storageDestinations.id })
      .from(storageDestinations)
      .where(and(eq(storageDestinations.orgId, orgId), eq(storageDestinations.id, destinationId)))
  )[0];
  if (!found) throw new AppError("NOT_FOUND", "storage destination not found", [{ path: "/destinationId", message: "no such storage destination" }]);
}

async function requireNameFree(tx: Tx, orgId: string, name: string, exceptId?: string): Promise<void> {
  const other = (
    await tx
      .select({ id: backupPolicies.id })
      .from(backupPolicies)
      .where(and(eq(backupPolicies.orgId, orgId), eq(backupPolicies.name, name)))
  )[0];
  if (other && other.id !== exceptId) throw nameTaken(name);
}

async function getRow(tx: Tx, orgId: string, id: string): Promise<PolicyRow> {
  const row = (
    await tx
      .select()
      .from(backupPolicies)
      .where(and(eq(backupPolicies.orgId, orgId), eq(backupPolicies.id, id)))
  )[0];
  if (!row) throw new AppError("NOT_FOUND", "backup policy not found");
  return row;
}

/** Runs a write and turns a lost race on the name index into the same 409 as the pre-check. */
async function withNameGuard<T>(name: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (name !== undefined && isUniqueViolation(error, "backup_policies.org_id, backup_policies.name")) throw nameTaken(name);
    throw error;
  }
}

export async function createPolicy(ctx: ServiceContext, limits: PolicyLimits, input: PolicyInput) {
  const values = {
    timeoutSeconds: checkTimeout(input.timeoutSeconds, limits.maxTimeoutSeconds),
    scheduleCron: checkCron(input.scheduleCron),
    timezone: checkZone(input.timezone ?? DEFAULTS.timezone),
    retention: checkRetention(input.retention),
    compression: checkCompression(input.compression ?? {}),
    encryption: checkEncryption(input.encryption ?? {}),
    method: input.method ?? "logical",
    fastCheckpoint: checkFastCheckpoint(input.method ?? "logical", input.fastCheckpoint),
  };
  const now = nowMs();
  const row: PolicyRow = {
    id: newId("pol"),
    orgId: ctx.orgId,
    name: input.name,
    destinationId: input.destinationId,
    ...values,
    retention: values.retention as unknown as Record<string, number | null>,
    retries: input.retries ?? DEFAULTS.retries,
    fingerprint: input.fingerprint ?? false,
    createdAt: now,
    updatedAt: now,
  };
  await withNameGuard(
    input.name,
    async () =>
      await ctx.db.transaction(async (tx) => {
        await requireDestination(tx, ctx.orgId, input.destinationId);
        await requireNameFree(tx, ctx.orgId, input.name);
        await tx.insert(backupPolicies).values(row);
        await recordAudit(tx, ctx, {
          action: "backup_policy.created",
          targetType: "backup_policy",
          targetId: row.id,
          metadata: { name: row.name, scheduleCron: row.scheduleCron, timezone: row.timezone, destinationId: row.destinationId },
        });
      }),
  );
  return toPolicy(row);
}

export async function getPolicy(ctx: ServiceContext, id: string) {
  return toPolicy(await ctx.db.transaction(async (tx) => getRow(tx, ctx.orgId, id)));
}

export async function listPolicies(ctx: ServiceContext, filters: { destinationId?: string; q?: string }, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(backupPolicies.orgId, ctx.orgId)];
  if (filters.destinationId) where.push(eq(backupPolicies.destinationId, filters.destinationId));
  // Case-insensitive for ASCII on both engines (PostgreSQL's LIKE is not); the pattern's own wildcards are escaped.
  if (filters.q) {
    where.push(sql`lower(${backupPolicies.name}) LIKE ${containsPattern(filters.q.toLowerCase())} ESCAPE '\\'`);
  }
  if (page.beforeId) where.push(lt(backupPolicies.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(backupPolicies)
    .where(and(...where))
    .orderBy(desc(backupPolicies.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: items.map(toPolicy), hasMore };
}

export async function updatePolicy(ctx: ServiceContext, scheduler: ScheduleSync, limits: PolicyLimits, id: string, patch: PolicyPatchInput) {
  const result = await withNameGuard(
    patch.name,
    async () =>
      await ctx.db.transaction(async (tx) => {
        const before = await getRow(tx, ctx.orgId, id);
        const retention = storedRetention(before.retention);
        const next: PolicyRow = {
          ...before,
          name: patch.name ?? before.name,
          scheduleCron: patch.scheduleCron !== undefined ? checkCron(patch.scheduleCron) : before.scheduleCron,
          timezone: patch.timezone !== undefined ? checkZone(patch.timezone) : before.timezone,
          destinationId: patch.destinationId ?? before.destinationId,
          retention: (patch.retention ? checkRetention({ ...retention, ...patch.retention }) : retention) as unknown as Record<string, number | null>,
          compression: patch.compression ? checkCompression(patch.compression, before.compression as StoredCompression) : before.compression,
          encryption: patch.encryption ? checkEncryption(patch.encryption, before.encryption) : before.encryption,
          // Checked only when given: a policy above a since-lowered ceiling stays editable (the runner cuts it).
          timeoutSeconds: patch.timeoutSeconds !== undefined ? checkTimeout(patch.timeoutSeconds, limits.maxTimeoutSeconds) : before.timeoutSeconds,
          retries: patch.retries ?? before.retries,
          fingerprint: patch.fingerprint ?? before.fingerprint,
          method: checkMethodUnchanged(before.method, patch.method),
          fastCheckpoint: patch.fastCheckpoint !== undefined ? checkFastCheckpoint(before.method, patch.fastCheckpoint) : before.fastCheckpoint,
          updatedAt: nowMs(),
        };
        if (patch.destinationId !== undefined) await requireDestination(tx, ctx.orgId, patch.destinationId);
        if (patch.name !== undefined) await requireNameFree(tx, ctx.orgId, patch.name, id);
        const changed = (Object.keys(patch) as (keyof PolicyRow)[]).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(next[k]));
        if (changed.length === 0) return { row: before, reschedule: false };
        await tx.update(backupPolicies).set(next).where(eq(backupPolicies.id, id));
        await recordAudit(tx, ctx, { action: "backup_policy.updated", targetType: "backup_policy", targetId: id, metadata: { changed } });
        return { row: next, reschedule: changed.includes("scheduleCron") || changed.includes("timezone") };
      }),
  );
  if (result.reschedule) await scheduler.syncPolicy(id);
  return toPolicy(result.row);
}

/** 409 while attached; with `cascade` the attachments go first (jobs stay, they are history). */
export async function deletePolicy(ctx: ServiceContext, scheduler: ScheduleSync, id: string, cascade: boolean): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const row = await getRow(tx, ctx.orgId, id);
    const attached = await tx.select({ id: attachments.id, dataSourceId: attachments.dataSourceId }).from(attachments).where(eq(attachments.policyId, id));
    if (attached.length && !cascade) {
      throw new AppError("CONFLICT", `backup policy is attached to ${attached.length} data source(s); detach them first or pass ?cascade=true`);
    }
    for (const att of attached) {
      await tx.delete(attachments).where(eq(attachments.id, att.id));
      await recordAudit(tx, ctx, {
        action: "attachment.deleted",
        targetType: "attachment",
        targetId: att.id,
        metadata: { policyId: id, dataSourceId: att.dataSourceId, cascade: true },
      });
    }
    await tx.delete(backupPolicies).where(eq(backupPolicies.id, id));
    await recordAudit(tx, ctx, {
      action: "backup_policy.deleted",
      targetType: "backup_policy",
      targetId: id,
      metadata: { name: row.name, detachedAttachments: attached.map((a) => a.id) },
    });
  });
  await scheduler.syncPolicy(id);
}
