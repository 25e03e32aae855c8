import { afterAll, expect, test } from "bun:test";
import { outcomeOfHttp } from "../../src/notify/channel-types.ts";
import { httpPost, retryAfterMs, SendError } from "../../src/notify/http-send.ts";
import { OutboundPolicy } from "../../src/net/outbound-policy.ts";
import { startReceiver } from "../helpers/receiver.ts";

/** The one HTTP sender of notifications, against a real loopback server. */
const server = startReceiver();
afterAll(() => server.stop());
const open = OutboundPolicy.fromConfig({ denyCidrs: ["169.254.0.0/16"], allowCidrs: [] });
const post = (url: string, policy: OutboundPolicy | null = open) => httpPost(url, { headers: { "content-type": "text/plain" }, body: "hi", timeoutMs: 2000, policy });

test("only http(s) URLs are sent to", async () => {
  for (const url of ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/", "javascript:alert(1)"]) {
    const err = await post(url).catch((e) => e);
    expect({ url, kind: err instanceof SendError, retry: err.retry }).toEqual({ url, kind: true, retry: false });
  }
});

test("a redirect is an answer, not a hop: never followed, final", async () => {
  server.respond = () => new Response(null, { status: 302, headers: { location: "http://169.254.169.254/latest/meta-data/" } });
  const answer = await post(`${server.url}/r`);
  expect(answer.status).toBe(302);
  expect(outcomeOfHttp(answer, "127.0.0.1")).toEqual({ ok: false, retry: false, error: "127.0.0.1 answered HTTP 302 (redirects are not followed)" });
  expect(server.received.map((r) => r.path)).toEqual(["/r"]);
});

test("the outbound policy is applied to the resolved address before connecting", async () => {
  const denyLoopback = OutboundPolicy.fromConfig({ denyCidrs: ["127.0.0.0/8", "::1/128"], allowCidrs: [] });
  const before = server.received.length;
  const err = await post(`http://localhost:${server.port}/x`, denyLoopback).catch((e) => e);
  expect(err).toBeInstanceOf(SendError);
  expect(err.retry).toBe(false);
  expect(err.message).toContain("outbound network policy");
  expect(server.received.length).toBe(before);
  server.respond = () => new Response("ok");
  expect((await post(`http://localhost:${server.port}/y`)).status).toBe(200);
});

test("a receiver that does not answer in time is a retryable error naming the host only", async () => {
  server.respond = () => new Promise<Response>(() => {});
  const err = await post(`${server.url}/services/T0/B0/secret-path`).catch((e) => e);
  expect(err).toBeInstanceOf(SendError);
  expect({ retry: err.retry, message: err.message }).toEqual({ retry: true, message: "127.0.0.1: no answer within 2 s" });
});

test("Retry-After as seconds or an HTTP date; 429 and 5xx retried, other 4xx final", () => {
  expect(retryAfterMs("120")).toBe(120_000);
  expect(retryAfterMs(new Date(Date.now() + 30_000).toUTCString(), Date.now())).toBeGreaterThan(28_000);
  expect(retryAfterMs("soon")).toBeNull();
  const answer = (status: number, headers = {}) => ({ status, headers, snippet: "" });
  expect(outcomeOfHttp(answer(204), "h")).toEqual({ ok: true });
  expect(outcomeOfHttp(answer(429, { "retry-after": "7" }), "h")).toMatchObject({ ok: false, retry: true, retryAfterMs: 7000 });
  expect(outcomeOfHttp(answer(503), "h")).toMatchObject({ ok: false, retry: true, retryAfterMs: null });
  expect(outcomeOfHttp(answer(404), "h")).toMatchObject({ ok: false, retry: false });
});
