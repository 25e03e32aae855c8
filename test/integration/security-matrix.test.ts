import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { SignJWT } from "jose";
import { derivedKey } from "../../src/cli/runtime.ts";
import { storageDestinations } from "../../src/db/schema.ts";
import { SCOPES } from "../../src/http/auth.ts";
import { DownloadTokens } from "../../src/storage/download-token.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { fillPath, securedRoutes, type SpecRoute } from "../helpers/security-suite.ts";
import { tempDir } from "../helpers/tmp.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";

/**
 * What test/integration/security.test.ts does not cover: a configured issuer, HS/RS
 * confusion against a daemon that verifies with a public key, and the signed download
 * links of local-disk destinations (bound to one file, expiring, dead once the file is gone,
 * tamper-proof, never a way out of the destination's directory).
 */
const now = () => Math.floor(Date.now() / 1000);
const claims = (org = "org_a") => ({ org_id: org, scope: SCOPES.join(" ") });
const scratch = tempDir("snapdb-secmatrix");

/** Every secured route with the given token: the status and code each one answers. */
async function statusesFor(h: Harness, routes: SpecRoute[], token: string) {
  const out: Record<string, string> = {};
  for (const r of routes) {
    const res = await h.call(r.method, fillPath(r.template, {}), { token, body: {} });
    out[`${r.method} ${r.template}`] = `${res.status} ${res.body?.code ?? ""}`.trim();
  }
  return out;
}

const all401 = (routes: SpecRoute[]) => Object.fromEntries(routes.map((r) => [`${r.method} ${r.template}`, "401 UNAUTHENTICATED"]));

afterAll(() => scratch.cleanup());

describe("a configured issuer (SNAPDB_JWT_ISSUER)", () => {
  const ISSUER = "https://id.example.test/";
  let h: Harness;
  let routes: SpecRoute[];
  beforeAll(async () => {
    h = await createHarness({ SNAPDB_JWT_ISSUER: ISSUER });
    routes = await securedRoutes(h);
  });
  afterAll(() => h?.close());

  const sign = (iss?: string) => {
    const jwt = new SignJWT(claims())
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("mallory")
      .setAudience("snapdb")
      .setExpirationTime(now() + 600);
    if (iss !== undefined) jwt.setIssuer(iss);
    return jwt.sign(h.secret);
  };

  test("wrong, look-alike and missing iss → 401 on every route", async () => {
    for (const iss of ["https://evil.example.test/", "https://id.example.test", "HTTPS://ID.EXAMPLE.TEST/", ""]) {
      expect({ iss, answers: await statusesFor(h, routes, await sign(iss)) }).toEqual({ iss, answers: all401(routes) });
    }
    expect(await statusesFor(h, routes, await sign())).toEqual(all401(routes));
  });

  test("the right iss passes authentication (so the 401s above are about iss)", async () => {
    const ok = await h.call("GET", "/audit-log", { token: await sign(ISSUER) });
    expect(ok.status).toBe(200);
    const res = await h.call("GET", "/audit-log", { token: await sign("https://evil.example.test/") });
    expect(res.body).toEqual({ code: "UNAUTHENTICATED", message: "token issuer is not accepted" });
  });
});

describe("a daemon that verifies RS256 with a public key (SNAPDB_JWT_PUBLIC_KEY_FILE)", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;
  const pemFile = join(scratch.path, "issuer.pub.pem");
  let h: Harness;
  let routes: SpecRoute[];
  beforeAll(async () => {
    writeFileSync(pemFile, pem);
    h = await createHarness({ SNAPDB_JWT_PUBLIC_KEY_FILE: pemFile });
    routes = await securedRoutes(h);
  });
  afterAll(() => h?.close());

  const hs = (key: Uint8Array) =>
    new SignJWT(claims())
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("mallory")
      .setAudience("snapdb")
      .setExpirationTime(now() + 600)
      .sign(key);

  test("HS256 signed with the public key's bytes (PEM, trimmed PEM, DER) → 401 on every route", async () => {
    const der = rsa.publicKey.export({ type: "spki", format: "der" });
    for (const [name, key] of Object.entries({ pem: Buffer.from(pem), trimmed: Buffer.from(pem.trim()), der })) {
      expect({ name, answers: await statusesFor(h, routes, await hs(new Uint8Array(key))) }).toEqual({ name, answers: all401(routes) });
    }
  });

  test("the daemon has no HS secret to fall back on, and a real RS256 token passes", async () => {
    expect(h.secret).toBeNull();
    const good = await new SignJWT(claims())
      .setProtectedHeader({ alg: "RS256" })
      .setSubject("ops")
      .setAudience("snapdb")
      .setExpirationTime(now() + 600)
      .sign(rsa.privateKey);
    expect((await h.call("GET", "/audit-log", { token: good })).status).toBe(200);
    const ps = await new SignJWT(claims())
      .setProtectedHeader({ alg: "PS256" })
      .setSubject("ops")
      .setAudience("snapdb")
      .setExpirationTime(now() + 600)
      .sign(rsa.privateKey);
    expect((await h.call("GET", "/audit-log", { token: ps })).body).toEqual({ code: "UNAUTHENTICATED", message: "token algorithm is not accepted" });
  });
});

