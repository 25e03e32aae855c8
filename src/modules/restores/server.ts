import type { StoredPart } from "../../db/schema.ts";
import { pinTarget, ProbeError } from "../../engines/network.ts";
import { inspectDatabase, RestoreSetupError } from "../../engines/restore.ts";
import type { SourceTarget } from "../../engines/types.ts";
import { AppError } from "../../lib/errors.ts";
import type { OutboundPolicy } from "../../net/outbound-policy.ts";
import type { StorageRegistry } from "../../storage/registry.ts";
import type { JobRow } from "../jobs/service.ts";
import { storedParts } from "../jobs/parts.ts";

/**
 * The checks of a whole-server backup's restore before it is queued: which databases it
 * restores, that their files (and the globals') are all stored as recorded, and that none of
 * them is a non-empty database on the target unless `clean`.
 */
export function chooseDatabases(job: JobRow, requested: string[] | undefined): string[] {
  const available = storedParts(job)
    .filter((p) => p.kind === "database")
    .map((p) => p.name);
  if (requested === undefined) return available;
  const unknown = requested.map((name, i) => ({ name, i })).filter(({ name }) => !available.includes(name));
  if (unknown.length) {
    const list = available.map((n) => JSON.stringify(n)).join(", ") || "none";
    throw new AppError(
      "INVALID_INPUT",
      `the backup holds no database ${unknown.map((u) => JSON.stringify(u.name)).join(", ")}; it holds ${list}`,
      unknown.map(({ name, i }) => ({ path: `/databases/${i}`, message: `the backup holds no database ${JSON.stringify(name)}` })),
    );
  }
  return [...new Set(requested)];
}

/** Every file the restore will read (the globals and the chosen databases) is there, with the size recorded. */
export async function checkPartsStored(storage: StorageRegistry, destination: Parameters<StorageRegistry["driverFor"]>[0], parts: StoredPart[]): Promise<void> {
  const driver = storage.driverFor(destination);
  for (const part of parts) {
    const head = await driver.head(part.objectKey!).catch((err: Error) => {
      throw new AppError("CONFLICT", `the backup's storage could not be reached: ${err.message}`);
    });
    if (!head) throw new AppError("CONFLICT", `the backup's file for ${JSON.stringify(part.name)} is missing from its storage destination`);
    if (head.size !== part.storedBytes) throw new AppError("CONFLICT", `the stored file of ${JSON.stringify(part.name)} has ${head.size} bytes, the backup recorded ${part.storedBytes}`);
  }
}

/** 409 naming every chosen database that is not empty on the target (unless `clean`), or that cannot be looked at. */
export async function checkServerTarget(target: SourceTarget, databases: string[], clean: boolean, outbound: OutboundPolicy): Promise<void> {
  const full: string[] = [];
  try {
    const pinned = await pinTarget(target, outbound);
    for (const name of databases) if ((await inspectDatabase(pinned, name)).relations > 0) full.push(name);
  } catch (err) {
    if (err instanceof ProbeError) throw new AppError("CONFLICT", `the target could not be checked: ${err.verifyError.code}: ${err.verifyError.message}`);
    if (err instanceof RestoreSetupError) throw new AppError("CONFLICT", `the target could not be checked: ${err.code}: ${err.message}`);
    throw err;
  }
  if (full.length && !clean) {
    throw new AppError("CONFLICT", `the target's databases ${full.map((n) => JSON.stringify(n)).join(", ")} are not empty; set clean: true to replace their contents, or leave them out of databases`);
  }
}
