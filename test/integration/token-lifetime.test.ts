import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt, SignJWT } from "jose";
import { SCOPES } from "../../src/http/auth.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * `auth.maxTokenLifetimeSeconds` (default 30 days): a token made to last longer (`exp - iat`,
 * or `exp - now` without `iat`) is refused, so a leaked token can't outlive a rotation.
 */
let h: Harness;
let short: Harness;
let d: Daemon;
const now = () => Math.floor(Date.now() / 1000);
const DAY = 86400;
const CENTURY = 100 * 365 * DAY;

beforeAll(async () => {
  [h, short, d] = await Promise.all([createHarness(), createHarness({ SNAPDB_MAX_TOKEN_LIFETIME_SECONDS: "3600" }), startDaemon({ env: { SNAPDB_LOG_LEVEL: "warn" } })]);
}, 60_000);
afterAll(async () => {
  h?.close();
  short?.close();
  await d?.stop();
});

function sign(harness: Harness, times: { iat?: number; exp: number }): Promise<string> {
  const jwt = new SignJWT({ org_id: "org_life", scope: SCOPES.join(" ") })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("holder")
    .setAudience(harness.config.auth.audience)
    .setExpirationTime(times.exp);
  if (times.iat !== undefined) jwt.setIssuedAt(times.iat);
  return jwt.sign(harness.secret);
}

async function answer(harness: Harness, token: string) {
  const res = await harness.call("GET", "/data-sources", { token });
  return { status: res.status, code: res.body?.code, message: res.body?.message };
}

describe("token lifetime", () => {
  test("exp a century away → 401 'token lifetime exceeds …', with iat, without iat, and with a future iat", async () => {
    for (const times of [
      { iat: now(), exp: now() + CENTURY },
      { exp: now() + CENTURY },
      // A future iat would make exp - iat look short: the remaining lifetime counts too.
      { iat: now() + CENTURY - 60, exp: now() + CENTURY },
      { iat: now(), exp: now() + 30 * DAY + 60 },
    ]) {
      const res = await answer(h, await sign(h, times));
      expect({ times, ...res }).toEqual({ times, status: 401, code: "UNAUTHENTICATED", message: "token lifetime exceeds auth.maxTokenLifetimeSeconds (2592000 s)" });
    }
  });

  test("up to the limit is accepted; the limit follows the config", async () => {
    expect((await answer(h, await sign(h, { iat: now(), exp: now() + 30 * DAY }))).status).toBe(200);
    expect((await answer(h, await sign(h, { exp: now() + 29 * DAY }))).status).toBe(200);
    expect((await answer(short, await sign(short, { iat: now(), exp: now() + 3600 }))).status).toBe(200);
    expect(await answer(short, await sign(short, { iat: now(), exp: now() + 7200 }))).toMatchObject({ status: 401, message: "token lifetime exceeds auth.maxTokenLifetimeSeconds (3600 s)" });
    // An old long-lived token (issued 60 days ago, one day left) still lived longer than allowed.
    expect((await answer(h, await sign(h, { iat: now() - 60 * DAY, exp: now() + DAY }))).status).toBe(401);
  });

  test("the test harness's own tokens are within the limit", async () => {
    const claims = decodeJwt(await h.token("org_life"));
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(h.config.auth.maxTokenLifetimeSeconds);
  });

  test("snapdb token: the default and the limit itself are accepted by the daemon; longer is refused up front", async () => {
    for (const ttl of [undefined, "30d"]) {
      const token = await d.token("org_life", { scopes: ["backup.read"], ...(ttl ? { ttl } : {}) });
      const res = await fetch(`${d.baseUrl}/data-sources`, { headers: { authorization: `Bearer ${token}` } });
      expect({ ttl, status: res.status }).toEqual({ ttl, status: 200 });
    }
    const tooLong = await d.run(["token", "--config", d.configFile, "--data-dir", d.dataDir, "--org", "org_life", "--sub", "me", "--ttl", "31d"]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stdout).toBe("");
    expect(tooLong.stderr).toContain("auth.maxTokenLifetimeSeconds");
  });
});