describe("download links of a local-disk destination", () => {
  let h: Harness;
  let token: string;
  let jobA: any;
  let jobB: any;
  const ORG = "org_dl";
  const sha256 = (b: ArrayBuffer) => createHash("sha256").update(new Uint8Array(b)).digest("hex");
  const pathOf = (url: string) => new URL(url).pathname;
  // Through the harness, so every download answer is held to the served document too.
  const get = (path: string) => h.request("GET", path);

  beforeAll(async () => {
    h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path });
    await h.runner.start();
    token = await h.token(ORG);
    const managed = await managedDestination(h, token);
    const policy = await createPolicy(h, token, managed.id);
    const a = await createSource(h, token, { engine: "sqlite", path: smallSqlite(scratch.path, 3) });
    const b = await createSource(h, token, { engine: "sqlite", path: smallSqlite(scratch.path, 50) });
    await attach(h, token, a.id, policy.id);
    await attach(h, token, b.id, policy.id);
    jobA = await backupNow(h, token, a.id);
    jobB = await backupNow(h, token, b.id);
    expect([jobA.status, jobB.status]).toEqual(["succeeded", "succeeded"]);
  }, 60_000);
  afterAll(async () => {
    await h?.runner.stop(1000);
    h?.close();
  });

  const linkFor = async (job: any) => (await must(h, token, "POST", `/backup-jobs/${job.id}/download-link`, { expiresInSeconds: 60 })).url as string;

  test("a link serves exactly its own job's file, without a bearer token", async () => {
    const res = await get(pathOf(await linkFor(jobA)));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(sha256(await res.arrayBuffer())).toBe(jobA.sha256);
    expect(jobA.sha256).not.toBe(jobB.sha256);
  });

  test("a token cannot be pointed at another job's file or stretched: any edit → 403", async () => {
    const [payloadA, macA] = pathOf(await linkFor(jobA))
      .split("/")
      .at(-1)!
      .split(".") as [string, string];
    const [payloadB] = pathOf(await linkFor(jobB))
      .split("/")
      .at(-1)!
      .split(".") as [string, string];
    const decoded = JSON.parse(Buffer.from(payloadA, "base64url").toString());
    const reencode = (p: unknown) => Buffer.from(JSON.stringify(p)).toString("base64url");
    const forged = [
      `${payloadB}.${macA}`, // B's file with A's signature
      `${reencode({ ...decoded, k: jobB.objectKey })}.${macA}`,
      `${reencode({ ...decoded, e: decoded.e + 86_400_000 })}.${macA}`,
      `${reencode({ ...decoded, d: "dst_other" })}.${macA}`,
      `${payloadA}.${macA.slice(0, -1)}${macA.endsWith("A") ? "B" : "A"}`,
      `${payloadA}x.${macA}`,
      `${payloadA}.`,
      `${payloadA}.${macA}.${macA}`,
      payloadA,
    ];
    for (const t of forged) {
      const res = await get(`/downloads/${t}`);
      expect({ t, status: res.status, body: await res.json() }).toEqual({ t, status: 403, body: { code: "FORBIDDEN", message: "download link is invalid" } });
    }
  });

  test("an expired link → 403 (signed with the real key, issued in the past)", async () => {
    const tokens = new DownloadTokens(derivedKey(h.master, "download"));
    const grant = JSON.parse(
      Buffer.from(
        pathOf(await linkFor(jobA))
          .split("/")
          .at(-1)!
          .split(".")[0]!,
        "base64url",
      ).toString(),
    );
    const expired = tokens.sign({ destinationId: grant.d, key: grant.k, filename: grant.f, expiresAt: Date.now() - 1 });
    expect(await (await get(`/downloads/${expired}`)).json()).toEqual({ code: "FORBIDDEN", message: "download link has expired" });
    // The same through the driver, as the API would mint it an hour ago for 60 s.
    const row = (await h.store.db.select().from(storageDestinations).where(eq(storageDestinations.id, grant.d)))[0]!;
    const old = await h.storage.driverFor(row).downloadUrl(jobA.objectKey, { expiresInSeconds: 60, issuedAt: new Date(Date.now() - 3_600_000) });
    expect(await (await get(pathOf(old))).json()).toEqual({ code: "FORBIDDEN", message: "download link has expired" });
    const fresh = await h.storage.driverFor(row).downloadUrl(jobA.objectKey, { expiresInSeconds: 60 });
    expect((await get(pathOf(fresh))).status).toBe(200);
  });

  test("a signed grant for a key outside the org's files never leaves the destination's directory", async () => {
    const tokens = new DownloadTokens(derivedKey(h.master, "download"));
    const grant = JSON.parse(
      Buffer.from(
        pathOf(await linkFor(jobA))
          .split("/")
          .at(-1)!
          .split(".")[0]!,
        "base64url",
      ).toString(),
    );
    for (const key of ["../snapdb.db", "../../snapdb.db", "../master.key", "/etc/passwd", `${ORG}/../../jwt-secret`, "", "."]) {
      const t = tokens.sign({ destinationId: grant.d, key, filename: "x", expiresAt: Date.now() + 60_000 });
      const res = await get(`/downloads/${t}`);
      expect({ key, status: res.status }).toEqual({ key, status: 404 });
    }
  });

  test("after DELETE /backup-jobs/{id}/file the link is 404 and no new link is given", async () => {
    const link = pathOf(await linkFor(jobB));
    expect((await get(link)).status).toBe(200);
    await must(h, token, "DELETE", `/backup-jobs/${jobB.id}/file`, undefined, 204);
    const res = await get(link);
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 404, body: { code: "NOT_FOUND", message: "file not found" } });
    const again = await h.call("POST", `/backup-jobs/${jobB.id}/download-link`, { token, body: { expiresInSeconds: 60 } });
    expect([404, 409]).toContain(again.status);
    expect(again.body.code).toMatch(/NOT_FOUND|CONFLICT/);
    // Job A's link still works: deleting B's file touched only B.
    expect((await get(pathOf(await linkFor(jobA)))).status).toBe(200);
  });

  test("another org cannot mint a link for the job; expiresInSeconds outside 60–3600 → 400", async () => {
    const other = await h.token("org_other");
    expect((await h.call("POST", `/backup-jobs/${jobA.id}/download-link`, { token: other, body: { expiresInSeconds: 60 } })).status).toBe(404);
    for (const expiresInSeconds of [59, 3601, 0, -1, 1.5, "59", 1e12, null, [60]]) {
      const res = await h.call("POST", `/backup-jobs/${jobA.id}/download-link`, { token, body: { expiresInSeconds } });
      expect({ expiresInSeconds, status: res.status }).toEqual({ expiresInSeconds, status: 400 });
    }
  });
});

