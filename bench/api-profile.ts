/**
 * Where the time of `GET /backup-jobs?limit=50` goes, in-process (the real app through
 * `app.handle`, no network): the SQL alone and its query plan, the token check, the cursor,
 * the row → API mapping, the response-schema check Elysia runs on every answer, JSON, and the
 * whole request, for the first and a deep page, one job by id, and a 1-item page for the
 * fixed per-request cost.
 *
 *   node_modules/.bin/bun bench/api-profile.ts [--jobs 100000] [--n 300]
 *
 * The test harness also holds every answer to the served OpenAPI document (a contract check
 * in `h.call`); that check is test-only, so the timed requests here go through `app.handle`
 * directly, as the daemon serves them.
 */
import { FormatRegistry } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { and, desc, eq, lt } from "drizzle-orm";
import { jwtVerify } from "jose";
import { parseArgs } from "node:util";
import { derivedKey } from "../src/cli/runtime.ts";
import { backupJobs } from "../src/db/schema.ts";
import { createTokenVerifier } from "../src/http/auth.ts";
import { Cursors } from "../src/http/pagination.ts";
import type { ServiceContext } from "../src/lib/context.ts";
import { JobPage } from "../src/modules/jobs/model.ts";
import { BackupJob, toBackupJob } from "../src/modules/jobs/serialize.ts";
import { listJobs } from "../src/modules/jobs/service.ts";
import { createHarness } from "../test/helpers/harness.ts";
import { median, percentile } from "./lib.ts";
import { seedJobs } from "./seed-jobs.ts";

const { values } = parseArgs({ options: { jobs: { type: "string", default: "100000" }, n: { type: "string", default: "300" } } });
const JOBS = Math.min(1_000_000, Number(values.jobs));
const N = Math.max(10, Math.min(5000, Number(values.n)));
const ORG = "org_bench";

// Elysia's own date-time check, registered when it loads; the app swaps in a strict one.
const elysiaDateTime = FormatRegistry.Get("date-time")!;

