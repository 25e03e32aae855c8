import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * Every route's service context comes from the auth plugin: over a real socket, the audit
 * event of a change names the token's subject, the request's id and the caller's address.
 */
let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

test("the audit event of a change carries the token's sub, the request id and the client's IP", async () => {
  const server = h.app.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const base = `http://127.0.0.1:${server.server!.port}`;
    const token = await h.token("org_ctx", { sub: "alice" });
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json", "x-request-id": "req-ctx-1" };
    const created = await fetch(`${base}/data-sources`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "ctx-db", engine: "postgres", host: "db.internal", database: "app" }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const audit = await fetch(`${base}/audit-log?targetId=${id}`, { headers });
    const [event] = ((await audit.json()) as { items: any[] }).items;
    expect(event).toMatchObject({ action: "data_source.created", actor: { type: "user", id: "alice" }, requestId: "req-ctx-1", ip: "127.0.0.1" });
    // Another org's token sees nothing of it: the context's org is the token's.
    const other = await fetch(`${base}/audit-log?targetId=${id}`, { headers: { authorization: `Bearer ${await h.token("org_other")}` } });
    expect(((await other.json()) as { items: unknown[] }).items).toEqual([]);
  } finally {
    await server.stop(true);
  }
});
