import { afterAll, afterEach, beforeAll, describe, expect, setSystemTime, test } from "bun:test";
import { SignJWT } from "jose";
import { SCOPES } from "../../src/http/auth.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * The daemon remembers tokens it verified (HS256 or a public key file), so a repeated token
 * skips jose. What must not change: a token stops working the second it expires (jose's
 * arithmetic: refused once `exp <= now - 5 s`), is not accepted before its `nbf`, and a
 * remembered token vouches only for itself, never for other claims under its signature.
 */
let h: Harness;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h?.close());
afterEach(() => setSystemTime());

function sign(claims: { exp: number; nbf?: number; org?: string; scope?: string }): Promise<string> {
  const jwt = new SignJWT({ org_id: claims.org ?? "org_cache", scope: claims.scope ?? SCOPES.join(" ") })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("holder")
    .setAudience(h.config.auth.audience)
    .setIssuedAt(now())
    .setExpirationTime(claims.exp);
  if (claims.nbf !== undefined) jwt.setNotBefore(claims.nbf);
  return jwt.sign(h.secret);
}

// A request id of our own: the daemon would mint one (a ULID) at the moved clock, and ULIDs stay
// monotonic, so later ids in this process would carry the future time.
async function answer(token: string) {
  const res = await h.call("GET", "/backup-jobs", { token, headers: { "x-request-id": "token-cache-test" } });
  return { status: res.status, message: res.body?.message as string | undefined };
}

describe("verified-token cache", () => {
  test("a token used (and remembered) before it expires is refused from the second jose refuses it", async () => {
    const start = now();
    const exp = start + 60;
    const token = await sign({ exp });
    expect((await answer(token)).status).toBe(200);
    expect((await answer(token)).status).toBe(200); // now from the cache
    // Inside the 5 s clock tolerance after exp: still accepted, as jose would.
    setSystemTime(new Date((exp + 4) * 1000 + 999));
    expect((await answer(token)).status).toBe(200);
    // exp <= now - 5: expired.
    setSystemTime(new Date((exp + 5) * 1000));
    expect(await answer(token)).toEqual({ status: 401, message: "token has expired" });
    // And stays refused when the clock is back (the entry is gone, jose decides again).
    setSystemTime(new Date((exp + 100) * 1000));
    expect(await answer(token)).toEqual({ status: 401, message: "token has expired" });
  });

  test("a remembered token is refused again if the clock goes back before its nbf", async () => {
    const start = now();
    const token = await sign({ nbf: start + 100, exp: start + 600 });
    expect(await answer(token)).toEqual({ status: 401, message: "token is not valid yet" });
    setSystemTime(new Date((start + 100) * 1000));
    expect((await answer(token)).status).toBe(200);
    expect((await answer(token)).status).toBe(200);
    setSystemTime(new Date((start + 94) * 1000)); // nbf > now + 5
    expect(await answer(token)).toEqual({ status: 401, message: "token is not valid yet" });
  });

  test("a remembered signature does not vouch for other claims: the cache is keyed by the whole token", async () => {
    const token = await sign({ exp: now() + 600, org: "org_cache", scope: "backup.read" });
    expect((await answer(token)).status).toBe(200);
    const [header, , signature] = token.split(".");
    const claims = { org_id: "org_other", scope: SCOPES.join(" "), sub: "holder", aud: h.config.auth.audience, iat: now(), exp: now() + 600 };
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    expect(await answer(forged)).toEqual({ status: 401, message: "token signature is invalid" });
    // The same claims with one character of the signature changed: refused too.
    const flipped = token.slice(0, -2) + (token.at(-2) === "A" ? "B" : "A") + token.at(-1);
    expect((await answer(flipped)).status).toBe(401);
  });

  test("scopes are the remembered token's own: a read-only token stays read-only", async () => {
    const token = await sign({ exp: now() + 600, scope: "backup.read" });
    expect((await answer(token)).status).toBe(200);
    const res = await h.call("POST", "/data-sources", { token, body: { name: "x", engine: "sqlite", path: "/nonexistent/x.db" } });
    expect(res.status).toBe(403);
  });
});
