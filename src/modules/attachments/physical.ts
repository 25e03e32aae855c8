import { and, eq, ne } from "drizzle-orm";
import type { Tx } from "../../db/client.ts";
import { attachments, backupPolicies } from "../../db/schema.ts";
import { AppError, invalidInput } from "../../lib/errors.ts";

/**
 * A physical policy (pg_basebackup + WAL archiving) fits PostgreSQL only, and one per data
 * source: the WAL is archived once per source, over one replication slot named after it.
 */
export async function checkPhysicalAttachment(tx: Tx, source: { id: string; engine: string }, policyId: string): Promise<void> {
  if (source.engine !== "postgres") {
    throw invalidInput("/policyId", `a policy with method physical backs up PostgreSQL only; this data source is ${source.engine}`);
  }
  const other = (
    await tx
      .select({ id: attachments.id })
      .from(attachments)
      .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
      .where(and(eq(attachments.dataSourceId, source.id), eq(backupPolicies.method, "physical"), ne(attachments.policyId, policyId)))
  )[0];
  if (other) {
    throw new AppError("CONFLICT", `the data source already has a physical policy (attachment ${other.id}): its WAL is archived once`, [
      { path: "/policyId", message: "the data source already has a physical policy" },
    ]);
  }
}
