/**
 * Where the time of `GET /backup-jobs?limit=50` goes, in-process (the real app through
 * `app.handle`, no network): the SQL alone, the row → API mapping, JSON, and the whole
 * request, for the first and a deep page, and a 1-item page for the fixed per-request cost.
 *
 *   node_modules/.bin/bun bench/api-profile.ts [--jobs 100000] [--n 300]
 */
import { and, desc, eq, lt } from "drizzle-orm";
import { parseArgs } from "node:util";
import { backupJobs } from "../src/db/schema.ts";
import { toBackupJob } from "../src/modules/jobs/serialize.ts";
import { createHarness } from "../test/helpers/harness.ts";
import { median, percentile } from "./lib.ts";
import { seedJobs } from "./seed-jobs.ts";

const { values } = parseArgs({ options: { jobs: { type: "string", default: "100000" }, n: { type: "string", default: "300" } } });
const JOBS = Math.min(1_000_000, Number(values.jobs));
const N = Math.max(10, Math.min(5000, Number(values.n)));
const ORG = "org_bench";

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
    name: "nightly", scheduleCron: "0 3 * * *", timezone: "UTC", destinationId: dst.id, retention: { keepLast: 7 },
    compression: { algorithm: "zstd", level: 3 }, encryption: { enabled: true, recipients: [] }, timeoutSeconds: 600, retries: 0,
  });
  seedJobs(h.store.db, { org: ORG, jobs: JOBS, audit: 0, sourceIds: [src.id], policyId: pol.id, destinationId: dst.id });

  // The deep page's cursor, by following cursors.
  let cursor: string = (await must("GET", "/backup-jobs?limit=50")).cursors.next;
  for (let i = 0; i < Math.min(1000, JOBS / 50 - 2); i++) cursor = (await must("GET", `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`)).cursors.next;
  const deepBefore = h.store.db.select({ id: backupJobs.id }).from(backupJobs).orderBy(desc(backupJobs.id)).limit(1).offset(50 * 1001 - 1).get()!.id;

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
  const query = (before: string | null) => () =>
    h.store.db.select().from(backupJobs).where(and(eq(backupJobs.orgId, ORG), before ? lt(backupJobs.id, before) : undefined)).orderBy(desc(backupJobs.id)).limit(51).all();
  const rows = query(null)();
  const mapped = rows.slice(0, 50).map(toBackupJob);
  const request = (path: string) => async () => {
    const res = await h.app.handle(new Request(`http://localhost${path}`, { headers: { authorization: `Bearer ${token}` } }));
    await res.text();
  };
  const cases: [string, () => unknown][] = [
    ["SQL only, first page (51 rows, drizzle)", query(null)],
    ["SQL only, deep page", query(deepBefore)],
    ["map 50 rows → API objects (toBackupJob)", () => rows.slice(0, 50).map(toBackupJob)],
    ["JSON.stringify of the 50-item page", () => JSON.stringify({ items: mapped, cursors: { next: "x" } })],
    ["whole request, first page (app.handle)", request("/backup-jobs?limit=50")],
    ["whole request, deep page (app.handle)", request(`/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`)],
    ["whole request, limit=1 (fixed cost: auth, routing, hooks)", request("/backup-jobs?limit=1")],
    ["GET /healthz (no auth)", request("/healthz")],
  ];
  console.log(`${JOBS.toLocaleString("en")} jobs, ${N} sequential calls each (after 20 warm-up)\n\n| step | p50 ms | p99 ms |\n|---|---|---|`);
  for (const [name, f] of cases) {
    const xs = await time(f);
    console.log(`| ${name} | ${median(xs).toFixed(3)} | ${percentile(xs, 99).toFixed(3)} |`);
  }
} finally {
  h.close();
}
process.exit(0);
