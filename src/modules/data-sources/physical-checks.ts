import { and, eq } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { attachments, backupPolicies } from "../../db/schema.ts";
import { pinTarget } from "../../engines/network.ts";
import { physicalReadiness } from "../../engines/physical.ts";
import { findTool } from "../../engines/process.ts";
import type { EngineEnv, SourceTarget } from "../../engines/types.ts";

export const hasPhysicalPolicy = async (db: Db, dataSourceId: string) =>
  !!(
    await db
      .select({ id: attachments.id })
      .from(attachments)
      .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
      .where(and(eq(attachments.dataSourceId, dataSourceId), eq(backupPolicies.method, "physical")))
  )[0];

/**
 * What a physical policy needs beyond a dump's login, checked when a PostgreSQL source that
 * has one is verified: said as warnings (the connection itself works). Among them
 * `max_slot_wal_keep_size = -1`: the slot then holds WAL without bound while archiving is
 * stopped or behind, until the server's disk is full.
 */
export async function physicalWarnings(target: SourceTarget, env: EngineEnv): Promise<string[]> {
  const warnings: string[] = [];
  for (const tool of ["pg_basebackup", "pg_receivewal", "tar"]) {
    if (!findTool(tool, env.toolPath)) warnings.push(`${tool} is not on the daemon's PATH: physical backups and point-in-time restores need it`);
  }
  try {
    const ready = await physicalReadiness(await pinTarget(target, env.outbound));
    if (!ready.replication && !ready.superuser) {
      warnings.push(
        `the role ${target.credentials?.username ?? ""} lacks the REPLICATION attribute: base backups and WAL archiving will fail (ALTER ROLE … REPLICATION, and a replication line in pg_hba.conf)`,
      );
    }
    if (ready.walLevel === "minimal") warnings.push("wal_level is minimal: set it to replica (the default) for base backups and WAL archiving");
    if (ready.maxWalSenders < 2) warnings.push(`max_wal_senders is ${ready.maxWalSenders}: a base backup and the WAL archiving need one each`);
    if (ready.maxKeepMb < 0) {
      warnings.push(
        "max_slot_wal_keep_size is -1 (unlimited): while WAL archiving is stopped or behind, its replication slot keeps WAL on the server without bound until the disk is full; set a limit (the archive then gets a gap instead)",
      );
    }
  } catch (err) {
    warnings.push(`the physical backup settings could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  return warnings;
}
