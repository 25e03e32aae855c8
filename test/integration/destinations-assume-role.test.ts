import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rotateMasterKeyCommand } from "../../src/cli/rotate-master-key.ts";
import { readKeyFile } from "../../src/crypto/key-files.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { storageDestinations } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { externalIdFor } from "../../src/storage/external-id.ts";
import { secretAad } from "../../src/storage/registry.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startFakeSts, type FakeSts } from "../helpers/fake-sts.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { storeGet } from "../helpers/store-sql.ts";

/**
 * assumeRole destinations from a tenant's side: the daemon's own AWS identity signs requests
 * only to the operator's STS endpoint (`storage.stsEndpoint`), never to an endpoint a tenant
 * names; the ExternalId is snapdb's per-org value, never one a tenant picks (else a tenant
 * could name another customer's role and its ExternalId: the confused deputy); and the
 * operator's `storage.allowedRoleArns` bounds which roles may be named at all.
 */

// The daemon's own identity, read by the SDK's default provider chain.
const DAEMON_KEY_ID = "AKIADAEMONOWNKEY0001";
const DAEMON_SECRET = "daemon-own-secret-access-key";
const ROLE = "arn:aws:iam::123456789012:role/snapdb-backups";

interface Seen {
  method: string;
  url: string;
  authorization: string;
  body: string;
}

/** An HTTP server a tenant controls: records every request and answers like a refusing S3/STS. */
function startAttacker() {
  const seen: Seen[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      seen.push({ method: request.method, url: url.pathname + url.search, authorization: request.headers.get("authorization") ?? "", body: await request.text() });
      return new Response(`<Error><Code>AccessDenied</Code><Message>no</Message></Error>`, { status: 403, headers: { "content-type": "application/xml" } });
    },
  });
  return { endpoint: `http://127.0.0.1:${server.port}`, seen, close: () => server.stop(true) };
}

const carriesDaemonKey = (authorization: string | undefined) => (authorization ?? "").includes(DAEMON_KEY_ID);

let h: Harness;
let s3: S3Server;
let sts: FakeSts;
let tenantS3: FaultProxy;
let attacker: ReturnType<typeof startAttacker>;
let token: string;
const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, key: process.env.AWS_SECRET_ACCESS_KEY, token: process.env.AWS_SESSION_TOKEN };

beforeAll(async () => {
  s3 = await startS3rver(["backups"]);
  // The operator's STS hands out s3rver's key pair as the role's temporary credentials.
  sts = startFakeSts(s3.accessKeyId, s3.secretAccessKey);
  // The tenant's S3 endpoint: s3rver behind a proxy that records each request's signature.
  tenantS3 = await startFaultProxy(s3.endpoint);
  attacker = startAttacker();
  process.env.AWS_ACCESS_KEY_ID = DAEMON_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = DAEMON_SECRET;
  delete process.env.AWS_SESSION_TOKEN;
  h = await createHarness({
    SNAPDB_STS_ENDPOINT: sts.endpoint,
    SNAPDB_ALLOWED_ROLE_ARNS: "arn:aws:iam::123456789012:role/snapdb-*,arn:aws:iam::210987654321:role/backups",
  });
  token = await h.token("org_ar");
});

