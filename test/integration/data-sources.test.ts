import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { eq } from "drizzle-orm";
import { attachments, auditEvents, backupJobs, dataSources } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { credentialsAad } from "../../src/modules/data-sources/credentials.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { pinnedToHarness } from "../helpers/store-matrix.ts";
import { createPolicyVia } from "../helpers/policies-seed.ts";
import { storeAtRest } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";

let h: Harness;
let token: string;
const PASSWORD = "S3cret-Pa55word-never-shown";
/** Real SQLite files for verify; /var/lib/app holds paths that are only ever stored. */
const files = tempDir("snapdb-ds-sqlite");

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: `/var/lib/app,${files.path}` });
  token = await h.token("org_ds");
});
afterAll(() => {
  h.close();
  files.cleanup();
});

/** On the PostgreSQL leg a SQLite source must be pinned to a node (runOn): see data-sources-run-on.test.ts. */
const create = (body: Record<string, unknown>) => h.call("POST", "/data-sources", { token, body: body.engine === "sqlite" ? { ...pinnedToHarness(), ...body } : body });
const pg = (extra: Record<string, unknown> = {}) => ({ name: `pg-${crypto.randomUUID().slice(0, 8)}`, engine: "postgres", host: "db.internal", database: "app", ...extra });
const auditRows = async (targetId: string) => await h.store.db.select().from(auditEvents).where(eq(auditEvents.targetId, targetId));

async function insertJob(dataSourceId: string, status: "succeeded" | "running" = "succeeded", extra: Record<string, unknown> = {}) {
  const id = newId("job");
  await h.store.db.insert(backupJobs).values({ id, orgId: "org_ds", dataSourceId, trigger: "manual", status, queuedAt: Date.now(), ...extra });
  return id;
}

describe("data sources: create and validate", () => {
  test("postgres: defaults the port, answers every field, audits", async () => {
    const res = await create(pg({ name: "main-db", options: { sslMode: "require" }, labels: { team: "core" } }));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: "main-db",
      engine: "postgres",
      host: "db.internal",
      port: 5432,
      database: "app",
      path: null,
      options: { sslMode: "require" },
      labels: { team: "core" },
      credentials: null,
      lastVerify: null,
    });
    expect(res.body.id).toMatch(/^ds_/);
    expect((await auditRows(res.body.id)).map((r) => r.action)).toEqual(["data_source.created"]);
    expect((await h.call("GET", `/data-sources/${res.body.id}`, { token })).body).toEqual(res.body);
  });

  test("mysql and mariadb default to 3306; an explicit port is kept", async () => {
    expect((await create({ name: "my", engine: "mysql", host: "10.0.0.2", database: "shop" })).body.port).toBe(3306);
    expect((await create({ name: "maria", engine: "mariadb", host: "maria", port: 3307, database: "shop" })).body.port).toBe(3307);
  });

  test("network engines need host and database, and refuse a path", async () => {
    const res = await create({ name: "bad-pg", engine: "postgres", path: "/x.db" });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_INPUT");
    expect(res.body.details.map((d: any) => d.path).sort()).toEqual(["/database", "/host", "/path"]);
  });

  test("sqlite needs an absolute path and refuses network fields and options", async () => {
    const ok = await create({ name: "local", engine: "sqlite", path: "/var/lib/app/app.db" });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ host: null, port: null, database: null, path: "/var/lib/app/app.db" });
    const relative = await create({ name: "rel", engine: "sqlite", path: "data/app.db" });
    expect(relative.status).toBe(400);
    expect(relative.body.details).toEqual([{ path: "/path", message: "must be an absolute path on the daemon's host" }]);
    const mixed = await create({ name: "mixed", engine: "sqlite", host: "h", database: "d", options: { sslMode: "require" } });
    expect(mixed.status).toBe(400);
    expect(mixed.body.details.map((d: any) => d.path).sort()).toEqual(["/database", "/host", "/options", "/path"]);
  });

  test("unknown fields, bad engine and bad port are 400 with details[].path", async () => {
    const unknown = await create(pg({ colour: "blue" }));
    expect(unknown.status).toBe(400);
    expect(unknown.body.details).toContainEqual({ path: "/colour", message: "unknown field" });
    const nested = await create(pg({ options: { sslMode: "require", extra: 1 } }));
    expect(nested.status).toBe(400);
    expect(nested.body.details.map((d: any) => d.path)).toContain("/options/extra");
    expect((await create(pg({ engine: "oracle" }))).status).toBe(400);
    const port = await create(pg({ port: 70000 }));
    expect(port.status).toBe(400);
    expect(port.body.details[0].path).toBe("/port");
    const label = await create(pg({ labels: { "bad key!": "x" } }));
    expect(label.status).toBe(400);
  });

  test("a duplicate name in the same org is 409; another org may reuse it", async () => {
    expect((await create(pg({ name: "dup" }))).status).toBe(201);
    const again = await create(pg({ name: "dup" }));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("CONFLICT");
    const other = await h.call("POST", "/data-sources", { token: await h.token("org_other"), body: pg({ name: "dup" }) });
    expect(other.status).toBe(201);
  });
});

