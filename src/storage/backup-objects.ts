import { isFolderKey } from "./keys.ts";
import type { StorageDriver } from "./types.ts";

/**
 * Removes a job's stored backup: its one object, or for a whole-server job (a key ending in
 * `/`) every object in its folder plus the part keys it planned (`partKeys`). With
 * `uploads`, also what interrupted uploads of those keys left (temp files, S3 multipart
 * uploads): for a failed or crashed job. Idempotent; stops at the first storage error.
 */
export async function deleteBackupObjects(driver: StorageDriver, key: string, opts: { partKeys?: readonly (string | null)[]; uploads?: boolean } = {}): Promise<void> {
  const keys = new Set<string>();
  if (!isFolderKey(key)) keys.add(key);
  else {
    // Only keys inside the folder: a part list cannot point a delete elsewhere.
    for (const k of opts.partKeys ?? []) if (k && k.startsWith(key) && !isFolderKey(k)) keys.add(k);
    for await (const o of driver.list(key)) keys.add(o.key);
  }
  for (const k of keys) {
    await driver.delete(k);
    if (opts.uploads) await driver.cleanupUpload(k);
  }
}
