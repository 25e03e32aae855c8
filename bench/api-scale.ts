/**
 * The jobs API at scale: 100,000 jobs and 10,000 audit events in the store, then, each under
 * 32 concurrent clients with wrk against the real daemon process on 127.0.0.1:
 * `GET /backup-jobs?limit=50` (the first page, and a page ~1000 pages deep reached by
 * following cursors) and `GET /backup-jobs/{id}`.
 *
 *   node_modules/.bin/bun bench/api-scale.ts [--jobs 100000] [--audit 10000] [--depth 1000] [--seconds 10] [--runs 3] [--baseline CMD]
 *
 * `--baseline CMD` runs the same wrk rounds against a second daemon, started as `CMD serve …`
 * (e.g. a script running `bun /tmp/old/src/main.ts "$@"` from a checkout of an older commit)
 * over a copy of the same data dir, alternating which goes first: a before/after pair taken
 * under the same machine load. Besides wrk's latencies, the daemon's CPU time per request
 * (from /proc, user + sys) is reported: it moves much less with the machine's other load.
 *
 * Needs `wrk` (apt-get install -y wrk).
 */
import { cpSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/db/client.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { apiOf, appendResults, cleanupStack, cpuOf, daemon, load, median, memOf, mmm, sh, type Daemon } from "./lib.ts";
import { seedJobs } from "./seed-jobs.ts";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "100000" },
    audit: { type: "string", default: "10000" },
    depth: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    runs: { type: "string", default: "3" },
    baseline: { type: "string" },
  },
});
const JOBS = Math.min(1_000_000, Number(values.jobs));
const AUDIT = Math.min(1_000_000, Number(values.audit));
const DEPTH = Math.min(Math.floor(JOBS / 50) - 1, Number(values.depth));
const SECONDS = Math.min(60, Number(values.seconds));
const RUNS = Math.max(3, Math.min(10, Number(values.runs)));
const ORG = "org_bench";
const ENV = { SNAPDB_RUNNER_MAX_CONCURRENT: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" };

const cleanup = cleanupStack();
const dir = tempDir("snapdb-bench-api");
cleanup.push(() => dir.cleanup());

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** Daemon CPU (user + sys) per answered request, ms. */
  cpuMs: number;
}

/** One wrk run (2 threads, 32 connections; latencies in ms from its --latency table) and the daemon's CPU meanwhile. */
function wrk(d: Daemon, url: string, token: string): WrkResult {
  const before = cpuOf(d.pid).self;
  const out = sh(`wrk -t2 -c32 -d${SECONDS}s --latency -H 'authorization: Bearer ${token}' '${url}'`);
  const cpu = cpuOf(d.pid).self - before;
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    if (!m) throw new Error(`no ${label}% in wrk output:\n${out}`);
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p50: ms("50"), p99: ms("99"), non2xx, cpuMs: (cpu * 1000) / Math.max(1, requests) };
}

