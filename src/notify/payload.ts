import { eq } from "drizzle-orm";
import type { Tx } from "../db/client.ts";
import { type backupJobs, backupPolicies, dataSources, type restores } from "../db/schema.ts";
// The API's own serializers (pure functions of a row): an event carries a job or a restore
// exactly as GET /backup-jobs/{id} and GET /restores/{id} show it.
import { toBackupJob } from "../modules/jobs/serialize.ts";
import { toRestore } from "../modules/restores/serialize.ts";

const sourceName = async (tx: Tx, id: string) => (await tx.select({ name: dataSources.name }).from(dataSources).where(eq(dataSources.id, id)))[0]?.name ?? null;
const policyName = async (tx: Tx, id: string | null) => (id ? ((await tx.select({ name: backupPolicies.name }).from(backupPolicies).where(eq(backupPolicies.id, id)))[0]?.name ?? null) : null);

export type JobRow = typeof backupJobs.$inferSelect;
export type RestoreRow = typeof restores.$inferSelect;

/** `data` of backup.* events: the job as the API shows it, plus the names a reader needs. */
export async function backupData(tx: Tx, job: JobRow): Promise<Record<string, unknown>> {
  return { ...toBackupJob(job), dataSourceName: await sourceName(tx, job.dataSourceId), policyName: await policyName(tx, job.policyId) };
}

/** `data` of restore.* events: the restore as the API shows it, plus the data sources' names. */
export async function restoreData(tx: Tx, row: RestoreRow): Promise<Record<string, unknown>> {
  return {
    ...toRestore(row),
    sourceDataSourceName: await sourceName(tx, row.sourceDataSourceId),
    targetDataSourceName: await sourceName(tx, row.targetDataSourceId),
  };
}
