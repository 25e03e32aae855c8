/**
 * The dashboard at /ui/ in a real headless Chromium (the system's, driven by playwright-core)
 * against the compiled daemon and a real PostgreSQL: three data sources, one failing, show
 * with the right states, the 30-day strip, charts, failed jobs and the queue; the login link
 * of `snapdb ui-link` works once, and a reused or expired one is refused; a pasted token with
 * more than read scopes is refused; the token stays in memory; nothing is fetched from anywhere but the daemon; no CSP violation; the page is
 * usable from the keyboard. The screenshot goes to docs/dashboard.png when that file is
 * missing or SNAPDB_UPDATE_DOCS=1 (so a test run does not rewrite the README's picture).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { REPO_ROOT, startDaemon, type Daemon } from "../helpers/daemon.ts";
import { readPng } from "../helpers/png.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { findChromium } from "../helpers/tool-paths.ts";

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const ORG = "acme";

let pg: PgServer;
let daemon: Daemon;
let api: DaemonApi;
let context: BrowserContext;
let profile: ReturnType<typeof tempDir>;
const ids: Record<string, string> = {};
const requested: string[] = [];
const problems: string[] = [];

/** `snapdb ui-link` of the compiled binary, as an operator on the daemon's host runs it. */
async function uiLink(extra: string[] = []): Promise<string> {
  const r = await daemon.run(["ui-link", "--org", ORG, "--listen", `127.0.0.1:${daemon.port}`, ...extra]);
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

async function open(url: string): Promise<Page> {
  const page = await context.newPage();
  page.on("console", (m) => void (m.type() === "error" && problems.push(`console: ${m.text()}`)));
  page.on("pageerror", (e) => void problems.push(`pageerror: ${e.message}`));
  page.on("response", (r) => void (r.status() >= 400 && problems.push(`${r.status()} ${new URL(r.url()).pathname}`)));
  await page.goto(url, { waitUntil: "load" });
  return page;
}

beforeAll(async () => {
  // No silent skip: without Chromium this suite fails (findChromium says how to get one), it does not pass.
  const executablePath = findChromium();
  [pg, daemon] = await Promise.all([startPostgres(), startDaemon({ binary: "compiled" })]);
  pg.psql(`CREATE DATABASE inventory OWNER ${pg.user};`);
  // A drill restores into a scratch database it creates on the source's server.
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB;`);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS customer FROM generate_series(1, 20000) g;`, pg.database);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE items AS SELECT g AS id, md5(g::text) AS sku FROM generate_series(1, 5000) g;`, "inventory");
  api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  const dst = await api.managedDestination();
  const nightly = await api.createPolicy(dst.id, { name: "nightly", scheduleCron: "15 2 * * *", timezone: "Europe/Berlin", retries: 0, fingerprint: true });
  const at = { engine: "postgres", host: pg.host, port: pg.port };
  const good = { username: pg.user, password: pg.password };
  ids.orders = (await api.createSource({ name: "orders", ...at, database: pg.database }, good)).id;
  ids.inventory = (await api.createSource({ name: "inventory", ...at, database: "inventory" }, good)).id;
  ids.payments = (await api.createSource({ name: "payments", ...at, database: pg.database }, { username: pg.user, password: "wrong-password" })).id;
  for (const id of Object.values(ids)) await api.attach(id, nightly.id);
  for (let i = 0; i < 3; i++) expect((await api.backupNow(ids.orders!)).status).toBe("succeeded");
  for (let i = 0; i < 2; i++) expect((await api.backupNow(ids.inventory!)).status).toBe("succeeded");
  expect((await api.backupNow(ids.payments!)).status).toBe("failed");
  // A restore drill of orders, run once: the dashboard shows its verification.
  const plan = await api.must("POST", "/restore-plans", { name: "orders drill", dataSourceId: ids.orders, mode: "drill", scheduleCron: "30 4 * * *", target: { dataSourceId: ids.orders } }, 201);
  ids.drill = plan.id;
  const run = await api.must("POST", `/restore-plans/${plan.id}/run-now`, undefined, 202);
  const drilled = await api.waitForStatus(`/restores/${run.id}`);
  expect(drilled.verification).toMatchObject({ status: "passed", tables: 1, rowsCompared: 20000 });

  profile = tempDir("snapdb-chromium");
  context = await chromium.launchPersistentContext(profile.path, { executablePath, headless: true, args: ARGS, viewport: { width: 1280, height: 760 } });
  context.on("request", (req) => void requested.push(req.url()));
}, 180_000);

afterAll(async () => {
  await context?.close();
  profile?.cleanup();
  await daemon?.stop();
  await pg?.stop();
}, 60_000);

const rowOf = (page: Page, name: string) => page.locator("#sources-body tr", { has: page.locator(`th:text-is("${name}")`) });

test("the link signs in once; the page shows every source with its state, strip, charts and next run", async () => {
  const link = await uiLink();
  expect(link).toMatch(new RegExp(`^${daemon.baseUrl}/ui/#code=[A-Za-z0-9_-]{43}$`));
  const page = await open(link);
  await page.waitForSelector("#sources-body tr[data-source-id]", { timeout: 20_000 });
  // The code left the address bar (and the history entry) before it was used.
  expect(page.url()).toBe(`${daemon.baseUrl}/ui/`);
  expect(await page.locator("#login").isHidden()).toBe(true);

  const rows = page.locator("#sources-body tr[data-source-id]");
  expect(await rows.count()).toBe(3);
  const states = await rows.evaluateAll((trs) => trs.map((tr) => [tr.querySelector("th")!.childNodes[0]!.textContent, tr.getAttribute("data-state")]));
  expect(states).toEqual([
    ["inventory", "ok"],
    ["orders", "ok"],
    ["payments", "failed"],
  ]);
  const payments = rowOf(page, "payments");
  const failedJob = (await api.must("GET", `/backup-jobs?dataSourceId=${ids.payments}&limit=1`)).items[0];
  expect(await payments.locator(".state .badge").innerText()).toBe("failed");
  expect(await payments.locator(".state .error-code").innerText()).toBe(failedJob.error.code);
  expect(await payments.locator("td").nth(1).innerText()).toBe("never"); // last success

  // The strip: 30 days, today ok for the backed-up sources and failed for payments.
  for (const [name, today] of [
    ["orders", "ok"],
    ["inventory", "ok"],
    ["payments", "failed"],
  ] as const) {
    const days = rowOf(page, name).locator(".strip .day");
    expect(await days.count()).toBe(30);
    expect(await days.last().getAttribute("data-state")).toBe(today);
    expect(await rowOf(page, name).locator(".strip").getAttribute("aria-label")).toMatch(/^Last 30 days, oldest first: 1 (ok|failed)$/);
  }
  // Charts: uPlot drew the sizes of the three backups of orders; the text alternative says what they show.
  const size = rowOf(page, "orders").locator("figure.spark.size");
  expect(await size.locator("canvas").count()).toBeGreaterThan(0);
  expect(await size.getAttribute("aria-label")).toMatch(/^Size of the last 3 backups: latest [\d.]+ (KiB|MiB), from /);
  expect(await rowOf(page, "payments").locator("figure.spark.size").getAttribute("aria-label")).toBe("Size: no successful backup yet");
  // Next run: the nightly schedule, from the attachments.
  const nextRun = rowOf(page, "orders").locator("td").nth(2).locator("time");
  expect(await nextRun.innerText()).toMatch(/^in \d+ (h|min)$/);
  const attachment = (await api.must("GET", `/attachments?dataSourceId=${ids.orders}`)).items[0];
  expect(await nextRun.getAttribute("datetime")).toBe(attachment.nextRunAt);

  // Failed jobs, with their error.
  const failedRows = page.locator("#failed-body tr[data-job-id]");
  expect(await failedRows.count()).toBe(1);
  expect(await failedRows.first().innerText()).toContain(failedJob.error.code);
  expect(await failedRows.first().locator(".message").textContent()).toBe(failedJob.error.message);
  expect(await page.locator("#queue-body td.empty").innerText()).toBe("Nothing is queued or running.");
  // Every job of the window was read: no partial-data note, no "not loaded" in the legend.
  expect(await page.locator("#partial").isHidden()).toBe(true);
  expect(await page.locator("#legend-unknown").isHidden()).toBe(true);

  // Restore drills: the last run of the drill of orders passed, with what it compared and how long it took.
  const drills = page.locator("#drills-body tr[data-plan-id]");
  expect(await drills.count()).toBe(1);
  const drill = drills.first();
  expect(await drill.getAttribute("data-plan-id")).toBe(ids.drill!);
  const cells = await drill.locator("th, td").allInnerTexts();
  const lastRun = (await api.must("GET", `/restore-plans/${ids.drill}`)).lastRun;
  expect(cells.slice(0, 2)).toEqual(["orders drill", "orders"]);
  expect(cells[2]).toMatch(/^\d+ (s|min) ago$/);
  expect(await drill.locator("td").nth(1).locator("time").getAttribute("datetime")).toBe(lastRun.finishedAt);
  expect(cells.slice(3, 6)).toEqual(["passed", "1", "20,000"]);
  expect(cells[6]).toBe(`${(lastRun.verification.durationMs / 1000).toFixed(1)} s`);
  expect(cells[7]).toBe("");
  expect(await drill.locator(".badge").getAttribute("class")).toBe("badge ok");

  // The token lives in the page's memory only.
  // (Functions given to evaluate() run in the page: its globals are reached through globalThis.)
  expect(
    await page.evaluate(() => {
      const w = globalThis as any;
      return [w.localStorage.length, w.sessionStorage.length, w.document.cookie];
    }),
  ).toEqual([0, 0, ""]);
  await page.close();
}, 90_000);

