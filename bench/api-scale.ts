/**
 * The jobs API at scale: 100,000 jobs and 10,000 audit events in the store, then, each under
 * 32 concurrent clients with wrk against the real daemon process on 127.0.0.1:
 * `GET /backup-jobs?limit=50` (the first page, and a page ~1000 pages deep reached by
 * following cursors) and `GET /backup-jobs/{id}`.
 *
 *   node_modules/.bin/bun bench/api-scale.ts [--jobs 100000] [--audit 10000] [--depth 1000] [--seconds 10] [--runs 3]
 *                                            [--store sqlite|postgres|both] [--baseline CMD]
 *
 * `--store postgres` measures the PostgreSQL store (fleet mode): a real PostgreSQL on loopback
 * (test/helpers/postgres.ts), the seeded embedded store copied into it by the real
 * `snapdb store copy` with the daemon stopped, then `VACUUM (ANALYZE)` (what autovacuum does on
 * its own after a bulk load), and the daemon started with SNAPDB_STORE_URL. Besides the
 * daemon's CPU, the PostgreSQL server's (all its processes) is counted per request, and the
 * plans of the queries the daemon sends (read from pg_stat_activity) are run under
 * EXPLAIN (ANALYZE, BUFFERS). `--store both` runs a daemon on each store over the same data,
 * alternating which goes first, and reports PostgreSQL / SQLite per request kind.
 *
 * `--baseline CMD` (SQLite store only) runs the same wrk rounds against a second daemon,
 * started as `CMD serve …` (e.g. a script running `bun /tmp/old/src/main.ts "$@"` from a
 * checkout of an older commit) over a copy of the same data dir, alternating which goes first:
 * a before/after pair taken under the same machine load. Besides wrk's latencies, the daemon's
 * CPU time per request (from /proc, user + sys) is reported: it moves much less with the
 * machine's other load.
 *
 * Needs `wrk` (apt-get install -y wrk).
 */
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { and, desc, eq, lt, sql } from "drizzle-orm";
import { drizzle as pgDrizzle } from "drizzle-orm/bun-sql";
import { drizzle as liteDrizzle } from "drizzle-orm/bun-sqlite";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/db/client.ts";
import * as pgSchema from "../src/db/schema-pg.ts";
import * as liteSchema from "../src/db/schema-sqlite.ts";
import { startPostgres, type PgServer } from "../test/helpers/postgres.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { apiOf, appendResults, cleanupStack, cpuOf, daemon, load, median, memOf, mmm, percentile, pgServerCpu, REPO_ROOT, sh, type Daemon } from "./lib.ts";
import { seedJobs } from "./seed-jobs.ts";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "100000" },
    audit: { type: "string", default: "10000" },
    depth: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    runs: { type: "string", default: "3" },
    store: { type: "string", default: "sqlite" },
    baseline: { type: "string" },
  },
});
const JOBS = Math.min(1_000_000, Number(values.jobs));
const AUDIT = Math.min(1_000_000, Number(values.audit));
const DEPTH = Math.min(Math.floor(JOBS / 50) - 1, Number(values.depth));
const SECONDS = Math.min(60, Number(values.seconds));
const RUNS = Math.max(3, Math.min(10, Number(values.runs)));
const STORE = values.store as "sqlite" | "postgres" | "both";
if (!["sqlite", "postgres", "both"].includes(STORE)) throw new Error(`--store must be sqlite, postgres or both, not ${values.store}`);
if (values.baseline && STORE !== "sqlite") throw new Error("--baseline pairs two daemons on the SQLite store: leave --store out");
const WITH_PG = STORE !== "sqlite";
/** Requests sent one at a time per kind and daemon: latency without queueing behind 31 others. */
const SERIAL = 200;
const ORG = "org_bench";
const STORE_DB = "snapdb_store";
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
  /** The PostgreSQL server's CPU (all its processes) per answered request, ms; 0 on the SQLite store. */
  pgCpuMs: number;
}

interface Measured {
  /** Key in the results: baseline, snapdb (SQLite store, alone or against a baseline), sqlite, postgres. */
  name: string;
  /** As the table shows it. */
  label: string;
  d: Daemon;
  /** The PostgreSQL server's data dir, when this daemon's store is there. */
  pgData?: string;
}

