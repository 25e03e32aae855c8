import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { backupPolicies, storageDestinations } from "../../src/db/schema.ts";
import { assumeRoleProvider, REFRESH_MARGIN_MS } from "../../src/storage/assume-role.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startFakeSts, type FakeSts } from "../helpers/fake-sts.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { storeGet, storeRun } from "../helpers/store-sql.ts";
import { tempDir } from "../helpers/tmp.ts";

let h: Harness;
let s3: S3Server;
let sts: FakeSts;
let roots: { path: string; cleanup: () => void };
let token: string;
const SECRET = "super-secret-access-key-value";
const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, key: process.env.AWS_SECRET_ACCESS_KEY };

beforeAll(async () => {
  s3 = await startS3rver(["backups"]);
  sts = startFakeSts(s3.accessKeyId, s3.secretAccessKey);
  roots = tempDir("snapdb-roots");
  // The daemon's own identity, which asks STS for the role (the default provider chain reads it).
  process.env.AWS_ACCESS_KEY_ID = "DAEMONKEY";
  process.env.AWS_SECRET_ACCESS_KEY = "daemon-secret";
  h = await createHarness({ SNAPDB_ALLOWED_LOCAL_ROOTS: roots.path, SNAPDB_STS_ENDPOINT: sts.endpoint });
  token = await h.token("org_d");
});
afterAll(async () => {
  h.close();
  sts.close();
  await s3.close();
  roots.cleanup();
  process.env.AWS_ACCESS_KEY_ID = savedEnv.id;
  process.env.AWS_SECRET_ACCESS_KEY = savedEnv.key;
  if (savedEnv.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
  if (savedEnv.key === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
});

const s3Body = (extra: Record<string, unknown> = {}) => ({
  kind: "s3",
  bucket: "backups",
  endpoint: s3.endpoint,
  auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: SECRET },
  ...extra,
});

describe("storage destinations API", () => {
  test("create s3: secrets are write-only, sealed at rest, and kept out of the audit log", async () => {
    const res = await h.call("POST", "/storage-destinations", { token, body: s3Body({ name: "byo", prefix: "team/x" }) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ kind: "s3", name: "byo", bucket: "backups", prefix: "team/x", forcePathStyle: true, region: "us-east-1" });
    expect(res.body.auth).toEqual({ type: "accessKey", accessKeyId: s3.accessKeyId });
    expect(res.text).not.toContain(SECRET);
    const got = await h.call("GET", `/storage-destinations/${res.body.id}`, { token });
    expect(got.text).not.toContain(SECRET);
    const row = await storeGet(h.store, "SELECT * FROM storage_destinations WHERE id = ?", [res.body.id]);
    expect(row).toBeDefined();
    expect(JSON.stringify(row)).not.toContain(SECRET);
    const audit = await h.call("GET", `/audit-log?targetId=${res.body.id}`, { token });
    expect(audit.body.items.map((e: { action: string }) => e.action)).toEqual(["storage_destination.created"]);
    expect(audit.text).not.toContain(SECRET);
  });

  test("validation: unknown fields, foreign fields, missing auth, bad prefix, reserved name, duplicate name", async () => {
    const bad = async (body: unknown, path: string) => {
      const res = await h.call("POST", "/storage-destinations", { token, body });
      expect({ status: res.status, code: res.body.code, path: res.body.details?.[0]?.path }).toEqual({ status: 400, code: "INVALID_INPUT", path });
    };
    await bad({ ...s3Body(), color: "red" }, "/color");
    await bad({ ...s3Body(), path: "/tmp" }, "/path");
    await bad({ kind: "s3", bucket: "backups" }, "/auth");
    await bad(s3Body({ prefix: "../up" }), "/prefix");
    await bad(s3Body({ name: "managed" }), "/name");
    await bad(s3Body({ auth: { type: "assumeRole", roleArn: "nope" } }), "/auth/roleArn");
    await bad(s3Body({ auth: { type: "assumeRole", roleArn: "arn:aws:iam::123456789012:role/snapdb", externalId: "abc" } }), "/auth/externalId");
    await bad(s3Body({ stsEndpoint: "http://127.0.0.1:9" }), "/stsEndpoint");
    await bad(s3Body({ endpoint: "http://user:pw@host" }), "/endpoint");
    const dup = await h.call("POST", "/storage-destinations", { token, body: s3Body({ name: "byo" }) });
    expect(dup.status).toBe(409);
  });

  test("local: only under the allowed roots (400 names the path)", async () => {
    const outside = await h.call("POST", "/storage-destinations", { token, body: { kind: "local", path: "/var/tmp/elsewhere" } });
    expect(outside.status).toBe(400);
    expect(outside.body.details[0].path).toBe("/path");
    expect(outside.body.message).toContain("/var/tmp/elsewhere");
    const dotdot = await h.call("POST", "/storage-destinations", { token, body: { kind: "local", path: `${roots.path}/../etc` } });
    expect(dotdot.status).toBe(400);
    const ok = await h.call("POST", "/storage-destinations", { token, body: { kind: "local", path: join(roots.path, "nightly") } });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ kind: "local", path: join(roots.path, "nightly"), name: join(roots.path, "nightly") });
    const verify = await h.call("POST", `/storage-destinations/${ok.body.id}/verify`, { token });
    expect(verify.body.ok).toBe(true);
    expect(typeof verify.body.latencyMs).toBe("number");
  });

  test("list is paginated, newest first, filterable by kind", async () => {
    const page1 = await h.call("GET", "/storage-destinations?limit=1", { token });
    expect(page1.body.items.length).toBe(1);
    expect(page1.body.cursors.next).toBeString();
    const page2 = await h.call("GET", `/storage-destinations?limit=1&cursor=${page1.body.cursors.next}`, { token });
    expect(page2.body.items[0].id < page1.body.items[0].id).toBe(true);
    const locals = await h.call("GET", "/storage-destinations?kind=local", { token });
    expect(locals.body.items.every((d: { kind: string }) => d.kind === "local")).toBe(true);
  });

  test("patch: rename, new auth re-sealed, location fixed once files exist; audit without secrets", async () => {
    const created = await h.call("POST", "/storage-destinations", { token, body: s3Body({ name: "to-patch" }) });
    const id = created.body.id;
    const patched = await h.call("PATCH", `/storage-destinations/${id}`, {
      token,
      body: { name: "patched", auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe("patched");
    expect((await h.call("POST", `/storage-destinations/${id}/verify`, { token })).body).toMatchObject({ ok: true });
    expect((await h.call("PATCH", `/storage-destinations/${id}`, { token, body: { path: "/x" } })).status).toBe(400);
    // A stored backup file pins bucket/prefix.
    await storeRun(h.store, "INSERT INTO data_sources (id, org_id, name, engine, created_at, updated_at) VALUES ('ds_P', 'org_d', 'p', 'sqlite', 1, 1)");
    await storeRun(
      h.store,
      "INSERT INTO backup_jobs (id, org_id, data_source_id, destination_id, trigger, status, queued_at, object_key) VALUES ('job_P', 'org_d', 'ds_P', ?, 'manual', 'succeeded', 1, 'k')",
      [id],
    );
    const move = await h.call("PATCH", `/storage-destinations/${id}`, { token, body: { prefix: "elsewhere" } });
    expect(move.status).toBe(409);
    const audit = await h.call("GET", `/audit-log?targetId=${id}&action=storage_destination.updated,storage_destination.verified`, { token });
    expect(audit.body.items.map((e: { action: string }) => e.action)).toEqual(["storage_destination.verified", "storage_destination.updated"]);
    expect(audit.text).not.toContain("secretAccessKey");
  });

  test("delete: 409 while a policy uses it, 204 after, then 404", async () => {
    const created = await h.call("POST", "/storage-destinations", { token, body: s3Body({ name: "to-delete" }) });
    const id = created.body.id;
    await h.store.db.insert(backupPolicies).values({
      id: "pol_X",
      orgId: "org_d",
      name: "uses-it",
      scheduleCron: "0 1 * * *",
      timezone: "UTC",
      destinationId: id,
      retention: {},
      compression: { algorithm: "zstd", level: 3 },
      encryption: { enabled: false, recipients: [] },
      timeoutSeconds: 60,
      retries: 0,
      createdAt: 1,
      updatedAt: 1,
    });
    const blocked = await h.call("DELETE", `/storage-destinations/${id}`, { token });
    expect(blocked.status).toBe(409);
    expect(blocked.body.message).toContain("uses-it");
    await storeRun(h.store, "DELETE FROM backup_policies WHERE id = 'pol_X'");
    expect((await h.call("DELETE", `/storage-destinations/${id}`, { token })).status).toBe(204);
    expect((await h.call("GET", `/storage-destinations/${id}`, { token })).status).toBe(404);
    const audit = await h.call("GET", `/audit-log?targetId=${id}&action=storage_destination.deleted`, { token });
    expect(audit.body.items.length).toBe(1);
  });

  test("verify reports BUCKET_NOT_FOUND, ACCESS_DENIED and STORAGE_UNREACHABLE", async () => {
    const outcome = async (body: Record<string, unknown>) => {
      const created = await h.call("POST", "/storage-destinations", { token, body });
      expect(created.status).toBe(201);
      const res = await h.call("POST", `/storage-destinations/${created.body.id}/verify`, { token });
      expect(res.status).toBe(200);
      const again = await h.call("GET", `/storage-destinations/${created.body.id}`, { token });
      expect(again.body.lastVerify.ok).toBe(res.body.ok);
      return res.body;
    };
    expect((await outcome(s3Body({ bucket: "no-such-bucket" }))).error.code).toBe("BUCKET_NOT_FOUND");
    expect((await outcome(s3Body({ name: "bad-key", auth: { type: "accessKey", accessKeyId: "UNKNOWNKEY", secretAccessKey: "x" } }))).error.code).toBe("ACCESS_DENIED");
    const unreachable = await outcome(s3Body({ name: "down", endpoint: "http://127.0.0.1:9" }));
    expect(unreachable.error.code).toBe("STORAGE_UNREACHABLE");
    expect(JSON.stringify(unreachable)).not.toContain(SECRET);
  }, 60_000);

  test("assumeRole: the operator's STS is asked with the role and snapdb's ExternalId; failures are ASSUME_ROLE_FAILED", async () => {
    const role = { type: "assumeRole", roleArn: "arn:aws:iam::123456789012:role/snapdb" };
    const created = await h.call("POST", "/storage-destinations", { token, body: s3Body({ name: "role", auth: role }) });
    expect(created.status).toBe(201);
    const { externalId } = (await h.call("GET", "/storage-destinations/assume-role-info", { token })).body;
    expect(created.body.auth).toEqual({ type: "assumeRole", roleArn: role.roleArn, externalId });
    // Nothing to seal: the ExternalId is derived, not stored with the row.
    expect(await storeGet(h.store, "SELECT secret_ciphertext AS c FROM storage_destinations WHERE id = ?", [created.body.id])).toEqual({ c: null });
    const ok = await h.call("POST", `/storage-destinations/${created.body.id}/verify`, { token });
    expect(ok.body).toMatchObject({ ok: true });
    expect(sts.calls.at(-1)?.get("Action")).toBe("AssumeRole");
    expect(sts.calls.at(-1)?.get("RoleArn")).toBe(role.roleArn);
    expect(sts.calls.at(-1)?.get("ExternalId")).toBe(externalId);
    const calls = sts.calls.length;
    await h.call("POST", `/storage-destinations/${created.body.id}/verify`, { token });
    expect(sts.calls.length).toBe(calls); // cached credentials reused

    sts.refuse = true;
    const refused = await h.call("POST", "/storage-destinations", {
      token,
      body: s3Body({ name: "role-refused", auth: role }),
    });
    const res = await h.call("POST", `/storage-destinations/${refused.body.id}/verify`, { token });
    expect(res.body.error.code).toBe("ASSUME_ROLE_FAILED");
    sts.refuse = false;
  });

  test("assumed-role credentials are cached until shortly before they expire, one STS call at a time", async () => {
    let now = Date.now();
    sts.lifetimeSeconds = 3600;
    const before = sts.calls.length;
    const provider = assumeRoleProvider({ roleArn: "arn:aws:iam::123456789012:role/r", externalId: "e-1", region: "us-east-1", endpoint: sts.endpoint }, () => now);
    const [a, b] = await Promise.all([provider(), provider()]);
    expect(a).toBe(b);
    expect(sts.calls.length - before).toBe(1);
    now += 3600_000 - REFRESH_MARGIN_MS - 60_000;
    await provider();
    expect(sts.calls.length - before).toBe(1);
    now += 120_000;
    await provider();
    expect(sts.calls.length - before).toBe(2);
  });
});

describe("managed destination", () => {
  test("ensure: 201 then 200 with the same id, also under concurrent calls; one managed row per org", async () => {
    const t2 = await h.token("org_race");
    const results = await Promise.all(Array.from({ length: 5 }, () => h.call("POST", "/storage-destinations/managed/ensure", { token: t2 })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results[0]!.body).toMatchObject({ kind: "managed", name: "managed", managed: { backend: "local" } });
    // The index that makes racing ensures converge refuses a second managed row outright.
    expect(async () => await h.store.db.insert(storageDestinations).values({ id: "dst_DUP", orgId: "org_race", kind: "managed", name: "other", settings: {}, createdAt: 1, updatedAt: 1 })).toThrow();
    const id = results[0]!.body.id;
    expect((await h.call("PATCH", `/storage-destinations/${id}`, { token: t2, body: { name: "mine" } })).status).toBe(409);
    expect((await h.call("DELETE", `/storage-destinations/${id}`, { token: t2 })).status).toBe(409);
    const verify = await h.call("POST", `/storage-destinations/${id}/verify`, { token: t2 });
    expect(verify.body.ok).toBe(true);
    const audit = await h.call("GET", `/audit-log?targetId=${id}&action=storage_destination.created`, { token: t2 });
    expect(audit.body.items.length).toBe(1);
  });

  test("managed on S3: a per-org prefix in the operator's bucket", async () => {
    const cfgDir = tempDir("snapdb-managed-s3");
    mkdirSync(cfgDir.path, { recursive: true });
    const file = join(cfgDir.path, "snapdb.toml");
    writeFileSync(
      file,
      `[managedStorage]\ntype = "s3"\nendpoint = "${s3.endpoint}"\nregion = "us-east-1"\nbucket = "backups"\nprefix = "managed"\nforcePathStyle = true\naccessKeyId = "${s3.accessKeyId}"\nsecretAccessKey = "${s3.secretAccessKey}"\n`,
    );
    const m = await createHarness({ SNAPDB_CONFIG: file });
    try {
      const t = await m.token("org_m");
      const ensured = await m.call("POST", "/storage-destinations/managed/ensure", { token: t });
      expect(ensured.status).toBe(201);
      expect(ensured.body.managed).toEqual({ backend: "s3" });
      expect(ensured.text).not.toContain(s3.endpoint);
      const verify = await m.call("POST", `/storage-destinations/${ensured.body.id}/verify`, { token: t });
      expect(verify.body).toMatchObject({ ok: true });
      const dst = (await m.store.db.select().from(storageDestinations))[0]!;
      const key = m.storage.objectKeyFor(dst, { dataSourceId: "ds_1", jobId: "job_1", ext: "sql.zst", at: new Date("2026-01-02T00:00:00Z") });
      expect(key).toBe("managed/org_m/ds_1/2026/01/02/job_1.sql.zst");
    } finally {
      m.close();
      cfgDir.cleanup();
    }
  });
});
