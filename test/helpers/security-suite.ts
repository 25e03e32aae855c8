import type { Harness } from "./harness.ts";

/**
 * How the shared security suite reaches a route that names a resource: `params` creates
 * the resource in `org` and returns the path parameters; `body` is a valid body for the
 * route, so that the only thing wrong with the other org's request is the org.
 * Each module adds its fixtures in test/security-fixtures/<module>.ts, keyed by
 * "METHOD /openapi/{path}" or by "/openapi/{path}" for every method of that path.
 */
export interface RouteFixture {
  params(h: Harness, org: string): Promise<Record<string, string>>;
  body?(h: Harness, params: Record<string, string>): unknown;
}

export type Fixtures = Record<string, RouteFixture>;

export interface SpecRoute {
  method: string;
  template: string;
  scope: string;
}

/** Every route of the served OpenAPI document that needs a token, with its scope. */
export async function securedRoutes(h: Harness): Promise<SpecRoute[]> {
  const spec = (await h.call("GET", "/swagger/json")).body as { paths: Record<string, Record<string, any>> };
  const routes: SpecRoute[] = [];
  for (const [template, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (op["x-required-scope"]) routes.push({ method: method.toUpperCase(), template, scope: op["x-required-scope"] });
    }
  }
  return routes;
}

export const fillPath = (template: string, params: Record<string, string>) => template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? `missing_${name}`));

export const fixtureFor = (fixtures: Fixtures, r: SpecRoute) => fixtures[`${r.method} ${r.template}`] ?? fixtures[r.template];