describe("data sources: read, list, update", () => {
  test("list filters by engine and q, newest first, with cursors", async () => {
    const t2 = await h.token("org_list");
    for (const name of ["Alpha-1", "beta-2", "alpha-3", "gamma_%"]) {
      await h.call("POST", "/data-sources", { token: t2, body: pg({ name }) });
    }
    await h.call("POST", "/data-sources", { token: t2, body: { name: "alpha-file", engine: "sqlite", path: "/var/lib/app/a.db", ...pinnedToHarness() } });
    const all = await h.call("GET", "/data-sources?limit=2", { token: t2 });
    expect(all.body.items.map((i: any) => i.name)).toEqual(["alpha-file", "gamma_%"]);
    const next = await h.call("GET", `/data-sources?limit=2&cursor=${all.body.cursors.next}`, { token: t2 });
    expect(next.body.items.map((i: any) => i.name)).toEqual(["alpha-3", "beta-2"]);
    const q = await h.call("GET", "/data-sources?q=ALPHA&engine=postgres", { token: t2 });
    expect(q.body.items.map((i: any) => i.name)).toEqual(["alpha-3", "Alpha-1"]);
    expect(q.body.cursors.next).toBeNull();
    const literal = await h.call("GET", "/data-sources?q=_%25", { token: t2 });
    expect(literal.body.items.map((i: any) => i.name)).toEqual(["gamma_%"]);
    expect((await h.call("GET", "/data-sources?engine=oracle", { token: t2 })).status).toBe(400);
    expect((await h.call("GET", "/data-sources?cursor=garbage", { token: t2 })).status).toBe(400);
  });

  test("patch replaces given fields, keeps the rest, refuses an engine change and a taken name", async () => {
    const a = (await create(pg({ name: "patch-me" }))).body;
    await create(pg({ name: "taken" }));
    const res = await h.call("PATCH", `/data-sources/${a.id}`, { token, body: { port: 6432, labels: { env: "prod" } } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: "patch-me", host: "db.internal", port: 6432, labels: { env: "prod" } });
    expect((await auditRows(a.id)).map((r) => r.action)).toEqual(["data_source.created", "data_source.updated"]);
    expect((await auditRows(a.id))[1]!.metadata).toEqual({ changed: ["port", "labels"] });
    const engine = await h.call("PATCH", `/data-sources/${a.id}`, { token, body: { engine: "mysql" } });
    expect(engine.status).toBe(400);
    expect(engine.body.details).toEqual([{ path: "/engine", message: "cannot be changed" }]);
    expect((await h.call("PATCH", `/data-sources/${a.id}`, { token, body: { name: "taken" } })).status).toBe(409);
    expect((await h.call("PATCH", `/data-sources/${a.id}`, { token, body: { path: "/x.db" } })).status).toBe(400);
    expect((await h.call("PATCH", `/data-sources/${a.id}`, { token, body: { nope: 1 } })).status).toBe(400);
    expect((await h.call("PATCH", `/data-sources/ds_missing`, { token, body: { port: 1 } })).status).toBe(404);
  });
});

