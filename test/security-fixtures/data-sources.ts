import type { Harness } from "../helpers/harness.ts";
import type { Fixtures } from "../helpers/security-suite.ts";
import { pinnedToHarness } from "../helpers/store-matrix.ts";

/**
 * Where the fixtures' SQLite sources live (never created: the path is only stored). A
 * harness that uses these fixtures allows it with `SNAPDB_ALLOWED_SQLITE_ROOTS`.
 */
export const FIXTURE_SQLITE_ROOT = "/var/lib/app";

/** A sqlite data source created through the API in `org` (no server needed). */
export async function createDataSourceVia(h: Harness, org: string, extra: Record<string, unknown> = {}): Promise<any> {
  const token = await h.token(org);
  const body = { name: `src-${crypto.randomUUID().slice(0, 8)}`, engine: "sqlite", path: `${FIXTURE_SQLITE_ROOT}/app.db`, ...pinnedToHarness(), ...extra };
  const res = await h.call("POST", "/data-sources", { token, body });
  if (res.status !== 201) throw new Error(`data source create failed: ${res.status} ${res.text}`);
  return res.body;
}

const params = async (h: Harness, org: string) => ({ id: (await createDataSourceVia(h, org)).id });

export const fixtures: Fixtures = {
  "/data-sources/{id}": { params },
  "PATCH /data-sources/{id}": { params, body: () => ({ labels: { team: "x" } }) },
  "/data-sources/{id}/credentials": { params },
  "PUT /data-sources/{id}/credentials": { params, body: () => ({ username: "u", password: "p" }) },
  "/data-sources/{id}/verify": { params },
  "/data-sources/{id}/backup-jobs": { params },
  "/data-sources/{id}/recovery-window": { params },
};
