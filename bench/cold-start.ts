/**
 * Cold start of the compiled binary: from spawn to the first `200` of `/readyz`, 10 times
 * with a fresh data dir (keys generated, store migrated) and 10 times over an existing one;
 * plus the binary's size and `snapdb version` (hyperfine, if installed).
 *
 *   node_modules/.bin/bun bench/cold-start.ts [--runs 10]
 *
 * The binary is dist/snapdb, rebuilt (under flock) when src/ is newer than it.
 */
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureCompiledBinary, freePort } from "../test/helpers/daemon.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { appendResults, cleanupStack, mmm, sh } from "./lib.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" } } });
const RUNS = Math.max(3, Math.min(50, Number(values.runs)));
const cleanup = cleanupStack();

/** Spawn → first 200 from /readyz (polled every 5 ms, at most 30 s), then SIGTERM and wait. */
async function startToReady(binary: string, dataDir: string): Promise<number> {
  const config = join(dataDir, "snapdb.toml");
  writeFileSync(config, "# empty\n");
  const port = await freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([binary, "serve", "--config", config, "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`], {
    env: { ...process.env, SNAPDB_LOG_LEVEL: "warn" },
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
      await Bun.sleep(5);
    }
    throw new Error(`not ready within 30 s (exit ${proc.exitCode})`);
  } finally {
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await proc.exited;
    clearTimeout(timer);
  }
}

try {
  const binary = await ensureCompiledBinary();
  const size = statSync(binary).size;
  const fresh: number[] = [];
  const warm: number[] = [];
  const kept = tempDir("snapdb-bench-cold");
  cleanup.push(() => kept.cleanup());
  await startToReady(binary, kept.path); // creates keys and store for the warm runs
  for (let i = 0; i < RUNS; i++) {
    const dir = tempDir("snapdb-bench-cold");
    try {
      fresh.push(await startToReady(binary, dir.path));
    } finally {
      dir.cleanup();
    }
    warm.push(await startToReady(binary, kept.path));
  }
  let version = "hyperfine not installed";
  try {
    const json = join(kept.path, "hf.json");
    sh(`hyperfine --warmup 2 --runs ${RUNS} -N --export-json ${json} '${binary} version' > /dev/null`);
    const r = JSON.parse(await Bun.file(json).text()).results[0];
    version = `${(r.median * 1000).toFixed(1)} ms median (${(r.min * 1000).toFixed(1)}–${(r.max * 1000).toFixed(1)}), hyperfine -N, ${RUNS} runs`;
  } catch (err) {
    if (!String(err).includes("not found")) version = `hyperfine failed: ${String(err).slice(0, 200)}`;
  }
  appendResults(
    "Cold start and binary size (bench/cold-start.ts)",
    `| measure | value |
|---|---|
| binary size (dist/snapdb) | ${(size / 2 ** 20).toFixed(1)} MiB (${size.toLocaleString("en")} bytes) |
| spawn → /readyz 200, fresh data dir (key generation + migrations), ${RUNS} runs | ${mmm(fresh, (n) => n.toFixed(0))} ms |
| spawn → /readyz 200, existing data dir, ${RUNS} runs | ${mmm(warm, (n) => n.toFixed(0))} ms |
| \`snapdb version\` (process start and exit) | ${version} |

Readiness is polled every 5 ms, so a figure is at most ~5 ms late.
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