describe("data sources: credentials", () => {
  test("write-only: never in an answer, a log line or the audit log; ciphertext in the store", async () => {
    const ds = (await create(pg({ name: "secret-db" }))).body;
    const put = await h.call("PUT", `/data-sources/${ds.id}/credentials`, { token, body: { username: "backup", password: PASSWORD } });
    expect(put.status).toBe(204);
    const got = await h.call("GET", `/data-sources/${ds.id}`, { token });
    expect(got.body.credentials).toEqual({ username: "backup", updatedAt: expect.any(String) });
    const list = await h.call("GET", "/data-sources", { token });
    for (const text of [put.text, got.text, list.text]) expect(text).not.toContain(PASSWORD);

    const row = (await h.store.db.select().from(dataSources).where(eq(dataSources.id, ds.id)))[0]!;
    expect(row.credentialsCiphertext).not.toContain(PASSWORD);
    expect(Buffer.from(row.credentialsCiphertext!, "base64").toString("latin1")).not.toContain(PASSWORD);
    expect(row.credentialsKeyId).toMatch(/^[0-9a-f]{16}$/);
    expect(new SecretBox(h.master).open({ ciphertext: row.credentialsCiphertext!, keyId: row.credentialsKeyId! }, credentialsAad(ds.id))).toBe(PASSWORD);

    const events = await auditRows(ds.id);
    expect(events.map((e) => e.action)).toContain("data_source.credentials_set");
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
    expect(h.logLines.join("\n")).not.toContain(PASSWORD);

    // The store's raw bytes (db + WAL) hold no plaintext password either.
    for (const [where, bytes] of await storeAtRest(h, "TRUNCATE")) expect({ where, hit: bytes.includes(Buffer.from(PASSWORD)) }).toEqual({ where, hit: false });

    expect((await h.call("PUT", `/data-sources/${ds.id}/credentials`, { token, body: { username: "u" } })).status).toBe(400);
    expect((await h.call("PUT", `/data-sources/${ds.id}/credentials`, { token, body: { username: "u", password: "p", x: 1 } })).status).toBe(400);

    const del = await h.call("DELETE", `/data-sources/${ds.id}/credentials`, { token });
    expect(del.status).toBe(204);
    expect((await h.call("GET", `/data-sources/${ds.id}`, { token })).body.credentials).toBeNull();
    const after = (await h.store.db.select().from(dataSources).where(eq(dataSources.id, ds.id)))[0]!;
    expect([after.credentialsCiphertext, after.credentialsKeyId, after.credentialsUsername]).toEqual([null, null, null]);
    expect((await auditRows(ds.id)).map((e) => e.action)).toContain("data_source.credentials_deleted");
  });

  test("a ciphertext copied onto another row does not decrypt there (bound by aad)", async () => {
    const a = (await create(pg())).body;
    const b = (await create(pg())).body;
    await h.call("PUT", `/data-sources/${a.id}/credentials`, { token, body: { username: "u", password: PASSWORD } });
    const rowA = (await h.store.db.select().from(dataSources).where(eq(dataSources.id, a.id)))[0]!;
    await h.store.db
      .update(dataSources)
      .set({ credentialsUsername: "u", credentialsCiphertext: rowA.credentialsCiphertext, credentialsKeyId: rowA.credentialsKeyId, credentialsUpdatedAt: 1 })
      .where(eq(dataSources.id, b.id));
    const res = await h.call("POST", `/data-sources/${b.id}/verify`, { token });
    expect(res.status).toBe(500);
    expect(res.text).not.toContain(PASSWORD);
  });
});

describe("data sources: delete", () => {
  test("plain delete → 204, audited, then 404", async () => {
    const ds = (await create(pg())).body;
    expect((await h.call("DELETE", `/data-sources/${ds.id}`, { token })).status).toBe(204);
    expect((await h.call("GET", `/data-sources/${ds.id}`, { token })).status).toBe(404);
    expect((await auditRows(ds.id)).map((e) => e.action)).toEqual(["data_source.created", "data_source.deleted"]);
  });

  test("409 while attachments or jobs exist; cascade removes them in one go", async () => {
    const ds = (await create(pg())).body;
    const policy = await createPolicyVia(h, "org_ds");
    const att = await h.call("POST", "/attachments", { token, body: { dataSourceId: ds.id, policyId: policy.id, enabled: false } });
    expect(att.status).toBe(201);
    const job = await insertJob(ds.id, "succeeded", { objectKey: `org_ds/${ds.id}/x.dump.zst`, destinationId: policy.destinationId });

    const refused = await h.call("DELETE", `/data-sources/${ds.id}`, { token });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("CONFLICT");
    expect((await h.call("DELETE", `/data-sources/${ds.id}?cascade=false`, { token })).status).toBe(409);

    const jobs = await h.call("GET", `/data-sources/${ds.id}/backup-jobs`, { token });
    expect(jobs.body.items.map((j: any) => j.id)).toEqual([job]);

    const gone = await h.call("DELETE", `/data-sources/${ds.id}?cascade=true`, { token });
    expect(gone.status).toBe(204);
    expect(await h.store.db.select().from(attachments).where(eq(attachments.dataSourceId, ds.id))).toEqual([]);
    expect(await h.store.db.select().from(backupJobs).where(eq(backupJobs.dataSourceId, ds.id))).toEqual([]);
    expect(await h.store.db.select().from(dataSources).where(eq(dataSources.id, ds.id))).toEqual([]);
    const deleted = (await auditRows(ds.id)).find((e) => e.action === "data_source.deleted")!;
    expect(deleted.metadata).toMatchObject({ cascade: true, attachmentsDeleted: 1, jobsDeleted: 1, filesToDelete: 1 });
  });

  test("cascade removes the jobs' stored files through the storage driver", async () => {
    const ds = (await create(pg())).body;
    const ensure = await h.call("POST", "/storage-destinations/managed/ensure", { token });
    expect([200, 201]).toContain(ensure.status);
    const key = `org_ds/${ds.id}/2026/11/26/job.dump.zst`;
    const file = join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "/nonexistent", key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, "backup bytes");
    await insertJob(ds.id, "succeeded", { objectKey: key, destinationId: ensure.body.id });
    expect((await h.call("DELETE", `/data-sources/${ds.id}?cascade=true`, { token })).status).toBe(204);
    expect(existsSync(file)).toBe(false);
  });

  test("a cascade never runs over a running job", async () => {
    const ds = (await create(pg())).body;
    await insertJob(ds.id, "running");
    const res = await h.call("DELETE", `/data-sources/${ds.id}?cascade=true`, { token });
    expect(res.status).toBe(409);
    expect((await h.store.db.select().from(dataSources).where(eq(dataSources.id, ds.id))).length).toBe(1);
  });
});

