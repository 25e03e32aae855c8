import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AuditAction, AuditTargetType } from "../../src/audit/actions.ts";
import { recordAudit } from "../../src/audit/record.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { storeGet } from "../helpers/store-sql.ts";

let h: Harness;
let token: string;

async function record(org: string, action: AuditAction, extra: { actor?: string; targetId?: string; metadata?: Record<string, unknown> } = {}) {
  return await h.store.db.transaction(async (tx) =>
    recordAudit(
      tx,
      { orgId: org, actor: { type: "user", id: extra.actor ?? "alice" }, requestId: "req_test", ip: "127.0.0.1" },
      {
        action,
        targetType: action.split(".")[0] as AuditTargetType,
        targetId: extra.targetId ?? "ds_x",
        metadata: extra.metadata,
      },
    ),
  );
}

beforeAll(async () => {
  h = await createHarness();
  token = await h.token("org_a", { scopes: ["audit.read"] });
});
afterAll(() => h.close());

describe("audit log", () => {
  test("keyset pagination over thousands of events with inserts between pages loses and repeats nothing", async () => {
    const original = new Set<string>();
    for (let i = 0; i < 2500; i++) original.add(await record("org_a", "attachment.run_skipped", { targetId: `t_${i}` }));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: any = await h.call("GET", `/audit-log?action=attachment.run_skipped&limit=200${cursor ? `&cursor=${cursor}` : ""}`, { token });
      expect(res.status).toBe(200);
      const ids = res.body.items.map((e: { id: string }) => e.id);
      expect([...ids].sort().reverse()).toEqual(ids); // newest first
      seen.push(...ids);
      cursor = res.body.cursors.next;
      // New events arrive while a client pages: they are newer than the cursor, so they
      // belong to the first page of a fresh listing, not to the rest of this one.
      for (let i = 0; i < 7; i++) await record("org_a", "attachment.run_skipped", { targetId: `late_${pages}_${i}` });
      pages++;
    } while (cursor);
    expect(seen.length).toBe(new Set(seen).size);
    expect(seen.filter((id) => original.has(id)).length).toBe(original.size);
    expect(seen.every((id) => original.has(id))).toBe(true);
    expect(pages).toBe(13);
  });

  test("filters: action list, actor list, target, time range", async () => {
    await record("org_a", "data_source.created", { actor: "bob", targetId: "ds_1" });
    await record("org_a", "data_source.deleted", { actor: "carol", targetId: "ds_1" });
    await record("org_a", "storage_destination.updated", { actor: "bob", targetId: "dst_1" });
    await record("org_b", "data_source.created", { actor: "bob", targetId: "ds_2" });
    const get = async (q: string) => (await h.call("GET", `/audit-log?${q}`, { token })).body.items as any[];

    const byAction = await get("action=data_source.created,data_source.deleted");
    expect(byAction.map((e) => e.action)).toEqual(["data_source.deleted", "data_source.created"]);
    const byActor = await get("actorId=bob&limit=10");
    expect(byActor.map((e) => e.action)).toEqual(["storage_destination.updated", "data_source.created"]);
    expect((await get("targetId=ds_1")).length).toBe(2);
    expect((await get("targetType=storage_destination")).map((e) => e.targetId)).toEqual(["dst_1"]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect(await get(`from=${future}&action=data_source.created`)).toEqual([]);
    expect((await get(`to=${future}&action=data_source.created`)).length).toBe(1);
    const event = byAction[0];
    expect(event).toMatchObject({
      actor: { type: "user", id: "carol" },
      targetType: "data_source",
      requestId: "req_test",
      ip: "127.0.0.1",
      metadata: {},
    });
    expect(new Date(event.occurredAt).toISOString()).toBe(event.occurredAt);
  });

  test("secrets are stripped from metadata before they are stored", async () => {
    await record("org_a", "data_source.credentials_set", {
      targetId: "ds_secret",
      metadata: { username: "app", password: "hunter2", nested: { secretAccessKey: "AKS", region: "eu" } },
    });
    const [event] = (await h.call("GET", "/audit-log?targetId=ds_secret", { token })).body.items;
    expect(event.metadata).toEqual({ username: "app", nested: { region: "eu" } });
    const raw = (await storeGet<{ metadata: string }>(h.store, "SELECT metadata FROM audit_events WHERE target_id = 'ds_secret'"))!;
    expect(raw.metadata).toBeString();
    expect(raw.metadata).not.toContain("hunter2");
    expect(raw.metadata).not.toContain("AKS");
  });

  test("bad filters and cursors are 400 with the offending field", async () => {
    const bad = await h.call("GET", "/audit-log?from=yesterday", { token });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].path).toBe("/from");
    for (const limit of ["0", "201", "abc", "-1"]) {
      const res = await h.call("GET", `/audit-log?limit=${limit}`, { token });
      expect({ limit, status: res.status, path: res.body.details?.[0]?.path }).toEqual({ limit, status: 400, path: "/limit" });
    }
    const page = (await h.call("GET", "/audit-log?limit=1", { token })).body;
    const cursor: string = page.cursors.next;
    const tampered = cursor.slice(0, -2) + (cursor.endsWith("A") ? "BB" : "AA");
    for (const c of [tampered, "garbage", "a.b.c", `${cursor}x`]) {
      const res = await h.call("GET", `/audit-log?cursor=${encodeURIComponent(c)}`, { token });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("INVALID_INPUT");
    }
    // Another org's cursor is foreign, even though it is well signed.
    const other = await h.token("org_b", { scopes: ["audit.read"] });
    const res = await h.call("GET", `/audit-log?cursor=${cursor}`, { token: other });
    expect(res.status).toBe(400);
    const unknown = await h.call("GET", "/audit-log?sort=asc", { token });
    expect(unknown.status).toBe(400);
    expect(unknown.body.details[0]).toEqual({ path: "/sort", message: "unknown field" });
  });

  test("an org sees only its own events", async () => {
    const other = await h.token("org_b", { scopes: ["audit.read"] });
    const items = (await h.call("GET", "/audit-log?limit=200", { token: other })).body.items as any[];
    expect(items.length).toBe(1);
    expect(items[0].targetId).toBe("ds_2");
  });

  test("read-only: no method changes the log", async () => {
    const count = async () => (await storeGet<{ n: number }>(h.store, "SELECT count(*) AS n FROM audit_events", [], ["n"]))!.n;
    const before = await count();
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const res = await h.call(method, "/audit-log", { token, body: { action: "x.y" } });
      expect(res.status).toBe(404);
    }
    expect(await count()).toBe(before);
  });
});