test("the queue shows a running backup after Refresh (keyboard only); the screenshot", async () => {
  const page = await open(await uiLink());
  await page.waitForSelector("#sources-body tr[data-source-id]", { timeout: 20_000 });
  const release = await holdTableLock(pg, "inventory", "items", "ACCESS EXCLUSIVE");
  try {
    const job = await api.runNow(ids.inventory!);
    await api.waitForStatus(`/backup-jobs/${job.id}`, ["running"]);
    // Skip link, then the Refresh button, pressed with Enter.
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe("Skip to the dashboard");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.id)).toBe("refresh");
    await page.keyboard.press("Enter");
    const queued = page.locator(`#queue-body tr[data-job-id="${job.id}"]`);
    await queued.waitFor({ timeout: 10_000 });
    expect(await queued.innerText()).toContain("running");
    expect(await queued.innerText()).toContain("inventory");
    expect(await rowOf(page, "inventory").locator(".badge.active").innerText()).toBe("running");
    expect(await rowOf(page, "inventory").locator(".strip .day").last().getAttribute("data-state")).toBe("ok");

    // The screenshot, after what the DOM says was checked: it must show the same.
    const shot = join(profile.path, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    const docs = join(REPO_ROOT, "docs", "dashboard.png");
    if (!existsSync(docs) || process.env.SNAPDB_UPDATE_DOCS === "1") copyFileSync(shot, docs);
    expect(Bun.file(shot).size).toBeGreaterThan(10_000);
    const png = readPng(new Uint8Array(await Bun.file(shot).arrayBuffer()));
    expect(await page.evaluate(() => (globalThis as any).scrollY)).toBe(0); // boxes are page coordinates
    const box = async (locator: ReturnType<Page["locator"]>) => (await locator.boundingBox())!;
    const near = (got: number[], want: number[]) => got.every((v, i) => Math.abs(v - want[i]!) <= 12);
    const RED = [0xcf, 0x22, 0x2e];
    const GREEN = [0x1a, 0x7f, 0x37];
    const WHITE = [0xff, 0xff, 0xff];
    // The failing source's square of today: red, with the white bar across its middle.
    const failedDay = await box(rowOf(page, "payments").locator(".strip .day").last());
    const cx = failedDay.x + failedDay.width / 2;
    expect({ top: near(png.pixel(cx, failedDay.y + 3), RED), bar: near(png.pixel(cx, failedDay.y + 9), WHITE), bottom: near(png.pixel(cx, failedDay.y + 15), RED) }).toEqual({
      top: true,
      bar: true,
      bottom: true,
    });
    // Its "failed" badge is red; the healthy source's square of today is solid green.
    const badge = await box(rowOf(page, "payments").locator(".state .badge"));
    expect(png.pixel(badge.x + 4, badge.y + badge.height / 2)).toSatisfy((p) => near(p, RED));
    const okDay = await box(rowOf(page, "orders").locator(".strip .day").last());
    for (const dy of [3, 9, 15]) expect(png.pixel(okDay.x + okDay.width / 2, okDay.y + dy)).toSatisfy((p) => near(p, GREEN));
  } finally {
    await release();
  }
  await page.close();
}, 90_000);