describe("data sources: backup jobs list", () => {
  test("newest first, paginated, in the API's job shape", async () => {
    const ds = (await create(pg())).body;
    const ids = [
      await insertJob(ds.id),
      await insertJob(ds.id),
      await insertJob(ds.id, "succeeded", { format: { engine: "postgres", dump: "pg_custom", compression: "zstd", encrypted: true }, sizeBytes: 10, error: null }),
    ];
    const first = await h.call("GET", `/data-sources/${ds.id}/backup-jobs?limit=2`, { token });
    expect(first.status).toBe(200);
    expect(first.body.items.map((j: any) => j.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.items[0]).toMatchObject({
      dataSourceId: ds.id,
      trigger: "manual",
      status: "succeeded",
      attempt: 1,
      progress: { bytesIn: 0, bytesStored: 0 },
      sizeBytes: 10,
      format: { engine: "postgres", dump: "pg_custom", compression: "zstd", encrypted: true },
      error: null,
      fileDeletedAt: null,
    });
    const second = await h.call("GET", `/data-sources/${ds.id}/backup-jobs?limit=2&cursor=${first.body.cursors.next}`, { token });
    expect(second.body.items.map((j: any) => j.id)).toEqual([ids[0]]);
    expect(second.body.cursors.next).toBeNull();
    // A cursor of another list does not page this one.
    const other = (await create(pg())).body;
    expect((await h.call("GET", `/data-sources/${other.id}/backup-jobs?cursor=${first.body.cursors.next}`, { token })).status).toBe(400);
  });
});

describe("data sources: verify sqlite", () => {
  test("a real file verifies; a missing one and a non-database are DATABASE_NOT_FOUND; lastVerify is stored and audited", async () => {
    const file = join(files.path, "app.db");
    const db = new Database(file);
    db.run("CREATE TABLE t (x)");
    db.close();
    const ds = (await create({ name: "file-db", engine: "sqlite", path: file })).body;
    const ok = await h.call("POST", `/data-sources/${ds.id}/verify`, { token });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, serverVersion: expect.stringMatching(/^3\.\d+/), verifiedAt: expect.any(String) });
    expect((await h.call("GET", `/data-sources/${ds.id}`, { token })).body.lastVerify).toEqual(ok.body);
    const verified = (await auditRows(ds.id)).find((e) => e.action === "data_source.verified")!;
    expect(verified.metadata).toMatchObject({ ok: true });

    const missing = (await create({ name: "missing-db", engine: "sqlite", path: join(files.path, "nope.db") })).body;
    const res = await h.call("POST", `/data-sources/${missing.id}/verify`, { token });
    expect(res.body).toMatchObject({ ok: false, error: { code: "DATABASE_NOT_FOUND" } });
    expect(readdirSync(files.path)).not.toContain("nope.db"); // verify never creates the file

    const junk = join(files.path, "junk.db");
    await Bun.write(junk, "this is not a database file at all, just text ".repeat(20));
    const notDb = (await create({ name: "junk-db", engine: "sqlite", path: junk })).body;
    expect((await h.call("POST", `/data-sources/${notDb.id}/verify`, { token })).body).toMatchObject({ ok: false, error: { code: "DATABASE_NOT_FOUND" } });
  });

  test("the verify route is 404 for a missing source", async () => {
    expect((await h.call("POST", `/data-sources/ds_nope/verify`, { token })).status).toBe(404);
  });
});
