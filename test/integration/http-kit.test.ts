import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Elysia, t } from "elysia";
import { jsonBody } from "../../src/http/body.ts";
import { errorHandler } from "../../src/http/errors.ts";
import { Readiness, healthRoutes } from "../../src/http/health.ts";
import { MetricsRegistry } from "../../src/http/metrics.ts";
import { requestMeta } from "../../src/http/request-meta.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/** The kit exactly as app.ts mounts it, with routes that exercise each path of it. */
function kitApp(logLines: string[]) {
  return new Elysia({ normalize: false })
    .use(errorHandler(createLogger("debug", {}, (l) => logLines.push(l))))
    .onRequest(({ request, set }) => {
      set.headers["x-request-id"] = requestMeta(request).id;
    })
    .use(jsonBody(1024))
    .post("/echo", ({ body }) => body, {
      body: t.Object({ name: t.String({ maxLength: 10 }), nested: t.Optional(t.Object({ n: t.Integer() })) }, { additionalProperties: false }),
    })
    .get("/boom", () => {
      throw new Error("connect failed for postgres://app:hunter2@db/prod");
    });
}

const post = (app: ReturnType<typeof kitApp>, body: string | ReadableStream<Uint8Array> | null, headers: Record<string, string> = { "content-type": "application/json" }) =>
  app.handle(new Request("http://localhost/echo", { method: "POST", headers, body }));

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

describe("http kit", () => {
  const logs: string[] = [];
  const app = kitApp(logs);

  test("a valid body passes through", async () => {
    const res = await post(app, JSON.stringify({ name: "ok" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "ok" });
  });

  test("validation errors are 400 INVALID_INPUT with details[].path", async () => {
    const res = await post(app, JSON.stringify({ name: "far too long a name", nested: { n: "x" }, extra: 1 }));
    expect(res.status).toBe(400);
    const body: any = await res.json();
    expect(body.code).toBe("INVALID_INPUT");
    const paths = body.details.map((d: { path: string }) => d.path).sort();
    expect(paths).toEqual(["/extra", "/name", "/nested/n"]);
    expect(body.details.find((d: { path: string }) => d.path === "/extra").message).toBe("unknown field");
    expect(body.details.find((d: { path: string }) => d.path === "/nested/n").message).toMatch(/integer/);
  });

  test("malformed JSON is 400, deep JSON does not crash", async () => {
    const res = await post(app, '{"name": "x",');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: "INVALID_INPUT", message: "request body is not valid JSON" });
    const deep = "[".repeat(400) + "]".repeat(400);
    expect((await post(app, deep)).status).toBe(400);
  });

  test("a body over the limit is 413, by declared length or while streaming", async () => {
    const big = JSON.stringify({ name: "x".repeat(5000) });
    const declared = await post(app, big, { "content-type": "application/json", "content-length": String(big.length) });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as any).code).toBe("PAYLOAD_TOO_LARGE");
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 10_000) return controller.close(); // bounded, should never get here
        controller.enqueue(new TextEncoder().encode("x".repeat(512)));
      },
    });
    const chunked = await post(app, endless);
    expect(chunked.status).toBe(413);
    expect(pulled).toBeLessThan(10);
  });

  test("an unexpected error is a generic 500; the cause is only in the log, with the request id", async () => {
    const res = await app.handle(new Request("http://localhost/boom", { headers: { "x-request-id": "trace-123" } }));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ code: "INTERNAL", message: "internal error" });
    expect(text).not.toContain("hunter2");
    expect(res.headers.get("x-request-id")).toBe("trace-123");
    const line = logs.map((l) => JSON.parse(l)).find((l) => l.msg === "unhandled error");
    expect(line.requestId).toBe("trace-123");
    expect(line.level).toBe("error");
  });

  test("request ids: a plain client id is kept, anything else is replaced", async () => {
    const kept = await app.handle(new Request("http://localhost/nope", { headers: { "x-request-id": "abc-1" } }));
    expect(kept.headers.get("x-request-id")).toBe("abc-1");
    const replaced = await app.handle(new Request("http://localhost/nope", { headers: { "x-request-id": "<script>" } }));
    expect(replaced.headers.get("x-request-id")).toMatch(/^req_[0-9A-Z]{26}$/);
  });

  test("unknown routes are 404 NOT_FOUND with the standard body", async () => {
    const res = await h.call("GET", "/no/such/route");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ code: "NOT_FOUND", message: "no such route" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  test("/healthz, /readyz and its failing checks", async () => {
    const readiness = new Readiness();
    let schedulerUp = false;
    readiness.register("store", () => true);
    readiness.register("scheduler", () => schedulerUp);
    const ops = new Elysia().use(healthRoutes(readiness, new MetricsRegistry()));
    const ready = () => ops.handle(new Request("http://localhost/readyz"));
    expect((await ops.handle(new Request("http://localhost/healthz"))).status).toBe(200);
    const down = await ready();
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ code: "UNAVAILABLE", message: "not ready: scheduler" });
    schedulerUp = true;
    expect((await ready()).status).toBe(200);
  });

  test("/metrics counts requests by route and status, with a latency histogram", async () => {
    const token = await h.token("org_a");
    await h.call("GET", "/audit-log", { token });
    await h.call("GET", "/audit-log");
    await Bun.sleep(20); // the after-response hook runs once the answer is out
    const text = (await h.call("GET", "/metrics")).text;
    expect(text).toContain('snapdb_http_requests_total{method="GET",route="/audit-log",status="200"} 1');
    expect(text).toContain('snapdb_http_requests_total{method="GET",route="/audit-log",status="401"} 1');
    // Label order means nothing to Prometheus (prom-client writes `le` first).
    expect(text).toMatch(/^snapdb_http_request_duration_seconds_bucket\{(?=[^}]*method="GET")(?=[^}]*route="\/audit-log")(?=[^}]*le="\+Inf")[^}]*\} 2$/m);
    expect(text).toContain("# TYPE snapdb_http_request_duration_seconds histogram");
  });
});