// The source's file is never read here: its path only has to be allowed.
const h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" });
try {
  const token = await h.token(ORG);
  const must = async (method: string, path: string, body?: unknown) => {
    const r = await h.call(method, path, { token, body });
    if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status} ${r.text}`);
    return r.body;
  };
  const dst = await must("POST", "/storage-destinations/managed/ensure");
  const src = await must("POST", "/data-sources", { name: "db", engine: "sqlite", path: "/var/lib/app/db.sqlite" });
  const pol = await must("POST", "/backup-policies", {
    name: "nightly",
    scheduleCron: "0 3 * * *",
    timezone: "UTC",
    destinationId: dst.id,
    retention: { keepLast: 7 },
    compression: { algorithm: "zstd", level: 3 },
    encryption: { enabled: true, recipients: [] },
    timeoutSeconds: 600,
    retries: 0,
  });
  await seedJobs(h.store.db, { org: ORG, jobs: JOBS, audit: 0, sourceIds: [src.id], policyId: pol.id, destinationId: dst.id });

  // The deep page's cursor, by following cursors.
  let cursor: string = (await must("GET", "/backup-jobs?limit=50")).cursors.next;
  for (let i = 0; i < Math.min(1000, JOBS / 50 - 2); i++) cursor = (await must("GET", `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`)).cursors.next;
  const deepBefore = (
    await h.store.db
      .select({ id: backupJobs.id })
      .from(backupJobs)
      .orderBy(desc(backupJobs.id))
      .limit(1)
      .offset(50 * 1001 - 1)
  )[0]!.id;
  const oneId = deepBefore;

  // The plans SQLite picks (keyset on (org_id, id) for both pages: no sort, no scan of skipped rows).
  const client = h.store.sqlite;
  const plan = (sql: string, ...args: (string | number)[]) =>
    client
      .query(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...args)
      .map((r: any) => r.detail)
      .join("; ");
  console.log("Query plans:");
  console.log(`- first page: ${plan("select * from backup_jobs where org_id = ? order by id desc limit ?", ORG, 51)}`);
  console.log(`- deep page: ${plan("select * from backup_jobs where org_id = ? and id < ? order by id desc limit ?", ORG, deepBefore, 51)}`);
  console.log(`- one job: ${plan("select * from backup_jobs where org_id = ? and id = ?", ORG, oneId)}`);

  const time = async (f: () => unknown): Promise<number[]> => {
    for (let i = 0; i < 20; i++) await f();
    const xs: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await f();
      xs.push(performance.now() - t0);
    }
    return xs;
  };
  const query = (before: string | null) => async () =>
    await h.store.db
      .select()
      .from(backupJobs)
      .where(and(eq(backupJobs.orgId, ORG), before ? lt(backupJobs.id, before) : undefined))
      .orderBy(desc(backupJobs.id))
      .limit(51);
  const raw = client.query("select * from backup_jobs where org_id = ? and id < ? order by id desc limit ?");
  const rows = await query(null)();
  const mapped = rows.slice(0, 50).map(toBackupJob);
  const page = { items: mapped, cursors: { next: "x" } };
  const request = (path: string) => async () => {
    const res = await h.app.handle(new Request(`http://localhost${path}`, { headers: { authorization: `Bearer ${token}` } }));
    await res.text();
  };
  const ctx = { db: h.store.db, orgId: ORG } as ServiceContext;
  const secret = h.secret;
  const verifier = createTokenVerifier(h.config.auth, secret);
  const cursors = new Cursors(derivedKey(h.master, "cursor"));
  const next = cursors.encode("backup-jobs", ORG, deepBefore);
  const compiledPage = TypeCompiler.Compile(JobPage);
  const compiledJob = TypeCompiler.Compile(BackupJob);
  const withFormat = (f: (v: string) => boolean, run: () => unknown) => {
    const ours = FormatRegistry.Get("date-time")!;
    FormatRegistry.Set("date-time", f);
    try {
      return run();
    } finally {
      FormatRegistry.Set("date-time", ours);
    }
  };
  const cases: [string, () => unknown][] = [
    ["SQL only, first page (51 rows, drizzle)", query(null)],
    ["SQL only, deep page", query(deepBefore)],
    ["SQL only, deep page (bun:sqlite prepared statement, no drizzle)", () => raw.all(ORG, deepBefore, 51)],
    ["listJobs, deep page (snapdb's service: drizzle prepared query + row mapping)", async () => listJobs(ctx, {}, { limit: 50, beforeId: deepBefore })],
    ["token: jose jwtVerify (HS256)", () => jwtVerify(token, secret, { algorithms: ["HS256"], audience: h.config.auth.audience })],
    ["token: snapdb verifier (jose + claims; cached when the verifier caches)", () => verifier(token)],
    ["cursor: encode (HMAC)", () => cursors.encode("backup-jobs", ORG, deepBefore)],
    ["cursor: decode + check", () => cursors.decode("backup-jobs", ORG, next)],
    ["map 50 rows → API objects (toBackupJob)", () => rows.slice(0, 50).map(toBackupJob)],
    ["response schema: TypeBox Value.Encode of the page (interpreted; Elysia's path when the schema has transforms)", () => Value.Encode(JobPage, page)],
    ["response schema: compiled Check of the page (Elysia's path without transforms), snapdb's date-time format", () => compiledPage.Check(page)],
    ["response schema: compiled Check of the page, Elysia's date-time format", () => withFormat(elysiaDateTime, () => compiledPage.Check(page))],
    ["response schema: compiled Check of one job", () => compiledJob.Check(mapped[0])],
    ["JSON.stringify of the 50-item page", () => JSON.stringify(page)],
    ["whole request, first page (app.handle)", request("/backup-jobs?limit=50")],
    ["whole request, deep page (app.handle)", request(`/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`)],
    ["whole request, limit=1 (fixed cost: auth, routing, hooks)", request("/backup-jobs?limit=1")],
    ["whole request, GET /backup-jobs/{id}", request(`/backup-jobs/${oneId}`)],
    ["GET /healthz (no auth)", request("/healthz")],
  ];
  console.log(`\n${JOBS.toLocaleString("en")} jobs, ${N} sequential calls each (after 20 warm-up)\n\n| step | p50 ms | p99 ms |\n|---|---|---|`);
  for (const [name, f] of cases) {
    const xs = await time(f);
    console.log(`| ${name} | ${median(xs).toFixed(3)} | ${percentile(xs, 99).toFixed(3)} |`);
  }
} finally {
  h.close();
}
process.exit(0);
