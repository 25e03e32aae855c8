/**
 * The Swagger UI in a real headless Chromium (the system's, driven by playwright-core) against
 * the real daemon: the page renders every operation of the served spec, a request can be
 * authorized and executed through the UI, and nothing is fetched from anywhere but the daemon
 * (the UI is embedded: it must work air-gapped).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";
import { findChromium } from "../helpers/tool-paths.ts";

// snapdb.test resolves to loopback inside the browser only: a non-loopback name, as a user
// behind a proxy would have, which is where Swagger UI would otherwise add its validator badge.
const ALIAS = "snapdb.test";
const ARGS = [
  `--host-resolver-rules=MAP ${ALIAS} 127.0.0.1`,
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let daemon: Daemon;
let context: BrowserContext;
let profile: ReturnType<typeof tempDir>;
/** Every URL the browser asked for, from any page, frame or worker of the context. */
const requested: string[] = [];

beforeAll(async () => {
  // No silent skip: without Chromium this suite fails (findChromium says how to get one), it does not pass.
  const executablePath = findChromium();
  daemon = await startDaemon();
  profile = tempDir("snapdb-chromium");
  context = await chromium.launchPersistentContext(profile.path, { executablePath, headless: true, args: ARGS });
  context.on("request", (req) => void requested.push(req.url()));
}, 60_000);

afterAll(async () => {
  await context?.close();
  profile?.cleanup();
  await daemon?.stop();
}, 30_000);

async function openUi(path: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${daemon.baseUrl}${path}`, { waitUntil: "load" });
  await page.waitForSelector(".opblock", { timeout: 20_000 });
  return page;
}

function onlyDaemonOrigin() {
  const origin = new URL(daemon.baseUrl).origin;
  const foreign = requested.filter((u) => !u.startsWith("data:") && !u.startsWith("blob:") && new URL(u).origin !== origin);
  expect(foreign).toEqual([]);
  expect(requested.length).toBeGreaterThan(3);
}

test("/swagger/ renders every operation of the served spec, loading nothing from outside", async () => {
  const page = await openUi("/swagger/");
  expect(await page.title()).toBe("snapdb API");
  expect(await page.locator(".info .title").innerText()).toContain("snapdb API");

  const spec = (await (await fetch(`${daemon.baseUrl}/swagger/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const expected = Object.entries(spec.paths)
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
  const shown = (
    await page.locator(".opblock .opblock-summary").evaluateAll((els) =>
      els.map((el) => {
        const method = el.querySelector(".opblock-summary-method")?.textContent?.trim() ?? "";
        const path = el.querySelector(".opblock-summary-path")?.getAttribute("data-path") ?? "";
        return `${method} ${path}`;
      }),
    )
  ).sort();
  expect(shown).toEqual(expected);
  expect(shown).toContain("GET /audit-log");
  onlyDaemonOrigin();
  await page.close();
}, 60_000);

test("/swagger (no trailing slash) ends on the working UI", async () => {
  const page = await openUi("/swagger");
  expect(page.url()).toBe(`${daemon.baseUrl}/swagger/`);
  expect(await page.locator(".opblock").count()).toBeGreaterThan(0);
  onlyDaemonOrigin();
  await page.close();
}, 60_000);

test("authorize with a token and execute GET /audit-log through the UI", async () => {
  const token = await daemon.token("org_swagger", { scopes: ["audit.read"] });
  const page = await openUi("/swagger/");
  await page.locator("button.authorize").first().click();
  await page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first().fill(token);
  await page.locator(".modal-ux button.authorize").click();
  await page.locator(".modal-ux button.btn-done, .modal-ux button.close-modal").first().click();

  const op = page.locator(".opblock", { has: page.locator('.opblock-summary-path[data-path="/audit-log"]') }).first();
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  const answered = page.waitForResponse((r) => r.url().startsWith(`${daemon.baseUrl}/audit-log`));
  await op.locator("button.execute").click();
  const response = await answered;
  expect(response.status()).toBe(200);
  expect(response.request().headers().authorization).toBe(`Bearer ${token}`);
  expect(await op.locator(".live-responses-table tbody .response-col_status").first().innerText()).toContain("200");
  onlyDaemonOrigin();
  await page.close();
}, 60_000);

test("under a non-loopback name: no validator badge, nothing fetched from outside, servers names that origin", async () => {
  const aliasUrl = daemon.baseUrl.replace("127.0.0.1", ALIAS);
  requested.length = 0;
  const page = await context.newPage();
  await page.goto(`${aliasUrl}/swagger/`, { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 20_000 });
  const foreign = requested.filter((u) => !u.startsWith("data:") && !u.startsWith("blob:") && new URL(u).origin !== new URL(aliasUrl).origin);
  expect(foreign).toEqual([]);
  expect(await page.locator(".validator-badge, img[src*='validator']").count()).toBe(0);
  // The spec's one server is the origin the page was read from (no http.publicUrl set).
  expect(await page.locator(".servers select option").allInnerTexts()).toEqual([expect.stringContaining(aliasUrl)]);
  await page.close();
}, 60_000);
