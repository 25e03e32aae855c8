import { and, asc, eq, lt } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { Db } from "../db/client.ts";
import { storageDestinations, walSegments } from "../db/schema.ts";
import type { Logger } from "../lib/logger.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { baseBackupsOf } from "./recovery-window.ts";
import { WAL_ARCHIVER_ACTOR } from "./wal-upload.ts";

/**
 * Every archived WAL file of a source that is gone (objects, then rows): what the archiver
 * stored between the source's delete and noticing it. Best effort; returns how many went.
 */
export async function removeAllWal(db: Db, storage: StorageRegistry, logger: Logger, dataSourceId: string): Promise<number> {
  let removed = 0;
  for (const segment of await db.select().from(walSegments).where(eq(walSegments.dataSourceId, dataSourceId))) {
    const destination = (await db.select().from(storageDestinations).where(eq(storageDestinations.id, segment.destinationId)))[0];
    try {
      if (destination) await storage.driverFor(destination).delete(segment.objectKey);
      await db.delete(walSegments).where(and(eq(walSegments.dataSourceId, dataSourceId), eq(walSegments.name, segment.name)));
      removed++;
    } catch (err) {
      logger.warn("could not delete an archived WAL file of a deleted data source", { dataSourceId, segment: segment.name, error: err });
    }
  }
  return removed;
}

/**
 * The WAL half of a physical policy's retention, after its base backups were thinned: every
 * archived segment older than the start of the oldest base backup still kept is deleted
 * (object, then row), since no restore can use it any more. Timeline history files stay
 * (a few bytes each). With no base backup kept, nothing is deleted: what the archive holds
 * is all there is. Returns how many segments went; a failed delete stays for the next run.
 */
export async function pruneWal(db: Db, storage: StorageRegistry, logger: Logger, dataSourceId: string): Promise<number> {
  const backups = await baseBackupsOf(db, dataSourceId);
  if (!backups.length) return 0;
  const keepFrom = Math.min(...backups.map((b) => b.info.startSegno));
  const old = await db
    .select()
    .from(walSegments)
    .where(and(eq(walSegments.dataSourceId, dataSourceId), lt(walSegments.segno, keepFrom)))
    .orderBy(asc(walSegments.segno));
  if (!old.length) return 0;
  const destinations = new Map<string, typeof storageDestinations.$inferSelect | undefined>();
  const removed: string[] = [];
  for (const segment of old) {
    if (!destinations.has(segment.destinationId)) {
      destinations.set(segment.destinationId, (await db.select().from(storageDestinations).where(eq(storageDestinations.id, segment.destinationId)))[0]);
    }
    const destination = destinations.get(segment.destinationId);
    try {
      // A destination deleted since: its objects went with it (or are the operator's to remove).
      if (destination) await storage.driverFor(destination).delete(segment.objectKey);
    } catch (err) {
      logger.warn("retention could not delete an archived WAL segment; retried at the next run", { dataSourceId, segment: segment.name, error: err });
      continue;
    }
    await db.delete(walSegments).where(and(eq(walSegments.dataSourceId, dataSourceId), eq(walSegments.name, segment.name)));
    removed.push(segment.name);
  }
  if (removed.length) {
    await db.transaction(async (tx) =>
      recordAudit(
        tx,
        { orgId: old[0]!.orgId, actor: WAL_ARCHIVER_ACTOR, requestId: null, ip: null },
        {
          action: "wal_archive.pruned",
          targetType: "data_source",
          targetId: dataSourceId,
          metadata: { reason: "retention", segments: removed.length, first: removed[0], last: removed.at(-1), keptFromSegno: keepFrom },
        },
      ),
    );
  }
  return removed.length;
}
