import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, SignJWT } from "jose";
import type { Config } from "../../src/config/schema.ts";
import { mintToken, parseTtl } from "../../src/crypto/jwt-mint.ts";
import { bearerToken, createTokenVerifier, type Principal, VerifiedTokens } from "../../src/http/auth.ts";
import { AppError } from "../../src/lib/errors.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-auth");
afterAll(() => dir.cleanup());

const baseAuth: Config["auth"] = {
  audience: "snapdb",
  issuer: "",
  orgClaim: "org_id",
  jwtSecret: "",
  jwtSecretFile: "/unused",
  publicKeyFile: "",
  jwksUrl: "",
  maxTokenLifetimeSeconds: 30 * 86400,
};
const secret = new TextEncoder().encode("x".repeat(40));
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("UNAUTHENTICATED");
    return (err as AppError).message;
  }
  throw new Error("expected the token to be refused");
}

describe("token verification", () => {
  test("HS256: principal from sub, org claim and scopes", async () => {
    const verify = createTokenVerifier(baseAuth, secret);
    const token = await mintToken({ secret, orgId: "acme", sub: "me", scopes: ["backup.read", "audit.read"], ttlSeconds: 60, audience: "snapdb", orgClaim: "org_id" });
    const p = await verify(token);
    expect(p.orgId).toBe("acme");
    expect(p.sub).toBe("me");
    expect([...p.scopes]).toEqual(["backup.read", "audit.read"]);
  });

  test("a configured org claim and issuer are enforced", async () => {
    const verify = createTokenVerifier({ ...baseAuth, orgClaim: "tenant", issuer: "https://idp.example" }, secret);
    const good = await new SignJWT({ tenant: "t1", scope: "" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("s")
      .setAudience("snapdb")
      .setIssuer("https://idp.example")
      .setExpirationTime(inAnHour())
      .sign(secret);
    expect((await verify(good)).orgId).toBe("t1");
    const wrongIss = await new SignJWT({ tenant: "t1" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("s")
      .setAudience("snapdb")
      .setIssuer("https://evil.example")
      .setExpirationTime(inAnHour())
      .sign(secret);
    expect(await refusal(verify(wrongIss))).toBe("token issuer is not accepted");
    const noIss = await new SignJWT({ tenant: "t1" }).setProtectedHeader({ alg: "HS256" }).setSubject("s").setAudience("snapdb").setExpirationTime(inAnHour()).sign(secret);
    expect(await refusal(verify(noIss))).toBe("token issuer is not accepted");
    const orgIdOnly = await new SignJWT({ org_id: "t1" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("s")
      .setAudience("snapdb")
      .setIssuer("https://idp.example")
      .setExpirationTime(inAnHour())
      .sign(secret);
    expect(await refusal(verify(orgIdOnly))).toBe("token has no tenant claim");
  });

  test("an audience list containing ours is accepted", async () => {
    const verify = createTokenVerifier(baseAuth, secret);
    const token = await new SignJWT({ org_id: "o" }).setProtectedHeader({ alg: "HS256" }).setSubject("s").setAudience(["other", "snapdb"]).setExpirationTime(inAnHour()).sign(secret);
    expect((await verify(token)).orgId).toBe("o");
  });

  for (const kind of ["rsa", "ec"] as const) {
    test(`${kind === "rsa" ? "RS256" : "ES256"} against a PEM public key; HS256 then refused`, async () => {
      const pair = kind === "rsa" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "P-256" });
      const file = join(dir.path, `${kind}.pem`);
      writeFileSync(file, pair.publicKey.export({ type: "spki", format: "pem" }));
      const verify = createTokenVerifier({ ...baseAuth, publicKeyFile: file }, null);
      const alg = kind === "rsa" ? "RS256" : "ES256";
      const token = await new SignJWT({ org_id: "o" }).setProtectedHeader({ alg }).setSubject("s").setAudience("snapdb").setExpirationTime(inAnHour()).sign(pair.privateKey);
      expect((await verify(token)).orgId).toBe("o");
      // The classic confusion: HMAC-sign with the public key's bytes.
      const pem = new TextEncoder().encode(pair.publicKey.export({ type: "spki", format: "pem" }).toString());
      const confused = await new SignJWT({ org_id: "o" }).setProtectedHeader({ alg: "HS256" }).setSubject("s").setAudience("snapdb").setExpirationTime(inAnHour()).sign(pem);
      expect(await refusal(verify(confused))).toBe("token algorithm is not accepted");
    });
  }

  test("RS256 against a JWKS URL", async () => {
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ keys: [jwk] }) });
    try {
      // Never remembered: a key the issuer withdraws stops working when jose's key set drops it.
      const cache = new VerifiedTokens();
      const verify = createTokenVerifier({ ...baseAuth, jwksUrl: `http://127.0.0.1:${server.port}/jwks.json` }, null, cache);
      const token = await new SignJWT({ org_id: "o" }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setSubject("s").setAudience("snapdb").setExpirationTime(inAnHour()).sign(pair.privateKey);
      expect((await verify(token)).sub).toBe("s");
      expect((await verify(token)).sub).toBe("s");
      expect(cache.size).toBe(0);
      const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const forged = await new SignJWT({ org_id: "o" }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setSubject("s").setAudience("snapdb").setExpirationTime(inAnHour()).sign(other.privateKey);
      expect(await refusal(verify(forged))).toBe("token signature is invalid");
    } finally {
      server.stop(true);
    }
  });

  test("verified tokens: a verified token is remembered, a refused one never", async () => {
    const cache = new VerifiedTokens();
    const verify = createTokenVerifier(baseAuth, secret, cache);
    const token = await mintToken({ secret, orgId: "acme", sub: "me", scopes: ["backup.read"], ttlSeconds: 60, audience: "snapdb", orgClaim: "org_id" });
    const first = await verify(token);
    expect(cache.size).toBe(1);
    expect(await verify(token)).toBe(first);
    const wrongAud = await new SignJWT({ org_id: "o" }).setProtectedHeader({ alg: "HS256" }).setSubject("s").setAudience("other").setExpirationTime(inAnHour()).sign(secret);
    expect(await refusal(verify(wrongAud))).toBe("token audience is not accepted");
    expect(await refusal(verify(wrongAud))).toBe("token audience is not accepted");
    expect(cache.size).toBe(1);
  });

  test("verified tokens: bounded, the least recently used goes first", () => {
    const cache = new VerifiedTokens(2);
    const p = (sub: string): Principal => ({ sub, orgId: "o", scopes: new Set() });
    const now = Math.floor(Date.now() / 1000);
    cache.set("a", p("a"), now + 60, undefined);
    cache.set("b", p("b"), now + 60, undefined);
    expect(cache.get("a", now)?.sub).toBe("a"); // a is now the most recent
    cache.set("c", p("c"), now + 60, undefined);
    expect(cache.size).toBe(2);
    expect(cache.get("b", now)).toBeUndefined();
    expect(cache.get("a", now)?.sub).toBe("a");
    expect(cache.get("c", now)?.sub).toBe("c");
    // Expired (exp <= now - 5) or not yet valid (nbf > now + 5) entries are dropped on sight.
    cache.set("d", p("d"), now + 60, now + 10);
    expect(cache.get("d", now + 4)).toBeUndefined();
    cache.set("e", p("e"), now, undefined);
    expect(cache.get("e", now + 4)?.sub).toBe("e");
    expect(cache.get("e", now + 5)).toBeUndefined();
    expect(cache.get("e", now)).toBeUndefined();
  });

  test("bearer header parsing", () => {
    expect(bearerToken("Bearer abc.def.ghi")).toBe("abc.def.ghi");
    expect(bearerToken("bearer abc")).toBe("abc");
    for (const bad of [null, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b"]) expect(() => bearerToken(bad)).toThrow("missing bearer token");
  });

  test("ttl parsing", () => {
    expect(parseTtl("90s")).toBe(90);
    expect(parseTtl("15m")).toBe(900);
    expect(parseTtl("1h")).toBe(3600);
    expect(parseTtl("7d")).toBe(604800);
    for (const bad of ["0s", "1w", "h", "-1h", "1.5h"]) expect(parseTtl(bad)).toBeNull();
  });
});
