/**
 * The jobs list at scale: 100,000 jobs and 10,000 audit events in the store, then
 * `GET /backup-jobs?limit=50` for the first page and for a page ~1000 pages deep (reached by
 * following cursors), each under 32 concurrent clients with wrk, against the real daemon
 * process on 127.0.0.1.
 *
 *   node_modules/.bin/bun bench/api-scale.ts [--jobs 100000] [--audit 10000] [--depth 1000] [--seconds 10] [--runs 3]
 *
 * Needs `wrk` (apt-get install -y wrk).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { openStore } from "../src/db/client.ts";
import { seedJobs } from "./seed-jobs.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { apiOf, appendResults, cleanupStack, daemon, load, median, memOf, mmm, sh } from "./lib.ts";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "100000" },
    audit: { type: "string", default: "10000" },
    depth: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    runs: { type: "string", default: "3" },
  },
});
const JOBS = Math.min(1_000_000, Number(values.jobs));
const AUDIT = Math.min(1_000_000, Number(values.audit));
const DEPTH = Math.min(Math.floor(JOBS / 50) - 1, Number(values.depth));
const SECONDS = Math.min(60, Number(values.seconds));
const RUNS = Math.max(3, Math.min(10, Number(values.runs)));
const ORG = "org_bench";

const cleanup = cleanupStack();
const dir = tempDir("snapdb-bench-api");
cleanup.push(() => dir.cleanup());

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
}

/** One wrk run: 2 threads, 32 connections; latencies in ms from its --latency table. */
function wrk(url: string, token: string): WrkResult {
  const out = sh(`wrk -t2 -c32 -d${SECONDS}s --latency -H 'authorization: Bearer ${token}' '${url}'`);
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    if (!m) throw new Error(`no ${label}% in wrk output:\n${out}`);
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p50: ms("50"), p99: ms("99"), non2xx };
}

try {
  // 1. A daemon makes the store, keys and the rows jobs point at, then stops for the bulk load.
  // The sources' files are never read: their paths only have to be allowed.
  const setup = await daemon({ dataDir: dir.path, env: { SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" } });
  cleanup.push(() => setup.stop());
  let api = apiOf(setup, await setup.token(ORG));
  const managed = await api("POST", "/storage-destinations/managed/ensure");
  const sources: string[] = [];
  for (let i = 0; i < 20; i++) sources.push((await api("POST", "/data-sources", { name: `db-${i}`, engine: "sqlite", path: `/var/lib/app/db-${i}.sqlite` })).id);
  const pol = await api("POST", "/backup-policies", {
    name: "nightly",
    scheduleCron: "0 3 * * *",
    timezone: "UTC",
    destinationId: managed.id,
    retention: { keepLast: 7 },
    compression: { algorithm: "zstd", level: 3 },
    encryption: { enabled: true, recipients: [] },
    timeoutSeconds: 3600,
    retries: 0,
  });
  await setup.stop();
  const store = openStore(join(dir.path, "snapdb.db"));
  const seedSeconds = seedJobs(store.db, { org: ORG, jobs: JOBS, audit: AUDIT, sourceIds: sources, policyId: pol.id, destinationId: managed.id });
  store.close();

  // 2. The real daemon over the loaded store.
  const d = await daemon({ dataDir: dir.path, env: { SNAPDB_RUNNER_MAX_CONCURRENT: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" } });
  cleanup.push(() => d.stop());
  const token = await d.token(ORG, { scopes: ["backup.read"] });
  api = apiOf(d, token);
  const first = `${d.baseUrl}/backup-jobs?limit=50`;
  let page = await api("GET", "/backup-jobs?limit=50");
  let cursor: string | null = page.cursors.next;
  const walk0 = performance.now();
  for (let i = 0; i < DEPTH && cursor; i++) {
    page = await api("GET", `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`);
    cursor = page.cursors.next;
  }
  const walkMs = (performance.now() - walk0) / DEPTH;
  if (!cursor) throw new Error("the list ended before the deep page");
  const deep = `${d.baseUrl}/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`;
  const deepPage = await api("GET", `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`);
  if (deepPage.items.length !== 50) throw new Error(`deep page has ${deepPage.items.length} items`);

  // 3. wrk, first and deep page alternating so machine load hits both alike.
  wrk(first, token); // warm-up
  const res: Record<"first" | "deep", WrkResult[]> = { first: [], deep: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const [k, url] of [["first", first], ["deep", deep]] as const) {
      res[k].push(wrk(url, token));
      console.log(`${k} run ${r + 1}: ${JSON.stringify(res[k].at(-1))} (load ${load()})`);
    }
  }
  const rss = memOf(d.pid);
  const row = (k: "first" | "deep") =>
    `| ${k === "first" ? "first page" : `page ${DEPTH + 1} (item ${DEPTH * 50 + 1}…, via cursor)`} | ${mmm(res[k].map((x) => x.p50), (n) => n.toFixed(2))} | ${mmm(res[k].map((x) => x.p99), (n) => n.toFixed(2))} | ${mmm(res[k].map((x) => x.rps), (n) => n.toFixed(0))} | ${res[k].reduce((s, x) => s + x.non2xx, 0)} |`;
  const ratio = (f: (x: WrkResult) => number) => median(res.deep.map(f)) / median(res.first.map(f));
  appendResults(
    "API at scale (bench/api-scale.ts)",
    `Store: ${JOBS.toLocaleString("en")} jobs and ${AUDIT.toLocaleString("en")} audit events in one org (bulk-inserted in ${seedSeconds.toFixed(1)} s). \`GET /backup-jobs?limit=50\`, wrk -t2 -c32 for ${SECONDS} s per run, ${RUNS} runs each, alternating; the daemon (bun src/main.ts serve) and wrk share the 2 cores.

| page | p50 ms | p99 ms | requests/s | non-2xx |
|---|---|---|---|---|
${row("first")}
${row("deep")}

Deep / first (medians): p50 ${ratio((x) => x.p50).toFixed(2)}, p99 ${ratio((x) => x.p99).toFixed(2)}, requests/s ${ratio((x) => x.rps).toFixed(2)} (target: the deep page costs within 20 %, i.e. latency ratio ≤ 1.20). Walking the ${DEPTH} pages one by one took ${walkMs.toFixed(1)} ms per page. Daemon RSS after the runs: ${rss?.rss.toFixed(0)} MiB.
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
