import { and, inArray, type SQL } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import { restores } from "../../db/schema.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowMs } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";

type RestoreRow = typeof restores.$inferSelect;

/** What a manual restore request decides; the rest of its row is that of any restore just queued. */
export type QueuedRestoreFields = Pick<RestoreRow, "backupJobId" | "sourceDataSourceId" | "targetDataSourceId" | "targetDatabase" | "clean" | "databases" | "targetTime" | "targetDirectory"> &
  Partial<Pick<RestoreRow, "walDelivery">>;

/**
 * Queues a manual restore: in one transaction, refused with CONFLICT while another restore
 * into the same place (`place`: its condition on the restores table, and its name in the
 * message) is queued or running, then the row and its `restore.queued` audit record.
 */
export async function queueRestore(ctx: ServiceContext, place: { where: SQL; name: string }, fields: QueuedRestoreFields, metadata: Record<string, unknown>): Promise<RestoreRow> {
  const now = nowMs();
  return await ctx.db.transaction(async (tx) => {
    const busy = (
      await tx
        .select({ id: restores.id })
        .from(restores)
        .where(and(place.where, inArray(restores.status, ["queued", "running"])))
    )[0];
    if (busy) throw new AppError("CONFLICT", `a restore into this ${place.name} is already queued or running (${busy.id})`);
    const row: RestoreRow = {
      id: newId("rst", now),
      orgId: ctx.orgId,
      walDelivery: null,
      ...fields,
      status: "queued",
      queuedAt: now,
      startedAt: null,
      finishedAt: null,
      bytesRead: 0,
      bytesWritten: 0,
      error: null,
      notes: null,
      planId: null,
      mode: null,
      trigger: "manual",
      verification: null,
      nodeId: null,
      cancelRequestedAt: null,
      leaseUntil: null,
    };
    await tx.insert(restores).values(row);
    await recordAudit(tx, ctx, { action: "restore.queued", targetType: "restore", targetId: row.id, metadata });
    return row;
  });
}
