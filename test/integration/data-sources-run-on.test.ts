import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { auditEvents, dataSources } from "../../src/db/schema.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { testStore } from "../helpers/store-matrix.ts";

/**
 * `runOn: { labels }` on data sources: stored, shown, replaced and cleared; every label
 * checked with its own `details[].path`; a SQLite source must carry it on a store shared by
 * a fleet (PostgreSQL `store.url`), not on the embedded one.
 */
let h: Harness;
const ORG = "org_run_on";

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" });
});
afterAll(() => h.close());

const call = async (method: string, path: string, body?: unknown) => h.call(method, path, { token: await h.token(ORG), body });
const sqlite = (extra: Record<string, unknown> = {}) => ({ name: `file-${crypto.randomUUID().slice(0, 8)}`, engine: "sqlite", path: "/var/lib/app/app.db", ...extra });
const postgres = (extra: Record<string, unknown> = {}) => ({ name: `pg-${crypto.randomUUID().slice(0, 8)}`, engine: "postgres", host: "db.internal", database: "app", ...extra });

describe("runOn", () => {
  test("created, read, replaced and cleared; audited as a change", async () => {
    const created = await call("POST", "/data-sources", postgres({ runOn: { labels: { site: "eu-1", "rack.no": "A_7" } } }));
    expect(created.status).toBe(201);
    expect(created.body.runOn).toEqual({ labels: { site: "eu-1", "rack.no": "A_7" } });
    expect((await call("GET", `/data-sources/${created.body.id}`)).body.runOn).toEqual({ labels: { site: "eu-1", "rack.no": "A_7" } });
    const moved = await call("PATCH", `/data-sources/${created.body.id}`, { runOn: { labels: { site: "us-2" } } });
    expect(moved.body.runOn).toEqual({ labels: { site: "us-2" } });
    // A PATCH without runOn keeps it.
    expect((await call("PATCH", `/data-sources/${created.body.id}`, { port: 5433 })).body.runOn).toEqual({ labels: { site: "us-2" } });
    const anywhere = await call("PATCH", `/data-sources/${created.body.id}`, { runOn: null });
    expect(anywhere.status).toBe(200);
    expect(anywhere.body.runOn).toBeNull();
    expect((await h.store.db.select({ runOn: dataSources.runOn }).from(dataSources).where(eq(dataSources.id, created.body.id)))[0]!.runOn).toBeNull();
    const changed = (await h.store.db.select().from(auditEvents).where(eq(auditEvents.targetId, created.body.id))).map((e) => (e.metadata as { changed?: string[] }).changed);
    expect(changed).toContainEqual(["runOn"]);
    // A source created without it runs anywhere.
    expect((await call("POST", "/data-sources", postgres())).body.runOn).toBeNull();
  });

  test("bad labels are 400 INVALID_INPUT at their own path, and nothing is written", async () => {
    const cases: [unknown, string][] = [
      [{ labels: { "bad key": "x" } }, "/runOn/labels/bad key"],
      [{ labels: { "a/b": "x" } }, "/runOn/labels/a~1b"],
      [{ labels: { site: "has space" } }, "/runOn/labels/site"],
      [{ labels: { site: "" } }, "/runOn/labels/site"],
      [{ labels: { site: "x".repeat(64) } }, "/runOn/labels/site"],
      [{ labels: { ["k".repeat(64)]: "x" } }, `/runOn/labels/${"k".repeat(64)}`],
      [{ labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, "/runOn/labels"],
      [{ labels: {} }, "/runOn/labels"],
    ];
    const before = (await h.store.db.select({ id: dataSources.id }).from(dataSources)).length;
    for (const [runOn, path] of cases) {
      const res = await call("POST", "/data-sources", postgres({ runOn }));
      expect({ runOn, status: res.status, code: res.body.code }).toEqual({ runOn, status: 400, code: "INVALID_INPUT" });
      expect({ runOn, paths: res.body.details.map((d: { path: string }) => d.path) }).toEqual({ runOn, paths: [path] });
    }
    for (const runOn of [{ labels: { site: "a" }, extra: 1 }, { site: "a" }, "site=a", { labels: { site: 1 } }]) {
      const res = await call("POST", "/data-sources", postgres({ runOn }));
      expect({ runOn, status: res.status }).toEqual({ runOn, status: 400 });
      expect(res.body.details.every((d: { path: string }) => d.path.startsWith("/runOn"))).toBe(true);
    }
    expect((await h.store.db.select({ id: dataSources.id }).from(dataSources)).length).toBe(before);
    // 16 labels is the most.
    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, "v"]));
    expect((await call("POST", "/data-sources", postgres({ runOn: { labels: sixteen } }))).status).toBe(201);
    // PATCH checks alike, and leaves the row as it was.
    const source = (await call("POST", "/data-sources", postgres({ runOn: { labels: { site: "a" } } }))).body;
    const bad = await call("PATCH", `/data-sources/${source.id}`, { runOn: { labels: { "no!": "x" } } });
    expect(bad.status).toBe(400);
    expect(bad.body.details.map((d: { path: string }) => d.path)).toEqual(["/runOn/labels/no!"]);
    expect((await call("GET", `/data-sources/${source.id}`)).body.runOn).toEqual({ labels: { site: "a" } });
  });
});

describe("a SQLite source and the store", () => {
  // The rule on a PostgreSQL store is tested in every run by fleet-claims.on-pg.ts (its own process, its own PostgreSQL).
  test(testStore() === "postgres" ? "a shared (PostgreSQL) store asks for runOn: 400 naming /runOn" : "the embedded store (one node) does not ask for runOn", async () => {
    const bare = await call("POST", "/data-sources", sqlite());
    if (testStore() === "postgres") {
      expect(bare.status).toBe(400);
      expect(bare.body.details).toEqual([{ path: "/runOn", message: expect.stringContaining("store.url") }]);
      expect((await call("POST", "/data-sources", sqlite({ runOn: { labels: { host: "db1" } } }))).status).toBe(201);
    } else {
      expect(bare.status).toBe(201);
      expect(bare.body.runOn).toBeNull();
    }
  });
});
