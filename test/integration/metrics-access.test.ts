import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";

/**
 * `/metrics` names every organisation's data sources (a label per source). Public by default
 * (the daemon listens on loopback); with `http.metricsPublic = false` it takes a token with
 * the operator scope `metrics.read`: a tenant's token, whatever its backup scopes, gets 403.
 */
let open: Daemon;
let closed: Daemon;

beforeAll(async () => {
  [open, closed] = await Promise.all([startDaemon({ env: { SNAPDB_LOG_LEVEL: "warn" } }), startDaemon({ env: { SNAPDB_LOG_LEVEL: "warn", SNAPDB_METRICS_PUBLIC: "false" } })]);
}, 60_000);
afterAll(async () => {
  await Promise.all([open?.stop(), closed?.stop()]);
});

async function scrape(d: Daemon, token?: string) {
  const res = await fetch(`${d.baseUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  return { status: res.status, text, code: res.headers.get("content-type")?.includes("json") ? JSON.parse(text).code : undefined };
}

describe("/metrics access", () => {
  test("default (http.metricsPublic = true): served without a token", async () => {
    const res = await scrape(open);
    expect(res.status).toBe(200);
    expect(res.text).toContain("# TYPE snapdb_http_requests_total counter");
  });

  test("http.metricsPublic = false: no token 401, a tenant token 403, a metrics.read token 200", async () => {
    expect(await scrape(closed)).toMatchObject({ status: 401, code: "UNAUTHENTICATED" });
    expect(await scrape(closed, "not-a-token")).toMatchObject({ status: 401, code: "UNAUTHENTICATED" });
    const tenant = await closed.token("org_tenant");
    expect(await scrape(closed, tenant)).toMatchObject({ status: 403, code: "FORBIDDEN" });
    // The token is good for the API: only the metrics are out of its reach.
    expect((await fetch(`${closed.baseUrl}/data-sources`, { headers: { authorization: `Bearer ${tenant}` } })).status).toBe(200);
    const operator = await closed.token("org_ops", { sub: "prometheus", scopes: ["metrics.read"], ttl: "30d" });
    const res = await scrape(closed, operator);
    expect(res.status).toBe(200);
    expect(res.text).toContain("# TYPE snapdb_backup_last_success_timestamp_seconds gauge");
    // …and metrics.read alone opens nothing else.
    expect((await fetch(`${closed.baseUrl}/data-sources`, { headers: { authorization: `Bearer ${operator}` } })).status).toBe(403);
  });
});
