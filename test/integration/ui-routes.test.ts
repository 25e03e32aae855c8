/**
 * The dashboard's routes through the real app: the page and its assets are served from the
 * daemon with a strict Content-Security-Policy, stay out of the OpenAPI document, and the
 * one-time login of `snapdb ui-link` holds: a read-only token only, a code works once, and
 * not after 5 minutes (the code store's clock is moved, the routes are the real ones).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LoginCodes } from "../../src/http/ui/login-codes.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

let h: Harness;
let clock = Date.now();
const codes = new LoginCodes({ now: () => clock });

beforeAll(async () => {
  h = await createHarness({}, { loginCodes: codes });
});
afterAll(() => h?.close());

const readToken = (org = "org_ui") => h.token(org, { scopes: ["backup.read"] });

async function issue(token: string) {
  const res = await h.call("POST", "/ui/login-codes", { token });
  expect(res.status).toBe(201);
  return res.body as { code: string; expiresAt: string };
}

describe("the page", () => {
  test("/ui/ is HTML with a CSP that allows no inline script and nothing from elsewhere", async () => {
    const res = await h.call("GET", "/ui/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
    // Every script has a src (no inline code), every URL is relative (no CDN).
    const scripts = [...res.text.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const s of scripts) {
      expect(s[0]).toMatch(/src="assets\/app\.js\?v=[0-9a-f]+"/);
      expect(s[1]!.trim()).toBe("");
    }
    expect(res.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(res.text).not.toMatch(/\son[a-z]+=/i); // no inline event handlers
  });

  test("/ui redirects to /ui/, the assets are served, an unknown one is 404", async () => {
    const bare = await h.app.handle(new Request("http://localhost/ui"));
    expect(bare.status).toBe(301);
    expect(new URL(bare.headers.get("location")!, "http://localhost/ui").pathname).toBe("/ui/");
    const js = await h.call("GET", "/ui/assets/app.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("text/javascript");
    expect(js.text.length).toBeGreaterThan(10_000); // uPlot and croner bundled in
    expect(js.text).not.toMatch(/https?:\/\/(cdn|unpkg|fonts\.)/);
    const css = await h.call("GET", "/ui/assets/app.css");
    expect(css.status).toBe(200);
    expect(css.text).toContain(".uplot");
    expect(css.text).not.toMatch(/@import|url\(\s*["']?https?:/);
    expect((await h.call("GET", "/ui/assets/nope.js")).status).toBe(404);
  });

  test("no /ui route is in the OpenAPI document", async () => {
    const spec = (await h.call("GET", "/swagger/json")).body;
    expect(Object.keys(spec.paths).filter((p) => p.startsWith("/ui"))).toEqual([]);
  });
});

describe("one-time login", () => {
  test("a code is issued for a read-only token only, and never for no token", async () => {
    expect((await h.call("POST", "/ui/login-codes")).status).toBe(401);
    expect((await h.call("POST", "/ui/login-codes", { token: "not-a-jwt" })).status).toBe(401);
    expect((await h.call("POST", "/ui/login-codes", { token: await h.token("org_ui", { scopes: ["audit.read"] }) })).status).toBe(403);
    const full = await h.call("POST", "/ui/login-codes", { token: await h.token("org_ui") });
    expect(full.status).toBe(403);
    expect(full.body.message).toContain("read-only");
    const { code, expiresAt } = await issue(await readToken());
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(expiresAt) - clock).toBeLessThanOrEqual(5 * 60_000);
  });

  test("a code gives back its token once; the second use is refused", async () => {
    const token = await readToken();
    const { code } = await issue(token);
    const first = await h.call("POST", "/ui/login", { body: { code } });
    expect(first.status).toBe(200);
    expect(first.body.token).toBe(token);
    expect(first.headers.get("cache-control")).toBe("no-store");
    // The token works for reading, as the page will use it.
    expect((await h.call("GET", "/data-sources", { token: first.body.token })).status).toBe(200);
    const again = await h.call("POST", "/ui/login", { body: { code } });
    expect(again.status).toBe(401);
    expect(again.body).toEqual({ code: "UNAUTHENTICATED", message: expect.stringContaining("already used") });
  });

  test("a code older than 5 minutes is refused, and is gone even then", async () => {
    const { code } = await issue(await h.token("org_ui", { scopes: ["backup.read"], ttlSeconds: 3600 }));
    clock += 5 * 60_000 + 1;
    expect((await h.call("POST", "/ui/login", { body: { code } })).status).toBe(401);
    clock -= 5 * 60_000 + 1;
    expect((await h.call("POST", "/ui/login", { body: { code } })).status).toBe(401);
  });

  test("a code never outlives its token", async () => {
    const { code, expiresAt } = await issue(await h.token("org_ui", { scopes: ["backup.read"], ttlSeconds: 60 }));
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(61_000);
    clock += 61_000;
    expect((await h.call("POST", "/ui/login", { body: { code } })).status).toBe(401);
    clock -= 61_000;
  });

  test("made-up codes and bad bodies are refused cleanly", async () => {
    expect((await h.call("POST", "/ui/login", { body: { code: "x".repeat(43) } })).status).toBe(401);
    const noCode = await h.call("POST", "/ui/login", { body: {} });
    expect(noCode.status).toBe(400);
    expect(noCode.body.code).toBe("INVALID_INPUT");
    expect((await h.call("POST", "/ui/login", { body: { code: "a", extra: 1 } })).status).toBe(400);
    expect((await h.call("POST", "/ui/login", { body: { code: "a".repeat(500) } })).status).toBe(400);
    expect((await h.call("POST", "/ui/login", { rawBody: "{" })).status).toBe(400);
  });

  test("one organisation cannot fill the room of the others", async () => {
    const noisy = await h.token("org_noisy", { scopes: ["backup.read"] });
    const answers: number[] = [];
    for (let i = 0; i < 25; i++) answers.push((await h.call("POST", "/ui/login-codes", { token: noisy })).status);
    expect(answers.filter((s) => s === 201).length).toBe(20);
    expect(answers.slice(20)).toEqual([429, 429, 429, 429, 429]);
    await issue(await readToken("org_quiet"));
    // Codes that expired make room again.
    clock += 5 * 60_000 + 1;
    expect((await h.call("POST", "/ui/login-codes", { token: noisy })).status).toBe(201);
    clock -= 5 * 60_000 + 1;
  });

  test("the code is never stored as itself", async () => {
    const { code } = await issue(await readToken());
    expect(JSON.stringify([...(codes as any).pending.keys()])).not.toContain(code);
    expect(h.logLines.join("\n")).not.toContain(code);
  });
});
