import { and, eq, inArray } from "drizzle-orm";
import { storageDestinations } from "../../db/schema.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { deleteObjectQuietly, type StorageRegistry } from "../../storage/registry.ts";
import type { StoredBackupFile } from "./service.ts";

/**
 * The cascade's file removal through the storage registry: each job's object is deleted on
 * its own destination. Failures (destination gone or unreachable) do not undo the delete;
 * they are reported through `onError` so the operator can clean up by hand.
 */
export function removeWithStorage(storage: StorageRegistry, onError: (file: StoredBackupFile, err: unknown) => void) {
  return async (ctx: ServiceContext, files: StoredBackupFile[]) => {
    const ids = [...new Set(files.map((f) => f.destinationId).filter((d): d is string => d !== null))];
    const rows = ids.length
      ? await ctx.db
          .select()
          .from(storageDestinations)
          .where(and(eq(storageDestinations.orgId, ctx.orgId), inArray(storageDestinations.id, ids)))
      : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const file of files) {
      const row = file.destinationId ? byId.get(file.destinationId) : undefined;
      if (!row) {
        onError(file, new Error("the job's storage destination no longer exists"));
        continue;
      }
      await deleteObjectQuietly(storage, row, file.objectKey, (err) => onError(file, err));
    }
  };
}
