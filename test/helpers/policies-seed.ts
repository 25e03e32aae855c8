import { dataSources, storageDestinations } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import type { Harness } from "./harness.ts";

/**
 * Rows of tables other modules own (destinations, data sources), inserted directly so the
 * policy, attachment and scheduler tests do not depend on those modules' HTTP API.
 */
export async function seedDestination(h: Harness, org: string): Promise<string> {
  const id = newId("dst");
  const now = Date.now();
  await h.store.db.insert(storageDestinations).values({ id, orgId: org, kind: "local", name: `dest-${id}`, settings: { path: "/tmp" }, createdAt: now, updatedAt: now });
  return id;
}

export async function seedDataSource(h: Harness, org: string): Promise<string> {
  const id = newId("ds");
  const now = Date.now();
  await h.store.db.insert(dataSources).values({ id, orgId: org, name: `src-${id}`, engine: "sqlite", path: `/tmp/${id}.db`, createdAt: now, updatedAt: now });
  return id;
}

export const policyBody = (destinationId: string, extra: Record<string, unknown> = {}) => ({
  name: `nightly-${Math.random().toString(36).slice(2, 10)}`,
  scheduleCron: "15 2 * * *",
  destinationId,
  retention: { keepLast: 7 },
  ...extra,
});

/** A policy created through the API, returned as the API answers it. */
export async function createPolicyVia(h: Harness, org: string, extra: Record<string, unknown> = {}): Promise<any> {
  const token = await h.token(org);
  const res = await h.call("POST", "/backup-policies", { token, body: policyBody(await seedDestination(h, org), extra) });
  if (res.status !== 201) throw new Error(`policy create failed: ${res.status} ${res.text}`);
  return res.body;
}

export async function createAttachmentVia(h: Harness, org: string, policyId: string, dataSourceId?: string, enabled = true): Promise<any> {
  dataSourceId ??= await seedDataSource(h, org);
  const token = await h.token(org);
  const res = await h.call("POST", "/attachments", { token, body: { dataSourceId, policyId, enabled } });
  if (res.status !== 201) throw new Error(`attachment create failed: ${res.status} ${res.text}`);
  return res.body;
}