afterAll(async () => {
  h.close();
  sts.close();
  attacker.close();
  await tenantS3.close();
  await s3.close();
  for (const [name, value] of [
    ["AWS_ACCESS_KEY_ID", savedEnv.id],
    ["AWS_SECRET_ACCESS_KEY", savedEnv.key],
    ["AWS_SESSION_TOKEN", savedEnv.token],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const roleBody = (extra: Record<string, unknown> = {}, auth: Record<string, unknown> = {}) => ({
  kind: "s3",
  bucket: "backups",
  endpoint: tenantS3.endpoint,
  auth: { type: "assumeRole", roleArn: ROLE, ...auth },
  ...extra,
});

const rowCount = async (org: string) => (await storeGet<{ n: number }>(h.store, "SELECT count(*) AS n FROM storage_destinations WHERE org_id = ?", [org], ["n"]))!.n;

const expect400 = (res: { status: number; body: any }, path: string) =>
  expect({ status: res.status, code: res.body?.code, path: res.body?.details?.[0]?.path }).toEqual({ status: 400, code: "INVALID_INPUT", path });

describe("assumeRole: the daemon's identity goes only to the operator's STS", () => {
  test("a tenant endpoint on an attacker's server never sees a request signed with the daemon's credentials", async () => {
    const created = await h.call("POST", "/storage-destinations", { token, body: roleBody({ name: "attack", endpoint: attacker.endpoint }) });
    expect(created.status).toBe(201);
    const stsBefore = sts.calls.length;
    const verify = await h.call("POST", `/storage-destinations/${created.body.id}/verify`, { token });
    expect(verify.body.ok).toBe(false);
    expect(attacker.seen.length).toBeGreaterThan(0);
    expect(attacker.seen.filter((r) => carriesDaemonKey(r.authorization) || r.body.includes("AssumeRole"))).toEqual([]);
    // The role was asked for at the operator's STS; only the assumed role's credentials went to the tenant's host.
    expect(sts.calls.length).toBeGreaterThan(stsBefore);
    expect(attacker.seen.every((r) => r.authorization.includes(`Credential=${s3.accessKeyId}/`))).toBe(true);
  });

  test("a tenant-chosen stsEndpoint is refused (400, unknown field) and no row is written", async () => {
    const before = await rowCount("org_ar");
    const res = await h.call("POST", "/storage-destinations", { token, body: roleBody({ name: "sts-attack", stsEndpoint: attacker.endpoint }) });
    expect400(res, "/stsEndpoint");
    expect(await rowCount("org_ar")).toBe(before);
    const existing = await h.call("POST", "/storage-destinations", { token, body: roleBody({ name: "patch-target" }) });
    const patch = await h.call("PATCH", `/storage-destinations/${existing.body.id}`, { token, body: { stsEndpoint: attacker.endpoint } });
    expect400(patch, "/stsEndpoint");
    expect(attacker.seen.filter((r) => carriesDaemonKey(r.authorization))).toEqual([]);
  });

  test("STS gets snapdb's ExternalId, signed by the daemon; the assumed credentials are used on the tenant's S3", async () => {
    const info = await h.call("GET", "/storage-destinations/assume-role-info", { token });
    expect(info.status).toBe(200);
    const created = await h.call("POST", "/storage-destinations", { token, body: roleBody({ name: "good" }) });
    expect(created.status).toBe(201);
    expect(created.body.auth).toEqual({ type: "assumeRole", roleArn: ROLE, externalId: info.body.externalId });
    const stsBefore = sts.calls.length;
    const s3Before = tenantS3.seen.length;
    const verify = await h.call("POST", `/storage-destinations/${created.body.id}/verify`, { token });
    expect(verify.body).toMatchObject({ ok: true });
    const asked = sts.calls.slice(stsBefore);
    expect(asked.length).toBe(1);
    expect(asked[0]!.get("Action")).toBe("AssumeRole");
    expect(asked[0]!.get("RoleArn")).toBe(ROLE);
    expect(asked[0]!.get("ExternalId")).toBe(info.body.externalId);
    expect(sts.authorizations.slice(stsBefore).every((a) => a.includes(`Credential=${DAEMON_KEY_ID}/`))).toBe(true);
    const onS3 = tenantS3.seen.slice(s3Before);
    expect(onS3.map((r) => r.method).sort()).toEqual(["DELETE", "GET", "PUT"]);
    for (const r of onS3) {
      expect(String(r.headers?.authorization)).toContain(`Credential=${s3.accessKeyId}/`);
      expect(r.headers?.["x-amz-security-token"]).toBe("session-token");
    }
    // Nowhere but the operator's STS did the daemon's key id travel.
    expect(tenantS3.seen.filter((r) => carriesDaemonKey(String(r.headers?.authorization ?? "")))).toEqual([]);
    expect(attacker.seen.filter((r) => carriesDaemonKey(r.authorization))).toEqual([]);
  });

  test("a tenant-sent externalId is refused (400 on /auth/externalId): no row on create, no change on patch", async () => {
    const before = await rowCount("org_ar");
    const res = await h.call("POST", "/storage-destinations", { token, body: roleBody({ name: "chosen-ext" }, { externalId: "victims-external-id" }) });
    expect400(res, "/auth/externalId");
    expect(res.body.message).toContain("read-only");
    expect(await rowCount("org_ar")).toBe(before);
    const created = await h.call("POST", "/storage-destinations", { token, body: roleBody({ name: "patch-ext" }) });
    const patch = await h.call("PATCH", `/storage-destinations/${created.body.id}`, {
      token,
      body: { auth: { type: "assumeRole", roleArn: ROLE, externalId: "victims-external-id" } },
    });
    expect400(patch, "/auth/externalId");
    const after = await h.call("GET", `/storage-destinations/${created.body.id}`, { token });
    expect(after.body.updatedAt).toBe(created.body.updatedAt);
    expect(after.text).not.toContain("victims-external-id");
  });

  test("roleArn: a malformed ARN or one outside storage.allowedRoleArns → 400 on /auth/roleArn, no row", async () => {
    const before = await rowCount("org_ar");
    for (const roleArn of [
      "arn:aws:iam::999999999999:role/snapdb-backups", // not in the allow-list
      "arn:aws:iam::123456789012:role/other", // account allowed, name not
      "arn:aws:iam::210987654321:role/backups-2", // the glob has no wildcard there
      "arn:aws:iam::1234567890:role/snapdb-x", // not 12 digits
      "arn:aws:iam::123456789012:user/snapdb-x", // not a role
      "arn:aws:s3:::snapdb-bucket",
      "arn:minio:iam:::role/snapdb-x",
    ]) {
      const res = await h.call("POST", "/storage-destinations", { token, body: roleBody({ name: `r-${roleArn}` }, { roleArn }) });
      expect({ roleArn, status: res.status, path: res.body?.details?.[0]?.path }).toEqual({ roleArn, status: 400, path: "/auth/roleArn" });
    }
    expect(await rowCount("org_ar")).toBe(before);
    const ok = await h.call("POST", "/storage-destinations", {
      token,
      body: roleBody({ name: "other-account" }, { roleArn: "arn:aws:iam::210987654321:role/backups" }),
    });
    expect(ok.status).toBe(201);
    const patch = await h.call("PATCH", `/storage-destinations/${ok.body.id}`, {
      token,
      body: { auth: { type: "assumeRole", roleArn: "arn:aws:iam::999999999999:role/snapdb-backups" } },
    });
    expect400(patch, "/auth/roleArn");
  });

  test("assume-role-info: the ExternalId shown on destinations, stable across calls, different per org", async () => {
    const first = await h.call("GET", "/storage-destinations/assume-role-info", { token });
    const second = await h.call("GET", "/storage-destinations/assume-role-info", { token });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ externalId: expect.stringMatching(/^snapdb-[0-9a-f]{32}$/), stsEndpoint: sts.endpoint });
    expect(second.body).toEqual(first.body);
    const list = await h.call("GET", "/storage-destinations?limit=100", { token });
    const roles = list.body.items.filter((d: any) => d.auth?.type === "assumeRole");
    expect(roles.length).toBeGreaterThan(0);
    expect(new Set(roles.map((d: any) => d.auth.externalId))).toEqual(new Set([first.body.externalId]));
    const one = await h.call("GET", `/storage-destinations/${roles[0].id}`, { token });
    expect(one.body.auth.externalId).toBe(first.body.externalId);

    const other = await h.call("GET", "/storage-destinations/assume-role-info", { token: await h.token("org_other") });
    expect(other.status).toBe(200);
    expect(other.body.externalId).not.toBe(first.body.externalId);
    // Reading needs backup.read only.
    const reader = await h.token("org_ar", { scopes: ["backup.read"] });
    expect((await h.call("GET", "/storage-destinations/assume-role-info", { token: reader })).body).toEqual(first.body);
    expect((await h.call("GET", "/storage-destinations/assume-role-info", { token: await h.token("org_ar", { scopes: ["backup.write"] }) })).status).toBe(403);
  });

  test("a row from before: its tenant stsEndpoint and sealed ExternalId are neither used nor shown", async () => {
    // What an older version stored for a tenant that named the attacker as its STS and picked an ExternalId.
    const id = newId("dst");
    const sealed = new SecretBox(h.master).seal(JSON.stringify({ externalId: "victims-external-id" }), secretAad(id));
    const now = Date.now();
    await h.store.db.insert(storageDestinations).values({
      id,
      orgId: "org_ar",
      kind: "s3",
      name: "legacy",
      settings: {
        endpoint: tenantS3.endpoint,
        stsEndpoint: attacker.endpoint,
        region: "us-east-1",
        bucket: "backups",
        prefix: "",
        forcePathStyle: true,
        auth: { type: "assumeRole", roleArn: ROLE },
      },
      secretCiphertext: sealed.ciphertext,
      secretKeyId: sealed.keyId,
      createdAt: now,
      updatedAt: now,
    });
    const { externalId } = (await h.call("GET", "/storage-destinations/assume-role-info", { token })).body;
    const shown = await h.call("GET", `/storage-destinations/${id}`, { token });
    expect(shown.body.stsEndpoint).toBeUndefined();
    expect(shown.body.auth).toEqual({ type: "assumeRole", roleArn: ROLE, externalId });
    const attackerBefore = attacker.seen.length;
    const stsBefore = sts.calls.length;
    const verify = await h.call("POST", `/storage-destinations/${id}/verify`, { token });
    expect(verify.body).toMatchObject({ ok: true });
    expect(attacker.seen.length).toBe(attackerBefore);
    expect(sts.calls.slice(stsBefore).map((c) => c.get("ExternalId"))).toEqual([externalId]);
    // A patch rewrites the settings without the old field.
    await h.call("PATCH", `/storage-destinations/${id}`, { token, body: { name: "legacy-renamed" } });
    const row = (await h.store.db.select().from(storageDestinations)).find((r) => r.id === id)!;
    expect(Object.keys(row.settings)).not.toContain("stsEndpoint");
  });

  test("switching a destination from accessKey to assumeRole drops the sealed secret", async () => {
    const created = await h.call("POST", "/storage-destinations", {
      token,
      body: { kind: "s3", name: "switch", bucket: "backups", endpoint: tenantS3.endpoint, auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: "to-be-dropped" } },
    });
    const patched = await h.call("PATCH", `/storage-destinations/${created.body.id}`, { token, body: { auth: { type: "assumeRole", roleArn: ROLE } } });
    expect(patched.status).toBe(200);
    expect(patched.body.auth.type).toBe("assumeRole");
    expect(await storeGet(h.store, "SELECT secret_ciphertext AS c, secret_key_id AS k FROM storage_destinations WHERE id = ?", [created.body.id])).toEqual({
      c: null,
      k: null,
    });
    expect((await h.call("POST", `/storage-destinations/${created.body.id}/verify`, { token })).body).toMatchObject({ ok: true });
  });
});

describe("the ExternalId outlives a master key rotation", () => {
  test("rotate-master-key leaves every org's ExternalId as the tenant wrote it into its trust policy", async () => {
    const r = await createHarness();
    try {
      const tokenOf = await r.token("org_rot");
      const before = (await r.call("GET", "/storage-destinations/assume-role-info", { token: tokenOf })).body.externalId;
      expect(before).toMatch(/^snapdb-/);
      expect(await rotateMasterKeyCommand.run(r.cliFlags, [])).toBe(0);
      const newKey = readKeyFile(r.config.masterKeyFile);
      expect(Buffer.from(newKey).equals(Buffer.from(r.master))).toBe(false);
      // What a daemon started on the rotated key derives.
      expect(await externalIdFor(r.store.db, new SecretBox(newKey), "org_rot")).toBe(before);
    } finally {
      r.close();
    }
  });
});
