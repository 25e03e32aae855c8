import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { SCOPES } from "../../src/http/auth.ts";
import { badTokens } from "../helpers/bad-tokens.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { FIXTURE_SQLITE_ROOT } from "../security-fixtures/data-sources.ts";
import { fillPath, fixtureFor, securedRoutes, type Fixtures, type SpecRoute } from "../helpers/security-suite.ts";

/**
 * The shared security suite: every route in the served OpenAPI document that needs a token
 * is tried with each bad token, without its scope, and (when it names a resource) with
 * another org's token. A new route joins by existing; one that names a resource needs a
 * fixture in test/security-fixtures/, or this suite fails.
 */
const fixtures: Fixtures = {};
for (const file of new Glob("*.ts").scanSync(`${import.meta.dir}/../security-fixtures`)) {
  Object.assign(fixtures, (await import(`../security-fixtures/${file}`)).fixtures as Fixtures);
}

let h: Harness;
let routes: SpecRoute[];
let tokens: Record<string, string>;

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: FIXTURE_SQLITE_ROOT });
  routes = await securedRoutes(h);
  tokens = await badTokens(h);
});
afterAll(() => h.close());

describe("shared security suite", () => {
  test("covers the known routes", () => {
    expect(routes.length).toBeGreaterThan(0);
    expect(routes.map((r) => `${r.method} ${r.template}`)).toContain("GET /audit-log");
  });

  test("every route that names a resource has an other-org fixture", () => {
    const missing = routes.filter((r) => r.template.includes("{") && !fixtureFor(fixtures, r));
    expect(missing.map((r) => `${r.method} ${r.template}`)).toEqual([]);
  });

  test("no token and each bad token → 401 with the error body", async () => {
    for (const r of routes) {
      const path = fillPath(r.template, {});
      const none = await h.call(r.method, path, { body: {} });
      expect({ route: `${r.method} ${r.template}`, status: none.status, code: none.body?.code }).toEqual({
        route: `${r.method} ${r.template}`,
        status: 401,
        code: "UNAUTHENTICATED",
      });
      for (const [name, token] of Object.entries(tokens)) {
        const res = await h.call(r.method, path, { token, body: {} });
        expect({ route: `${r.method} ${r.template}`, token: name, status: res.status, code: res.body?.code }).toEqual({
          route: `${r.method} ${r.template}`,
          token: name,
          status: 401,
          code: "UNAUTHENTICATED",
        });
      }
    }
  });

  test("a valid token without the route's scope → 403", async () => {
    for (const r of routes) {
      const token = await h.token("org_a", { scopes: SCOPES.filter((s) => s !== r.scope) });
      const res = await h.call(r.method, fillPath(r.template, {}), { token, body: {} });
      expect({ route: `${r.method} ${r.template}`, status: res.status, code: res.body?.code }).toEqual({
        route: `${r.method} ${r.template}`,
        status: 403,
        code: "FORBIDDEN",
      });
    }
  });

  test("another org's resource → 404, indistinguishable from a missing one", async () => {
    const intruder = await h.token("org_b");
    for (const r of routes.filter((x) => x.template.includes("{"))) {
      const fixture = fixtureFor(fixtures, r)!;
      const params = await fixture.params(h, "org_a");
      const res = await h.call(r.method, fillPath(r.template, params), { token: intruder, body: fixture.body?.(h, params) });
      expect({ route: `${r.method} ${r.template}`, status: res.status, code: res.body?.code }).toEqual({
        route: `${r.method} ${r.template}`,
        status: 404,
        code: "NOT_FOUND",
      });
    }
  });
});