describe("metrics behind auth", () => {
  test("SNAPDB_METRICS_PUBLIC=false requires a token with the metrics.read scope", async () => {
    const private_ = await createHarness({ SNAPDB_METRICS_PUBLIC: "false" });
    try {
      expect((await private_.call("GET", "/metrics")).status).toBe(401);
      expect((await private_.call("GET", "/metrics", { token: await private_.token("org_a") })).status).toBe(403);
      const ok = await private_.call("GET", "/metrics", { token: await private_.token("org_a", { scopes: ["metrics.read"] }) });
      expect(ok.status).toBe(200);
    } finally {
      private_.close();
    }
  });
});

describe("NUL characters (U+0000), which a PostgreSQL store cannot keep in text", () => {
  test("the same answer on both stores: 404 in a path, 400 naming the field in a query or body, no row written", async () => {
    const token = await h.token("org_nul");
    const created = await h.call("POST", "/data-sources", { token, body: { name: "nul-ok", engine: "postgres", host: "db", database: "app" } });
    expect(created.status).toBe(201);
    const count = async () => (await h.call("GET", "/data-sources?limit=200", { token })).body.items.length;
    const before = await count();

    const named = await h.call("POST", "/data-sources", { token, body: { name: "a\u0000b", engine: "postgres", host: "db", database: "app" } });
    expect([named.status, named.body.code, named.body.details?.[0]?.path]).toEqual([400, "INVALID_INPUT", "/name"]);
    const labelled = await h.call("POST", "/data-sources", { token, body: { name: "nul-label", engine: "postgres", host: "db", database: "app", labels: { team: "x\u0000" } } });
    expect([labelled.status, labelled.body.details?.[0]?.path]).toEqual([400, "/labels/team"]);
    const patched = await h.call("PATCH", `/data-sources/${created.body.id}`, { token, body: { name: "\u0000" } });
    expect([patched.status, patched.body.details?.[0]?.path]).toEqual([400, "/name"]);
    expect(await count()).toBe(before);
    expect((await h.call("GET", `/data-sources/${created.body.id}`, { token })).body.name).toBe("nul-ok");

    expect((await h.call("GET", `/data-sources/${created.body.id}%00`, { token })).status).toBe(404);
    expect((await h.call("DELETE", `/data-sources/%00`, { token })).status).toBe(404);
    const filtered = await h.call("GET", "/audit-log?targetId=ds_%00", { token });
    expect([filtered.status, filtered.body.details?.[0]?.path]).toEqual([400, "/targetId"]);
  });
});