describe("token spellings", () => {
  test("a MAC is accepted in its one canonical spelling only (base64url's spare bits)", async () => {
    const { DownloadTokens } = await import("../../src/storage/download-token.ts");
    const { Cursors } = await import("../../src/http/pagination.ts");
    const key = new Uint8Array(32).fill(7);
    const tokens = new DownloadTokens(key);
    const cursors = new Cursors(key);
    // A 32-byte MAC is 43 characters; the last one carries 4 bits and 2 spare ones. Flipping
    // a spare bit leaves the bytes the same: such a spelling must still be refused.
    const respell = (t: string) => {
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      const last = alphabet.indexOf(t.at(-1)!);
      return t.slice(0, -1) + alphabet[last ^ 1];
    };
    for (let i = 0; i < 20; i++) {
      const t = tokens.sign({ destinationId: "dst_x", key: `k${i}`, filename: "f", expiresAt: Date.now() + 60_000 });
      expect(tokens.verify(t).ok).toBe(true);
      expect(tokens.verify(respell(t)).ok).toBe(false);
      const c = cursors.encode("list", "org", `id_${i}`);
      expect(cursors.decode("list", "org", c)).toBe(`id_${i}`);
      expect(() => cursors.decode("list", "org", respell(c))).toThrow();
    }
  });
});
