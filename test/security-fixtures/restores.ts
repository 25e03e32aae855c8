import { restores } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import type { Harness } from "../helpers/harness.ts";
import type { Fixtures } from "../helpers/security-suite.ts";
import { createDataSourceVia } from "./data-sources.ts";

/** A finished restore row into a sqlite source of `org` (no server or backup file needed). */
async function restoreIn(h: Harness, org: string) {
  const source = await createDataSourceVia(h, org);
  const id = newId("rst");
  const now = Date.now();
  await h.store.db
    .insert(restores)
    .values({ id, orgId: org, backupJobId: "job_x", sourceDataSourceId: source.id, targetDataSourceId: source.id, status: "succeeded", queuedAt: now, startedAt: now, finishedAt: now });
  return { id };
}

export const fixtures: Fixtures = {
  "/restores/{id}": { params: restoreIn },
  "/restores/{id}/cancel": { params: restoreIn },
};
