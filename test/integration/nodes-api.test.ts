import { afterAll, beforeAll, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { backupJobs, nodes, restores } from "../../src/db/schema.ts";
import { keyFingerprint, nodeIdOf, startHeartbeat } from "../../src/fleet/node.ts";
import { newId } from "../../src/lib/ids.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { createDataSourceVia } from "../security-fixtures/data-sources.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * GET /nodes: the daemons registered in the store by their real heartbeat, read by any
 * organisation's `backup.read` token, with status from the heartbeat and the lease, the
 * running jobs of every organisation, and nothing secret. Jobs and restores name their node.
 */
let h: Harness;
const stops: (() => Promise<void>)[] = [];
const LEASE_SECONDS = 10;

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app", SNAPDB_RUNNER_LEASE_SECONDS: String(LEASE_SECONDS) });
});
afterAll(async () => {
  for (const stop of stops) await stop().catch(() => {});
  h.close();
});

const beat = async (id: string, labels: Record<string, string>) => {
  const stop = await startHeartbeat(h.store.db, { id, labels, masterKeyFingerprint: keyFingerprint(h.master), url: "http://127.0.0.1:9" }, 60_000, silentLogger);
  stops.push(stop);
  return stop;
};

test("lists every node to any organisation: labels, version, up/down from the heartbeat, running jobs, no key fingerprint", async () => {
  const reader = await h.token("org_nodes_a", { scopes: ["backup.read"] });
  expect((await h.call("GET", "/nodes", { token: reader })).body).toEqual({ items: [], cursors: { next: null } });

  // This harness's own node (its runner claims as it), one stopped cleanly, one gone silent.
  const self = nodeIdOf(h.dataDir);
  await beat(self, { site: "a", disk: "ssd" });
  const stopped = newId("node");
  await (await beat(stopped, { site: "b" }))();
  const silent = newId("node");
  await beat(silent, {});
  await h.store.db
    .update(nodes)
    .set({ lastSeenAt: Date.now() - (LEASE_SECONDS + 5) * 1000 })
    .where(eq(nodes.id, silent));

  // Running work on this node: two orgs' backups and a restore; finished and queued rows do not count.
  const sourceA = await createDataSourceVia(h, "org_nodes_a");
  const sourceB = await createDataSourceVia(h, "org_nodes_b");
  const now = Date.now();
  const job = (org: string, ds: string, status: "running" | "succeeded" | "queued", nodeId: string | null) => ({
    id: newId("job"),
    orgId: org,
    dataSourceId: ds,
    trigger: "manual" as const,
    status,
    queuedAt: now,
    startedAt: status === "queued" ? null : now,
    nodeId,
    leaseUntil: now + 60_000,
  });
  const running = job("org_nodes_a", sourceA.id, "running", self);
  await h.store.db
    .insert(backupJobs)
    .values([running, job("org_nodes_b", sourceB.id, "running", self), job("org_nodes_a", sourceA.id, "succeeded", self), job("org_nodes_b", sourceB.id, "queued", null)]);
  const restoreId = newId("rst");
  await h.store.db.insert(restores).values({
    id: restoreId,
    orgId: "org_nodes_b",
    backupJobId: running.id,
    sourceDataSourceId: sourceB.id,
    targetDataSourceId: sourceB.id,
    status: "running",
    queuedAt: now,
    startedAt: now,
    nodeId: self,
    leaseUntil: now + 60_000,
  });

  // Another organisation's reader sees the same fleet.
  for (const org of ["org_nodes_a", "org_nodes_c"]) {
    const res = await h.call("GET", "/nodes", { token: await h.token(org, { scopes: ["backup.read"] }) });
    expect(res.status).toBe(200);
    const byId = Object.fromEntries(res.body.items.map((n: any) => [n.id, n]));
    expect(res.body.items.map((n: any) => n.id)).toEqual([silent, stopped, self].sort().reverse());
    expect(byId[self]).toEqual({
      id: self,
      hostname: expect.any(String),
      labels: { site: "a", disk: "ssd" },
      version: expect.any(String),
      startedAt: expect.any(String),
      lastSeenAt: expect.any(String),
      status: "up",
      running: 3,
    });
    expect(byId[stopped]).toMatchObject({ status: "down", running: 0, labels: { site: "b" } });
    expect(byId[silent]).toMatchObject({ status: "down", running: 0, labels: {} });
    expect(res.text).not.toContain(keyFingerprint(h.master));
    expect(res.text.toLowerCase()).not.toContain("fingerprint");
  }

  // The jobs and the restore say where they ran.
  const token = await h.token("org_nodes_a");
  expect((await h.call("GET", `/backup-jobs/${running.id}`, { token })).body.nodeId).toBe(self);
  const queued = (await h.call("GET", "/backup-jobs?status=queued", { token: await h.token("org_nodes_b") })).body.items;
  expect(queued.map((j: any) => j.nodeId)).toEqual([null]);
  expect((await h.call("GET", `/restores/${restoreId}`, { token: await h.token("org_nodes_b") })).body.nodeId).toBe(self);
});

test("pages with signed cursors, checks limit, and needs backup.read", async () => {
  const token = await h.token("org_nodes_a", { scopes: ["backup.read"] });
  const first = await h.call("GET", "/nodes?limit=2", { token });
  expect(first.status).toBe(200);
  expect(first.body.items).toHaveLength(2);
  expect(first.body.cursors.next).toEqual(expect.any(String));
  const second = await h.call("GET", `/nodes?limit=2&cursor=${encodeURIComponent(first.body.cursors.next)}`, { token });
  expect(second.body.items).toHaveLength(1);
  expect(second.body.cursors.next).toBeNull();
  expect(new Set([...first.body.items, ...second.body.items].map((n: any) => n.id)).size).toBe(3);

  const bad = await h.call("GET", "/nodes?limit=0", { token });
  expect(bad.status).toBe(400);
  expect(bad.body.details).toEqual([{ path: "/limit", message: expect.any(String) }]);
  expect((await h.call("GET", "/nodes", { token: await h.token("org_nodes_a", { scopes: ["audit.read"] }) })).status).toBe(403);
  expect((await h.call("GET", "/nodes", { token: null })).status).toBe(401);
});