test("accessible: headings, labelled tables, row headers, and text contrast of at least 4.5:1", async () => {
  const page = await open(await uiLink());
  await page.waitForSelector("#sources-body tr[data-source-id]", { timeout: 20_000 });
  expect(await page.locator("h1").allInnerTexts()).toEqual(["snapdb dashboard"]);
  expect(await page.locator("h2:visible").allInnerTexts()).toEqual(["Data sources", "Queue", "Failed backups", "Restore drills"]);
  for (const table of ["#sources", "#queue", "#failed", "#drills"]) {
    expect((await page.locator(`${table} caption`).innerText()).length).toBeGreaterThan(10);
    const cols = page.locator(`${table} thead th`);
    expect(await cols.count()).toBeGreaterThan(3);
    expect(await cols.evaluateAll((ths) => ths.every((th) => th.getAttribute("scope") === "col"))).toBe(true);
  }
  expect(await page.locator("#sources-body tr th[scope=row]").count()).toBe(3);
  expect(await page.locator('[role="status"]').innerText()).toMatch(/^3 data sources: 2 ok, 1 failing\. Updated /);
  // WCAG contrast (relative luminance of the sRGB colours), defined once in the page for the two looks below.
  await page.evaluate(`globalThis.contrastRatio = (fg, bg) => {
    const lum = (css) => {
      const [r, g, b] = css.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map((v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  }`);
  // WCAG contrast of every text that carries a state, and of the body text.
  const ratios = await page.evaluate(() => {
    const { document, getComputedStyle } = globalThis as any;
    const ratio = (globalThis as any).contrastRatio as (fg: string, bg: string) => number;
    const bodyBg =
      getComputedStyle(document.body).backgroundColor === "rgba(0, 0, 0, 0)" ? getComputedStyle(document.documentElement).backgroundColor : getComputedStyle(document.body).backgroundColor;
    const out: Record<string, number> = {};
    for (const sel of [".badge.ok", ".badge.failed", ".badge.active"]) {
      const el = document.querySelector(sel);
      if (el) out[sel] = ratio(getComputedStyle(el).color, getComputedStyle(el).backgroundColor);
    }
    for (const sel of ["main", ".error-code", "#status", "caption", "thead th"]) {
      const el = document.querySelector(sel);
      if (el) out[sel] = ratio(getComputedStyle(el).color, bodyBg);
    }
    return out;
  });
  expect(Object.keys(ratios).length).toBeGreaterThanOrEqual(6);
  for (const [sel, r] of Object.entries(ratios)) expect({ sel, ok: r >= 4.5 }).toEqual({ sel, ok: true });

  // The strip's squares (in the rows and in the legend): their colour (fill, or border when the
  // fill is the page's) at least 3:1 against the page, and each state told apart without colour.
  const squares = await page.evaluate(() => {
    const { document, getComputedStyle } = globalThis as any;
    const ratio = (globalThis as any).contrastRatio as (fg: string, bg: string) => number;
    const page = getComputedStyle(document.documentElement).backgroundColor;
    return [...document.querySelectorAll(".day")]
      .filter((el: any) => el.getClientRects().length > 0)
      .map((el: any) => {
        const cs = getComputedStyle(el);
        const bordered = cs.borderTopWidth !== "0px";
        const paint = bordered ? cs.borderTopColor : cs.backgroundColor;
        const rect = el.getBoundingClientRect();
        return {
          state: el.className.replace("day ", ""),
          ratio: ratio(paint, page),
          // What is left when colour is taken away: the shape.
          shape: [Math.round(rect.height), bordered ? cs.borderTopStyle : "no border", cs.backgroundColor === page ? "empty" : "filled", cs.backgroundImage === "none" ? "plain" : "patterned"].join(
            " ",
          ),
        };
      });
  });
  const states = new Set(squares.map((q) => q.state));
  for (const state of ["ok", "failed", "missed", "pending", "none"]) expect(states.has(state)).toBe(true);
  for (const q of squares) expect({ state: q.state, ratio: q.ratio >= 3 }).toEqual({ state: q.state, ratio: true });
  const shapes = new Map<string, Set<string>>();
  for (const q of squares) shapes.set(q.state, (shapes.get(q.state) ?? new Set()).add(q.shape));
  for (const [state, seen] of shapes) expect({ state, shapes: seen.size }).toEqual({ state, shapes: 1 });
  const byShape = [...shapes].map(([state, seen]) => [[...seen][0], state]);
  expect(new Map(byShape as [string, string][]).size).toBe(shapes.size);
  await page.close();
}, 60_000);