/** One wrk run (2 threads, 32 connections; latencies in ms from its --latency table) and the CPU of the daemon (and its PostgreSQL server) meanwhile. */
function wrk(m: Measured, url: string, token: string): WrkResult {
  const before = cpuOf(m.d.pid).self;
  const pgBefore = m.pgData ? pgServerCpu(m.pgData) : 0;
  const out = sh(`wrk -t2 -c32 -d${SECONDS}s --latency -H 'authorization: Bearer ${token}' '${url}'`);
  const cpu = cpuOf(m.d.pid).self - before;
  const pgCpu = m.pgData ? pgServerCpu(m.pgData) - pgBefore : 0;
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    if (!m) throw new Error(`no ${label}% in wrk output:\n${out}`);
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  const requests = Math.max(1, Number(/(\d+) requests in/.exec(out)?.[1] ?? 0));
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p50: ms("50"), p99: ms("99"), non2xx, cpuMs: (cpu * 1000) / requests, pgCpuMs: (pgCpu * 1000) / requests };
}

/** Store calls timed alone, per kind and store. */
const CALLS = 1000;

/**
 * The three reads as src/modules/jobs/service.ts builds them (drizzle, prepared once, values
 * as placeholders), on one store's tables: timed from this process, one call at a time, they
 * are the store's share of a request (drizzle + driver, and for PostgreSQL the loopback round
 * trip and the server), without HTTP, auth and JSON.
 */
async function storeCalls(db: any, t: typeof liteSchema | typeof pgSchema, ids: { beforeId: string; oneId: string }): Promise<Record<"first" | "deep" | "one", number[]>> {
  const j = t.backupJobs;
  const p = (name: string) => sql.placeholder(name);
  const pg = t === pgSchema;
  const prep = (q: any, name: string) => (pg ? q.prepare(name) : q.prepare());
  const queries = {
    first: {
      q: prep(
        db
          .select()
          .from(j)
          .where(and(eq(j.orgId, p("orgId"))))
          .orderBy(desc(j.id))
          .limit(p("limit")),
        "bench_first",
      ),
      args: { orgId: ORG, limit: 51 },
    },
    deep: {
      q: prep(
        db
          .select()
          .from(j)
          .where(and(eq(j.orgId, p("orgId")), lt(j.id, p("beforeId"))))
          .orderBy(desc(j.id))
          .limit(p("limit")),
        "bench_deep",
      ),
      args: { orgId: ORG, beforeId: ids.beforeId, limit: 51 },
    },
    one: {
      q: prep(
        db
          .select()
          .from(j)
          .where(and(eq(j.orgId, p("orgId")), eq(j.id, p("id")))),
        "bench_one",
      ),
      args: { orgId: ORG, id: ids.oneId },
    },
  };
  const out = { first: [] as number[], deep: [] as number[], one: [] as number[] };
  for (const [kind, { q, args }] of Object.entries(queries) as [keyof typeof out, { q: any; args: Record<string, unknown> }][]) {
    for (let i = 0; i < CALLS / 10; i++) await q.execute(args); // warm-up
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      const rows = await q.execute(args);
      out[kind].push(performance.now() - t0);
      if (rows.length !== (kind === "one" ? 1 : 51)) throw new Error(`${kind} returned ${rows.length} rows`);
    }
  }
  return out;
}

