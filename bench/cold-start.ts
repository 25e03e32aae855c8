/**
 * Cold start of the compiled binary: from spawn to the first `200` of `/readyz` with a fresh
 * data dir (keys generated, store migrated), an existing empty one, and an existing one
 * holding 100,000 jobs and 10,000 audit events; plus the binary's size and `snapdb version`
 * / `snapdb --help` (hyperfine, if installed).
 *
 *   node_modules/.bin/bun bench/cold-start.ts [--runs 10] [--jobs 100000] [--baseline PATH]
 *
 * The binary is dist/snapdb, rebuilt (under flock) when src/ is newer than it. `--baseline`
 * names another compiled snapdb (e.g. one built from an older commit): every measure is then
 * taken of both, alternating, under the same machine load.
 */
import { cpSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/db/client.ts";
import { ensureCompiledBinary, freePort } from "../test/helpers/daemon.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { apiOf, appendResults, cleanupStack, daemon, mmm, sh } from "./lib.ts";
import { seedJobs } from "./seed-jobs.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" }, jobs: { type: "string", default: "100000" }, baseline: { type: "string" } } });
const RUNS = Math.max(3, Math.min(50, Number(values.runs)));
const JOBS = Math.max(0, Math.min(1_000_000, Number(values.jobs)));
const cleanup = cleanupStack();

/** Spawn → first 200 from /readyz (polled every 2 ms, at most 30 s), then SIGTERM and wait. */
async function startToReady(binary: string, dataDir: string): Promise<number> {
  const config = join(dataDir, "snapdb.toml");
  writeFileSync(config, "# empty\n");
  const port = await freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([binary, "serve", "--config", config, "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`], {
    env: { ...process.env, SNAPDB_LOG_LEVEL: "warn", SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  cleanup.push(() => proc.kill("SIGKILL"));
  try {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && proc.exitCode === null) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
      if (res?.status === 200) return performance.now() - t0;
      await Bun.sleep(2);
    }
    throw new Error(`not ready within 30 s (exit ${proc.exitCode})`);
  } finally {
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await proc.exited;
    clearTimeout(timer);
  }
}

/** A data dir made by the daemon, then loaded with `JOBS` jobs (as bench/api-scale.ts does). */
async function loadedDataDir(): Promise<string> {
  const dir = tempDir("snapdb-bench-cold-loaded");
  cleanup.push(() => dir.cleanup());
  const setup = await daemon({ dataDir: dir.path, env: { SNAPDB_ALLOWED_SQLITE_ROOTS: "/var/lib/app" } });
  cleanup.push(() => setup.stop());
  const api = apiOf(setup, await setup.token("org_bench"));
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
  await seedJobs(store.db, { org: "org_bench", jobs: JOBS, audit: Math.floor(JOBS / 10), sourceIds: sources, policyId: pol.id, destinationId: managed.id });
  store.close();
  return dir.path;
}

interface Side {
  name: string;
  binary: string;
  fresh: number[];
  empty: number[];
  loaded: number[];
  emptyDir: string;
  loadedDir: string;
}

function hyperfine(binary: string, args: string, dir: string): string {
  try {
    const json = join(dir, "hf.json");
    sh(`hyperfine --warmup 2 --runs ${Math.max(RUNS, 20)} -N --export-json ${json} '${binary} ${args}' > /dev/null`);
    const r = JSON.parse(readFileSync(json, "utf8")).results[0];
    return `${(r.median * 1000).toFixed(1)} ms (${(r.min * 1000).toFixed(1)}–${(r.max * 1000).toFixed(1)})`;
  } catch (err) {
    return String(err).includes("not found") ? "hyperfine not installed" : `hyperfine failed: ${String(err).slice(0, 200)}`;
  }
}

try {
  const binary = await ensureCompiledBinary();
  const loaded = await loadedDataDir();
  const sides: Side[] = [];
  for (const [name, bin] of [["snapdb", binary], ...(values.baseline ? [["baseline", values.baseline]] : [])] as [string, string][]) {
    const emptyDir = tempDir("snapdb-bench-cold");
    cleanup.push(() => emptyDir.cleanup());
    await startToReady(bin, emptyDir.path); // creates keys and store for the "existing" runs
    const loadedCopy = tempDir("snapdb-bench-cold-copy");
    cleanup.push(() => loadedCopy.cleanup());
    cpSync(loaded, loadedCopy.path, { recursive: true });
    await startToReady(bin, loadedCopy.path); // the page cache holds the store, as on a restart
    sides.push({ name, binary: bin, fresh: [], empty: [], loaded: [], emptyDir: emptyDir.path, loadedDir: loadedCopy.path });
  }
  for (let i = 0; i < RUNS; i++) {
    for (const s of i % 2 ? [...sides].reverse() : sides) {
      const dir = tempDir("snapdb-bench-cold");
      try {
        s.fresh.push(await startToReady(s.binary, dir.path));
      } finally {
        dir.cleanup();
      }
      s.empty.push(await startToReady(s.binary, s.emptyDir));
      s.loaded.push(await startToReady(s.binary, s.loadedDir));
    }
  }
  const rows = sides.flatMap((s) => {
    const tag = sides.length > 1 ? ` — ${s.name}` : "";
    return [
      `| binary size${tag} | ${(statSync(s.binary).size / 2 ** 20).toFixed(1)} MiB (${statSync(s.binary).size.toLocaleString("en")} bytes) |`,
      `| spawn → /readyz 200, fresh data dir (key generation + migrations)${tag} | ${mmm(s.fresh, (n) => n.toFixed(0))} ms |`,
      `| spawn → /readyz 200, existing empty data dir${tag} | ${mmm(s.empty, (n) => n.toFixed(0))} ms |`,
      `| spawn → /readyz 200, existing data dir with ${JOBS.toLocaleString("en")} jobs${tag} | ${mmm(s.loaded, (n) => n.toFixed(0))} ms |`,
      `| \`snapdb version\`${tag} | ${hyperfine(s.binary, "version", s.emptyDir)} |`,
      `| \`snapdb --help\`${tag} | ${hyperfine(s.binary, "--help", s.emptyDir)} |`,
    ];
  });
  appendResults(
    "Cold start and binary size (bench/cold-start.ts)",
    `| measure | median (min–max) |
|---|---|
${rows.join("\n")}

${RUNS} runs of each start${sides.length > 1 ? `, the binaries alternating (baseline: \`${values.baseline}\`)` : ""}; \`version\` and \`--help\` by hyperfine -N (≥ 20 runs after 2 warm-ups). Readiness is polled every 2 ms, so a figure is at most ~2 ms late.
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