test("a reused link and an expired one are refused; a pasted token (Enter in its labelled field) opens it", async () => {
  const link = await uiLink();
  const first = await open(link);
  await first.waitForSelector("#sources-body tr[data-source-id]", { timeout: 20_000 });
  await first.close();

  const reused = await open(link);
  await reused.locator("#login-error").waitFor({ state: "visible", timeout: 10_000 });
  expect(await reused.locator("#login-error").innerText()).toContain("invalid, expired or was already used");
  expect(await reused.locator("#dashboard").isHidden()).toBe(true);
  expect(reused.url()).toBe(`${daemon.baseUrl}/ui/`);

  // A link whose token lasts one second: by the time it is opened, it has expired.
  const shortLived = await uiLink(["--ttl", "1s"]);
  await Bun.sleep(1500);
  const expired = await open(shortLived);
  await expired.locator("#login-error").waitFor({ state: "visible", timeout: 10_000 });
  expect(await expired.locator("#login-error").innerText()).toContain("invalid, expired or was already used");
  await expired.close();

  // A pasted token that could change things is refused by the page itself: nothing is asked with it.
  const field = reused.getByLabel("API token");
  const asked = requested.length;
  await field.fill(await daemon.token(ORG));
  await field.press("Enter");
  await reused.locator("#login-error").filter({ hasText: "can also change things" }).waitFor({ timeout: 10_000 });
  expect(await reused.locator("#login-error").innerText()).toBe(
    "This token can also change things (backup.write, backup.operate, backup.restore, notify.write): the dashboard only takes a read-only token, with the scope backup.read. Run snapdb ui-link, or mint one with snapdb token --org ORG --scope backup.read.",
  );
  expect(await reused.locator("#dashboard").isHidden()).toBe(true);
  expect(await field.inputValue()).toBe("");
  expect(requested.slice(asked)).toEqual([]);

  // The fallback: a read-only token typed into the labelled field, Enter to submit.
  await field.fill(await daemon.token(ORG, { scopes: ["backup.read"] }));
  await field.press("Enter");
  await reused.waitForSelector("#sources-body tr[data-source-id]", { timeout: 20_000 });
  expect(await reused.locator("#sources-body tr[data-source-id]").count()).toBe(3);
  expect(await field.inputValue()).toBe("");
  await reused.close();
}, 60_000);

test("nothing left the daemon's origin, and the page broke no rule of its CSP", () => {
  const origin = new URL(daemon.baseUrl).origin;
  const foreign = requested.filter((u) => !u.startsWith("data:") && !u.startsWith("blob:") && new URL(u).origin !== origin);
  expect(foreign).toEqual([]);
  expect(requested.filter((u) => u.includes("/ui/assets/app.js")).length).toBeGreaterThan(0);
  // The refused logins answer 401 (which Chromium also logs as a failed load): expected, and nothing else.
  expect(problems.filter((p) => !/status of 401/.test(p) && p !== "401 /ui/login")).toEqual([]);
  expect(problems.filter((p) => p === "401 /ui/login").length).toBe(2);
});