try {
  // 1. A daemon makes the store, keys and the rows jobs point at, then stops for the bulk load.
  // The sources' files are never read: their paths only have to be allowed.
  const setup = await daemon({ dataDir: dir.path, env: { SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" } });
  cleanup.push(() => setup.stop());
  const setupApi = apiOf(setup, await setup.token(ORG));
  const managed = await setupApi("POST", "/storage-destinations/managed/ensure");
  const sources: string[] = [];
  for (let i = 0; i < 20; i++) sources.push((await setupApi("POST", "/data-sources", { name: `db-${i}`, engine: "sqlite", path: `/var/lib/app/db-${i}.sqlite` })).id);
  const pol = await setupApi("POST", "/backup-policies", {
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
  const seedSeconds = await seedJobs(store.db, { org: ORG, jobs: JOBS, audit: AUDIT, sourceIds: sources, policyId: pol.id, destinationId: managed.id });
  store.close();

  // 2. The daemon(s) over the loaded store; the baseline over a copy (one daemon per data dir).
  const daemons: { name: string; d: Daemon }[] = [];
  if (values.baseline) {
    const copy = tempDir("snapdb-bench-api-base");
    cleanup.push(() => copy.cleanup());
    cpSync(dir.path, copy.path, { recursive: true });
    const base = await daemon({ dataDir: copy.path, binary: values.baseline, env: ENV });
    cleanup.push(() => base.stop());
    daemons.push({ name: "baseline", d: base });
  }
  const d = await daemon({ dataDir: dir.path, env: ENV });
  cleanup.push(() => d.stop());
  daemons.push({ name: "snapdb", d });

  const token = await d.token(ORG, { scopes: ["backup.read"] });
  const api = apiOf(d, token);
  let page = await api("GET", "/backup-jobs?limit=50");
  const oneId: string = page.items[7].id;
  let cursor: string | null = page.cursors.next;
  const walk0 = performance.now();
  for (let i = 0; i < DEPTH && cursor; i++) {
    page = await api("GET", `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`);
    cursor = page.cursors.next;
  }
  const walkMs = (performance.now() - walk0) / DEPTH;
  if (!cursor) throw new Error("the list ended before the deep page");
  const deepPath = `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`;
  for (const { d: x } of daemons) {
    const deepPage = await apiOf(x, token)("GET", deepPath);
    if (deepPage.items.length !== 50) throw new Error(`deep page has ${deepPage.items.length} items`);
  }
  const PATHS = { first: "/backup-jobs?limit=50", deep: deepPath, one: `/backup-jobs/${oneId}` } as const;
  type Kind = keyof typeof PATHS;
  const LABEL: Record<Kind, string> = {
    first: "first page",
    deep: `page ${DEPTH + 1} (item ${DEPTH * 50 + 1}…, via cursor)`,
    one: "GET /backup-jobs/{id}",
  };

  // 3. wrk: every kind in turn, daemons alternating which goes first, so machine load hits all alike.
  for (const { d: x } of daemons) for (const p of Object.values(PATHS)) wrk(x, x.baseUrl + p, token); // warm-up
  const res: Record<string, Record<Kind, WrkResult[]>> = {};
  for (const { name } of daemons) res[name] = { first: [], deep: [], one: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const kind of Object.keys(PATHS) as Kind[]) {
      const order = r % 2 ? [...daemons].reverse() : daemons;
      for (const { name, d: x } of order) {
        res[name]![kind].push(wrk(x, x.baseUrl + PATHS[kind], token));
        console.log(`${name} ${kind} run ${r + 1}: ${JSON.stringify(res[name]![kind].at(-1))} (load ${load()})`);
      }
    }
  }
  const rss = memOf(d.pid);
  const row = (name: string, k: Kind) => {
    const xs = res[name]![k];
    return `| ${LABEL[k]} | ${name} | ${mmm(xs.map((x) => x.p50), (n) => n.toFixed(2))} | ${mmm(xs.map((x) => x.p99), (n) => n.toFixed(2))} | ${mmm(xs.map((x) => x.rps), (n) => n.toFixed(0))} | ${mmm(xs.map((x) => x.cpuMs), (n) => n.toFixed(3))} | ${xs.reduce((s, x) => s + x.non2xx, 0)} |`;
  };
  const rows = (Object.keys(PATHS) as Kind[]).flatMap((k) => daemons.map(({ name }) => row(name, k)));
  const ratio = (k: Kind, f: (x: WrkResult) => number) => median(res.snapdb!.deep.map(f)) / median(res.snapdb![k].map(f));
  const vsBase = values.baseline
    ? `\n\nsnapdb / baseline (medians): ${(Object.keys(PATHS) as Kind[])
        .map((k) => `${LABEL[k]}: p99 ${(median(res.snapdb![k].map((x) => x.p99)) / median(res.baseline![k].map((x) => x.p99))).toFixed(2)}, CPU per request ${(median(res.snapdb![k].map((x) => x.cpuMs)) / median(res.baseline![k].map((x) => x.cpuMs))).toFixed(2)}`)
        .join("; ")}. Baseline: \`${values.baseline}\`.`
    : "";
  appendResults(
    "API at scale (bench/api-scale.ts)",
    `Store: ${JOBS.toLocaleString("en")} jobs and ${AUDIT.toLocaleString("en")} audit events in one org (bulk-inserted in ${seedSeconds.toFixed(1)} s). wrk -t2 -c32 for ${SECONDS} s per run, ${RUNS} runs each, kinds in turn${values.baseline ? ", the two daemons alternating which goes first" : ""}; the daemon (bun src/main.ts serve) and wrk share the 2 cores. CPU ms/request is the daemon's user + sys time over the requests wrk counted.

| request | daemon | p50 ms | p99 ms | requests/s | CPU ms/request | non-2xx |
|---|---|---|---|---|---|---|
${rows.join("\n")}

Deep / first page (snapdb, medians): p50 ${ratio("first", (x) => x.p50).toFixed(2)}, p99 ${ratio("first", (x) => x.p99).toFixed(2)}, CPU ${ratio("first", (x) => x.cpuMs).toFixed(2)}. Walking the ${DEPTH} pages one by one took ${walkMs.toFixed(1)} ms per page. Daemon RSS after the runs: ${rss?.rss.toFixed(0)} MiB.${vsBase}
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
