import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { attach, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The API of point-in-time recovery without a database server: what a physical policy may be
 * attached to, what a point-in-time restore request must hold, and where it may write.
 */
const ORG = "org_pitr_api";
const roots = tempDir("snapdb-pitr-api");
let h: Harness;
let bare: Harness;
let token: string;
let dst: string;
let pgSource: any;

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_RESTORE_ROOTS: roots.path });
  bare = await createHarness();
  token = await h.token(ORG);
  dst = (await managedDestination(h, token)).id;
  pgSource = await createSource(h, token, { engine: "postgres", host: "127.0.0.1", port: 5432, database: "app" });
});
afterAll(() => {
  h.close();
  bare.close();
  roots.cleanup();
});

const policy = (extra: Record<string, unknown>) =>
  h.call("POST", "/backup-policies", { token, body: { name: `p-${crypto.randomUUID().slice(0, 8)}`, scheduleCron: "0 3 * * *", destinationId: dst, retention: { keepLast: 3 }, ...extra } });

describe("physical policies", () => {
  test("method defaults to logical; physical takes fastCheckpoint; both are answered", async () => {
    const logical = await policy({});
    expect(logical.status).toBe(201);
    expect(logical.body).toMatchObject({ method: "logical", fastCheckpoint: false });
    const physical = await policy({ method: "physical", fastCheckpoint: true });
    expect(physical.status).toBe(201);
    expect(physical.body).toMatchObject({ method: "physical", fastCheckpoint: true });
    expect((await h.call("GET", `/backup-policies/${physical.body.id}`, { token })).body).toEqual(physical.body);
  });

  test("fastCheckpoint on a logical policy is refused, not ignored", async () => {
    const res = await policy({ fastCheckpoint: true });
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe("/fastCheckpoint");
    const logical = (await policy({})).body;
    const patched = await h.call("PATCH", `/backup-policies/${logical.id}`, { token, body: { fastCheckpoint: true } });
    expect(patched.status).toBe(400);
  });

  test("the method cannot change; fastCheckpoint of a physical policy can", async () => {
    const physical = (await policy({ method: "physical" })).body;
    const res = await h.call("PATCH", `/backup-policies/${physical.id}`, { token, body: { method: "logical" } });
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe("/method");
    const same = await h.call("PATCH", `/backup-policies/${physical.id}`, { token, body: { method: "physical", fastCheckpoint: true } });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ method: "physical", fastCheckpoint: true });
  });

  test("attached to PostgreSQL only (400 at attach time), and one per data source (409)", async () => {
    const physical = (await policy({ method: "physical" })).body;
    for (const body of [
      { engine: "mysql", host: "127.0.0.1", port: 3306, database: "shop" },
      { engine: "mariadb", host: "127.0.0.1", port: 3306, database: "shop" },
    ]) {
      const other = await createSource(h, token, body);
      const res = await h.call("POST", "/attachments", { token, body: { dataSourceId: other.id, policyId: physical.id } });
      expect(res.status).toBe(400);
      expect(res.body.details[0].path).toBe("/policyId");
      expect(res.body.message).toContain("PostgreSQL only");
    }
    const source = await createSource(h, token, { engine: "postgres", host: "127.0.0.1", port: 5432, database: "app2" });
    await attach(h, token, source.id, physical.id);
    const second = (await policy({ method: "physical" })).body;
    const res = await h.call("POST", "/attachments", { token, body: { dataSourceId: source.id, policyId: second.id } });
    expect(res.status).toBe(409);
    // A logical policy beside it is fine (dumps and base backups of one source).
    await attach(h, token, source.id, (await createPolicy(h, token, dst)).id);
  });
});

describe("point-in-time restore requests", () => {
  const restore = (body: Record<string, unknown>, harness = h) => harness.call("POST", "/restores", { token, body });
  const valid = () => ({ dataSourceId: pgSource.id, targetTime: new Date().toISOString(), targetDirectory: join(roots.path, "r1") });

  test("each field is required, and dump fields do not mix in", async () => {
    for (const field of ["dataSourceId", "targetTime", "targetDirectory"]) {
      const body: Record<string, unknown> = valid();
      delete body[field];
      const res = await restore(body);
      expect(res.status).toBe(400);
      expect(res.body.details[0].path).toBe(`/${field}`);
    }
    for (const [field, value] of [
      ["backupJobId", "job_x"],
      ["targetDatabase", "x"],
      ["clean", true],
    ] as const) {
      const res = await restore({ ...valid(), [field]: value });
      expect(res.status).toBe(400);
      expect(res.body.details[0].path).toBe(`/${field}`);
    }
    const none = await restore({});
    expect(none.status).toBe(400);
    expect(none.body.details[0].path).toBe("/backupJobId");
  });

  test("a bad time, another org's or a non-PostgreSQL source is 400", async () => {
    expect((await restore({ ...valid(), targetTime: "yesterday" })).status).toBe(400);
    const other = await h.call("POST", "/restores", { token: await h.token("org_else"), body: valid() });
    expect(other.status).toBe(400);
    expect(other.body.details[0].path).toBe("/dataSourceId");
    const sqliteish = await createSource(h, token, { engine: "mysql", host: "127.0.0.1", port: 3306, database: "shop" });
    const res = await restore({ ...valid(), dataSourceId: sqliteish.id });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain("PostgreSQL");
  });

  test("the directory: inside an allowed root, normalized, empty; none allowed without the operator key", async () => {
    for (const dir of ["relative/dir", `${roots.path}/../x`, "/etc/postgresql", roots.path]) {
      const res = await restore({ ...valid(), targetDirectory: dir });
      expect(res.status).toBe(400);
      expect(res.body.details[0].path).toBe("/targetDirectory");
    }
    const full = join(roots.path, "full");
    mkdirSync(full);
    writeFileSync(join(full, "PG_VERSION"), "15\n");
    expect((await restore({ ...valid(), targetDirectory: full })).status).toBe(409);
    const btoken = await bare.token(ORG);
    const src = await createSource(bare, btoken, { engine: "postgres", host: "127.0.0.1", port: 5432, database: "app" });
    const res = await bare.call("POST", "/restores", { token: btoken, body: { ...valid(), dataSourceId: src.id } });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain("storage.allowedRestoreRoots is empty");
  });

  test("without a base backup the window is empty and every instant is outside it", async () => {
    expect(await must(h, token, "GET", `/data-sources/${pgSource.id}/recovery-window`)).toEqual({ from: null, to: null });
    const res = await restore(valid());
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe("/targetTime");
    expect(res.body.message).toContain("there is no recovery window yet");
  });
});
