import { backupJobs } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import type { Harness } from "../helpers/harness.ts";
import type { Fixtures } from "../helpers/security-suite.ts";
import { createDataSourceVia } from "./data-sources.ts";

/** A succeeded job row of a sqlite source in `org` (a finished job: every action applies to it). */
async function jobIn(h: Harness, org: string) {
  const source = await createDataSourceVia(h, org);
  const id = newId("job");
  const now = Date.now();
  await h.store.db.insert(backupJobs).values({
    id,
    orgId: org,
    dataSourceId: source.id,
    trigger: "manual",
    status: "succeeded",
    queuedAt: now,
    startedAt: now,
    finishedAt: now,
    objectKey: `x/${id}.sqlite`,
    sizeBytes: 1,
    storedBytes: 1,
    sha256: "00",
  });
  return { id };
}

export const fixtures: Fixtures = {
  "/backup-jobs/{id}": { params: jobIn },
  "/backup-jobs/{id}/cancel": { params: jobIn },
  "/backup-jobs/{id}/verify": { params: jobIn },
  "/backup-jobs/{id}/download-link": { params: jobIn, body: () => ({ expiresInSeconds: 300 }) },
  "/backup-jobs/{id}/file": { params: jobIn },
};
