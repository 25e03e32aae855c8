import type { Harness } from "../helpers/harness.ts";
import type { Fixtures } from "../helpers/security-suite.ts";
import { createDataSourceVia } from "./data-sources.ts";

/** A drill plan of a sqlite source of `org` onto itself, created through the API (nothing runs). */
async function planIn(h: Harness, org: string) {
  const source = await createDataSourceVia(h, org);
  const token = await h.token(org);
  const body = { name: `plan-${crypto.randomUUID().slice(0, 8)}`, dataSourceId: source.id, mode: "drill", scheduleCron: "0 4 * * *", target: { dataSourceId: source.id }, enabled: false };
  const res = await h.call("POST", "/restore-plans", { token, body });
  if (res.status !== 201) throw new Error(`restore plan create failed: ${res.status} ${res.text}`);
  return { id: res.body.id as string };
}

export const fixtures: Fixtures = {
  "/restore-plans/{id}": { params: planIn },
  "PATCH /restore-plans/{id}": { params: planIn, body: () => ({ enabled: false }) },
  "/restore-plans/{id}/run-now": { params: planIn },
};