/** `n` requests one after the other (keep-alive): client-side latencies in ms. */
async function serial(url: string, token: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    out.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`${url} → ${res.status}`);
  }
  return out;
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

  // 2. The PostgreSQL store: the seeded embedded store copied by the operator's command (the
  // daemon is stopped, as the command requires), then VACUUM (ANALYZE) as autovacuum would have
  // done a minute later (statistics for the planner, hint bits and the visibility map set).
  let pg: PgServer | null = null;
  let storeUrl = "";
  let pgData = "";
  let copySeconds = 0;
  let analyzeSeconds = 0;
  if (WITH_PG) {
    pg = await startPostgres();
    cleanup.push(() => pg!.stop());
    pg.psql(`CREATE DATABASE ${STORE_DB} OWNER ${pg.user};`);
    storeUrl = `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${STORE_DB}`;
    pgData = pg.psql("SHOW data_directory;").trim();
    const c0 = performance.now();
    // The URL through the environment, as the operations guide says (not in argv).
    const copy = Bun.spawnSync([...setup.cli, "store", "copy", "--config", setup.configFile, "--data-dir", dir.path], {
      cwd: REPO_ROOT,
      env: { ...process.env, SNAPDB_STORE_URL: storeUrl, SNAPDB_LOG_LEVEL: "warn" },
      stdout: "pipe",
      stderr: "pipe",
    });
    if (copy.exitCode !== 0) throw new Error(`snapdb store copy failed (${copy.exitCode}): ${copy.stderr.toString().slice(-2000)}`);
    copySeconds = (performance.now() - c0) / 1000;
    const a0 = performance.now();
    pg.psql("VACUUM (ANALYZE);", STORE_DB);
    analyzeSeconds = (performance.now() - a0) / 1000;
  }

  // 3. The daemon(s) over the loaded store; a second one over a copy of the data dir (one daemon per data dir).
  const copyOfData = (label: string) => {
    const copy = tempDir(label);
    cleanup.push(() => copy.cleanup());
    cpSync(dir.path, copy.path, { recursive: true });
    return copy.path;
  };
  // Copied before any daemon runs on it: a quiet data dir (the PostgreSQL daemon needs its keys, not its snapdb.db).
  const pgDir = STORE === "both" ? copyOfData("snapdb-bench-api-pg") : dir.path;
  const daemons: Measured[] = [];
  if (values.baseline) {
    const base = await daemon({ dataDir: copyOfData("snapdb-bench-api-base"), binary: values.baseline, env: ENV });
    cleanup.push(() => base.stop());
    daemons.push({ name: "baseline", label: "baseline", d: base });
  }
  if (STORE !== "postgres") {
    const d = await daemon({ dataDir: dir.path, env: ENV });
    cleanup.push(() => d.stop());
    daemons.push(STORE === "both" ? { name: "sqlite", label: "SQLite store", d } : { name: "snapdb", label: "snapdb", d });
  }
  if (WITH_PG) {
    const d = await daemon({ dataDir: pgDir, env: { ...ENV, SNAPDB_STORE_URL: storeUrl } });
    cleanup.push(() => d.stop());
    daemons.push({ name: "postgres", label: "PostgreSQL store", d, pgData });
  }
  const measured = daemons.filter((x) => x.name !== "baseline");

  // Every data dir holds the same keys, so one token (and one cursor) serves all daemons.
  const token = await measured[0]!.d.token(ORG, { scopes: ["backup.read"] });
  let oneId = "";
  let deepPath = "";
  /** The id the deep page starts below (the last one of the page before it), for EXPLAIN. */
  let beforeId = "";
  const walkMs: Record<string, number> = {};
  for (const m of measured) {
    const api = apiOf(m.d, token);
    let page = await api("GET", "/backup-jobs?limit=50");
    let cursor: string | null = page.cursors.next;
    // Pages 2…DEPTH one by one: the cursor then leads to page DEPTH + 1.
    const walk0 = performance.now();
    for (let i = 1; i < DEPTH && cursor; i++) {
      page = await api("GET", `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`);
      cursor = page.cursors.next;
    }
    walkMs[m.name] = (performance.now() - walk0) / Math.max(1, DEPTH - 1);
    if (!cursor) throw new Error("the list ended before the deep page");
    const path = `/backup-jobs?limit=50&cursor=${encodeURIComponent(cursor)}`;
    if (!deepPath) {
      deepPath = path;
      beforeId = page.items.at(-1).id;
      oneId = (await api("GET", "/backup-jobs?limit=50")).items[7].id;
    } else if (page.items.at(-1).id !== beforeId) {
      throw new Error(`the ${m.label} pages differ from the ${measured[0]!.label} ones`);
    }
  }
  for (const { d: x, label } of daemons) {
    const deepPage = await apiOf(x, token)("GET", deepPath);
    if (deepPage.items.length !== 50) throw new Error(`deep page has ${deepPage.items.length} items on ${label}`);
    if (deepPage.items[0].id >= beforeId) throw new Error(`the deep page on ${label} does not start below ${beforeId}`);
  }
  const PATHS = { first: "/backup-jobs?limit=50", deep: deepPath, one: `/backup-jobs/${oneId}` } as const;
  type Kind = keyof typeof PATHS;
  const KINDS = Object.keys(PATHS) as Kind[];
  const LABEL: Record<Kind, string> = {
    first: "first page",
    deep: `page ${DEPTH + 1} (item ${DEPTH * 50 + 1}…, via cursor)`,
    one: "GET /backup-jobs/{id}",
  };

  // 4. wrk: every kind in turn, daemons alternating which goes first, so machine load hits all alike.
  for (const x of daemons) for (const p of Object.values(PATHS)) wrk(x, x.d.baseUrl + p, token); // warm-up
  // One request at a time, alternating too: what a single request costs without the queue.
  const one: Record<string, Record<Kind, number[]>> = {};
  for (const { name } of daemons) one[name] = { first: [], deep: [], one: [] };
  for (const kind of KINDS) {
    for (let half = 0; half < 2; half++) {
      const order = half ? [...daemons].reverse() : daemons;
      for (const x of order) one[x.name]![kind].push(...(await serial(x.d.baseUrl + PATHS[kind], token, SERIAL / 2)));
    }
  }
  const res: Record<string, Record<Kind, WrkResult[]>> = {};
  for (const { name } of daemons) res[name] = { first: [], deep: [], one: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const kind of KINDS) {
      const order = r % 2 ? [...daemons].reverse() : daemons;
      for (const x of order) {
        res[x.name]![kind].push(wrk(x, x.d.baseUrl + PATHS[kind], token));
        console.log(`${x.name} ${kind} run ${r + 1}: ${JSON.stringify(res[x.name]![kind].at(-1))} (load ${load()})`);
      }
    }
  }
  const rss = Object.fromEntries(measured.map((m) => [m.name, memOf(m.d.pid)?.rss]));

  // 5. Where the PostgreSQL store's time goes: the statements the daemon sent (as
  // pg_stat_activity shows each session's last one), prepared and run six times like the
  // daemon's prepared statements (so the plan cache decides generic or custom as it does for
  // the daemon), then once more under EXPLAIN (ANALYZE, BUFFERS).
  const plans: Partial<Record<Kind, { sql: string; plan: string; generic: string }>> = {};
  const pgd = daemons.find((x) => x.pgData);
  if (pg && pgd) {
    const shapes: Record<Kind, RegExp> = {
      first: /^select .* from "backup_jobs" where \(?"backup_jobs"\."org_id" = \$\d+\)? order by .* limit \$\d+$/i,
      deep: /^select .* from "backup_jobs" where \("backup_jobs"\."org_id" = \$\d+ and "backup_jobs"\."id" < \$\d+\) order by .* limit \$\d+$/i,
      one: /^select .* from "backup_jobs" where \("backup_jobs"\."org_id" = \$\d+ and "backup_jobs"\."id" = \$\d+\)$/i,
    };
    const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
    for (const kind of KINDS) {
      // The daemon's periodic work (leader duties, notification polls) may reuse that session
      // before pg_stat_activity is read: then the request is sent again.
      let text: string | undefined;
      let seen: string[] = [];
      for (let attempt = 0; attempt < 20 && !text; attempt++) {
        await apiOf(pgd.d, token)("GET", PATHS[kind]);
        seen = JSON.parse(pg.psql(`SELECT coalesce(json_agg(query ORDER BY state_change DESC), '[]') FROM pg_stat_activity WHERE datname = '${STORE_DB}' AND pid <> pg_backend_pid();`).trim());
        text = seen.find((q) => shapes[kind].test(q.trim()));
      }
      if (!text) throw new Error(`no ${kind} query in pg_stat_activity; seen:\n${seen.join("\n")}`);
      // Each $n gets the value the daemon bound to it, known from the column it is compared with.
      const args: string[] = [];
      for (const [, before, n] of text.matchAll(/("org_id" = |"id" < |"id" = |limit )\$(\d+)/gi)) {
        args[Number(n) - 1] = before === '"org_id" = ' ? lit(ORG) : before === '"id" < ' ? lit(beforeId) : before === '"id" = ' ? lit(oneId) : "51";
      }
      if (args.length !== (text.match(/\$\d+/g) ?? []).length || args.includes(undefined as never)) throw new Error(`unmapped parameters in ${text}`);
      const exec = `EXECUTE bench_q(${args.join(", ")});`;
      const plan = pg.psql(`\\o /dev/null\nPREPARE bench_q AS ${text};\n${Array(6).fill(exec).join("\n")}\n\\o\nEXPLAIN (ANALYZE, BUFFERS) ${exec}`, STORE_DB);
      // The list's plan is a custom one (planned anew at every execution, its Planning Time
      // paid per request); what a generic plan would do instead, for the record.
      const generic =
        kind === "one"
          ? ""
          : pg.psql(`SET plan_cache_mode = force_generic_plan;\n\\o /dev/null\nPREPARE bench_q AS ${text};\n${Array(6).fill(exec).join("\n")}\n\\o\nEXPLAIN (ANALYZE, BUFFERS) ${exec}`, STORE_DB);
      plans[kind] = { sql: text.trim(), plan: plan.trim(), generic: generic.trim() };
    }
  }

  // 6. The store's share of a request: the same reads from this process, daemons idle.
  const calls: Record<string, Record<Kind, number[]>> = {};
  if (STORE !== "postgres") {
    const file = new Database(join(dir.path, "snapdb.db"), { readonly: true });
    calls.sqlite = await storeCalls(liteDrizzle({ client: file, schema: liteSchema }), liteSchema, { beforeId, oneId });
    file.close();
  }
  if (WITH_PG) {
    const client = new SQL({ url: storeUrl, max: 1 });
    calls.postgres = await storeCalls(pgDrizzle({ client, schema: pgSchema }), pgSchema, { beforeId, oneId });
    await client.close();
  }
  const callText = Object.keys(calls).length
    ? `\n\nThe store call alone (the service's query through drizzle from the bench process, ${CALLS} in a row, daemons idle), median (p99) ms: ${KINDS.map(
        (k) =>
          `${LABEL[k]} ${Object.entries(calls)
            .map(([s, c]) => `${s === "sqlite" ? "SQLite" : "PostgreSQL"} ${median(c[k]).toFixed(3)} (${percentile(c[k], 99).toFixed(3)})`)
            .join(", ")}`,
      ).join("; ")}.`
    : "";

  // 7. The section.
  const cols = WITH_PG
    ? "| request | store | one at a time p50 ms | p50 ms | p99 ms | requests/s | daemon CPU ms/request | PostgreSQL CPU ms/request | non-2xx |"
    : "| request | daemon | one at a time p50 ms | p50 ms | p99 ms | requests/s | CPU ms/request | non-2xx |";
  const row = (x: Measured, k: Kind) => {
    const xs = res[x.name]![k];
    const cells = [
      LABEL[k],
      x.label,
      `${median(one[x.name]![k]).toFixed(2)} (p99 ${percentile(one[x.name]![k], 99).toFixed(2)})`,
      mmm(
        xs.map((r) => r.p50),
        (n) => n.toFixed(2),
      ),
      mmm(
        xs.map((r) => r.p99),
        (n) => n.toFixed(2),
      ),
      mmm(
        xs.map((r) => r.rps),
        (n) => n.toFixed(0),
      ),
      mmm(
        xs.map((r) => r.cpuMs),
        (n) => n.toFixed(3),
      ),
      ...(WITH_PG
        ? [
            x.pgData
              ? mmm(
                  xs.map((r) => r.pgCpuMs),
                  (n) => n.toFixed(3),
                )
              : "–",
          ]
        : []),
      String(xs.reduce((s, r) => s + r.non2xx, 0)),
    ];
    return `| ${cells.join(" | ")} |`;
  };
  const rows = KINDS.flatMap((k) => daemons.map((x) => row(x, k)));
  const med = (name: string, k: Kind, f: (x: WrkResult) => number) => median(res[name]![k].map(f));
  const deepVsFirst = measured
    .map((m) => {
      const r = (f: (x: WrkResult) => number) => (med(m.name, "deep", f) / med(m.name, "first", f)).toFixed(2);
      return `Deep / first page (${m.label}, medians): p50 ${r((x) => x.p50)}, p99 ${r((x) => x.p99)}, daemon CPU ${r((x) => x.cpuMs)}. Walking there page by page took ${walkMs[m.name]!.toFixed(1)} ms per page. Daemon RSS after the runs: ${rss[m.name]?.toFixed(0)} MiB.`;
    })
    .join("\n\n");
  const vsBase = values.baseline
    ? `\n\nsnapdb / baseline (medians): ${KINDS.map((k) => `${LABEL[k]}: p99 ${(med("snapdb", k, (x) => x.p99) / med("baseline", k, (x) => x.p99)).toFixed(2)}, CPU per request ${(med("snapdb", k, (x) => x.cpuMs) / med("baseline", k, (x) => x.cpuMs)).toFixed(2)}`).join("; ")}. Baseline: \`${values.baseline}\`.`
    : "";
  const vsSqlite =
    STORE === "both"
      ? `\n\nPostgreSQL store / SQLite store (medians):\n\n| request | one at a time p50 | p50 | p99 | requests/s | daemon CPU per request | daemon + PostgreSQL CPU per request |\n|---|---|---|---|---|---|---|\n${KINDS.map(
          (k) => {
            const q = (f: (x: WrkResult) => number) => (med("postgres", k, f) / med("sqlite", k, f)).toFixed(2);
            return `| ${LABEL[k]} | ${(median(one.postgres![k]) / median(one.sqlite![k])).toFixed(2)} | ${q((x) => x.p50)} | ${q((x) => x.p99)} | ${q((x) => x.rps)} | ${q((x) => x.cpuMs)} | ${(med("postgres", k, (x) => x.cpuMs + x.pgCpuMs) / med("sqlite", k, (x) => x.cpuMs)).toFixed(2)} |`;
          },
        ).join("\n")}`
      : "";
  const TARGET: Record<Kind, number> = { first: 10, deep: 10, one: 5 };
  const targets = pgd
    ? `\n\nTargets on the PostgreSQL store (p99 under wrk, median of the runs): ${KINDS.map((k) => {
        const p99 = med("postgres", k, (x) => x.p99);
        return `${LABEL[k]} ${p99.toFixed(2)} ms vs ≤ ${TARGET[k]} ms (${p99 <= TARGET[k] ? "met" : "missed"})`;
      }).join("; ")}.`
    : "";
  const planText = (k: Kind) => {
    const p = plans[k];
    if (!p) return "";
    const generic = p.generic ? `\n\nThe same with \`plan_cache_mode = force_generic_plan\`:\n\n\`\`\`\n${p.generic}\n\`\`\`` : "";
    return `\n\n${LABEL[k]}: \`${p.sql.length > 160 ? `${p.sql.slice(0, 60)} … ${p.sql.slice(p.sql.indexOf(" from "))}` : p.sql}\`\n\n\`\`\`\n${p.plan}\n\`\`\`${generic}`;
  };
  const pgSetup = pg
    ? ` PostgreSQL ${pg.psql("SHOW server_version;").trim()} on 127.0.0.1 (test/helpers/postgres.ts: initdb defaults, shared_buffers ${pg.psql("SHOW shared_buffers;").trim()}, fsync/synchronous_commit off, which reads do not feel), its own database \`${STORE_DB}\`; the seeded embedded store copied into it by \`snapdb store copy\` in ${copySeconds.toFixed(1)} s, then \`VACUUM (ANALYZE)\` (${analyzeSeconds.toFixed(1)} s; autovacuum would do the same after the load). The daemon's pool holds at most 10 connections. PostgreSQL CPU ms/request is every server process's user + sys time over the requests wrk counted; the server shares the same 2 cores.`
    : "";
  const plansSection = pg
    ? `\n\nThe PostgreSQL store's statements, as the daemon sends them (from pg_stat_activity; select lists shortened here), prepared and executed 6 times, then EXPLAIN (ANALYZE, BUFFERS):${KINDS.map(planText).join("")}`
    : "";
  appendResults(
    WITH_PG ? `API at scale on the PostgreSQL store (bench/api-scale.ts --store ${STORE})` : "API at scale (bench/api-scale.ts)",
    `Store: ${JOBS.toLocaleString("en")} jobs and ${AUDIT.toLocaleString("en")} audit events in one org (bulk-inserted in ${seedSeconds.toFixed(1)} s).${pgSetup} wrk -t2 -c32 for ${SECONDS} s per run, ${RUNS} runs each, kinds in turn${daemons.length > 1 ? ", the two daemons alternating which goes first" : ""}; the daemon (bun src/main.ts serve) and wrk share the 2 cores. CPU ms/request is the daemon's user + sys time over the requests wrk counted. "One at a time": ${SERIAL} requests in a row over one keep-alive connection before the wrk runs, median (p99).

${cols}
|${cols
      .split("|")
      .slice(1, -1)
      .map(() => "---|")
      .join("")}
${rows.join("\n")}

${deepVsFirst}${vsBase}${vsSqlite}${targets}${callText}${plansSection}
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
