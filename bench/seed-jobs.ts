/** A year of job history (and audit events) bulk-inserted into a store, for api-scale.ts. */
import type { Db } from "../src/db/client.ts";
import { auditEvents, backupJobs } from "../src/db/schema.ts";
import { newId } from "../src/lib/ids.ts";

/** Bulk rows straight into the store, as years of history would leave them, in one transaction. */
export async function seedJobs(db: Db, o: { org: string; jobs: number; audit: number; sourceIds: string[]; policyId: string; destinationId: string }): Promise<number> {
  const t0 = performance.now();
  const { org: ORG, jobs: JOBS, audit: AUDIT, sourceIds, policyId, destinationId } = o;
  const now = Date.now();
  const span = 365 * 24 * 3600 * 1000;
  // One time-ordered pass (ids are ULIDs minted monotonically, so they must be made in time order).
  const every = Math.max(1, Math.floor(JOBS / Math.max(1, AUDIT)));
  await db.transaction(async (tx) => {
    let jobs: (typeof backupJobs.$inferInsert)[] = [];
    let events: (typeof auditEvents.$inferInsert)[] = [];
    const flush = async () => {
      if (jobs.length) await tx.insert(backupJobs).values(jobs);
      if (events.length) await tx.insert(auditEvents).values(events);
      jobs = [];
      events = [];
    };
    let audits = 0;
    for (let j = 0; j < JOBS; j++) {
      const queuedAt = now - span + Math.floor((j / JOBS) * span);
      const failed = j % 23 === 0;
      const size = 50_000_000 + ((j * 7919) % 900_000_000);
      const ds = sourceIds[j % sourceIds.length]!;
      const id = newId("job", queuedAt);
      jobs.push({
        id,
        orgId: ORG,
        dataSourceId: ds,
        policyId,
        attachmentId: null,
        destinationId,
        trigger: j % 10 === 0 ? "manual" : "schedule",
        status: failed ? "failed" : "succeeded",
        attempt: 1,
        queuedAt,
        startedAt: queuedAt + 120,
        finishedAt: queuedAt + 60_000 + (j % 600) * 1000,
        bytesIn: failed ? 0 : size,
        bytesStored: failed ? 0 : Math.floor(size / 4),
        sizeBytes: failed ? null : size,
        storedBytes: failed ? null : Math.floor(size / 4),
        sha256: failed ? null : Bun.hash(id).toString(16).padStart(16, "0").repeat(4),
        objectKey: failed ? null : `snapdb/${ORG}/${ds}/2025/01/01/${id}.dump.zst.age`,
        format: failed ? null : { engine: "postgres", dump: "pg_custom", compression: "zstd", encrypted: true, ext: ".dump.zst.age" },
        error: failed ? { code: "DUMP_FAILED", message: "pg_dump exited with code 1: connection refused" } : null,
      });
      if (j % every === 0 && audits < AUDIT) {
        audits++;
        events.push({
          id: newId("aud", queuedAt),
          orgId: ORG,
          occurredAt: queuedAt,
          actorType: "system",
          actorId: "scheduler",
          action: "backup_job.queued",
          targetType: "backup_job",
          targetId: id,
          requestId: null,
          ip: null,
          metadata: { trigger: "schedule", dataSourceId: ds, policyId },
        });
      }
      if (jobs.length >= 500) await flush();
    }
    await flush();
  });
  return (performance.now() - t0) / 1000;
}
