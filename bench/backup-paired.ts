/**
 * The backup target alone, measured in pairs: each round runs the shell pipeline
 * `pg_dump -Fc -Z0 | zstd -3 > file; sync file` and a snapdb backup of the same database to
 * the local managed destination (zstd 3) back to back, in alternating order, so a burst of
 * load from the rest of the machine or the order itself weighs on both alike. Reports the
 * median of the per-round ratios next to the ratio of the medians, the CPU of each side
 * and snapdb's peak RSS, at each size. backup-throughput.ts covers the other variants.
 *
 *   node_modules/.bin/bun bench/backup-paired.ts [--sizes 0.5,2] [--rounds 9]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startPostgres } from "../test/helpers/postgres.ts";
import { appendResults, cleanupStack, cpuOf, daemonWithPgSource, load, median, mmm, sh } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";
import { runJob, type JobRun } from "./run-job.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "0.5,2" }, rounds: { type: "string", default: "9" } } });
const SIZES = values.sizes!.split(",").map(Number);
const ROUNDS = Math.max(3, Math.min(25, Number(values.rounds)));
const GB = 1e9;
const MB = 1e6;

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-bench-paired-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));

try {
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  const { d, api, managed, source } = await daemonWithPgSource(pg, cleanup);
  const policy = await api("POST", "/backup-policies", {
    name: "local-zstd",
    scheduleCron: "0 3 1 1 *",
    timezone: "UTC",
    destinationId: managed.id,
    retention: { keepLast: 2 },
    compression: { algorithm: "zstd", level: 3 },
    encryption: { enabled: false, recipients: [] },
    timeoutSeconds: 3600,
    retries: 0,
  });

  const out = join(scratch, "out");
  const dumpCmd = `${pg.binDir}/pg_dump --format=custom --compress=0 --no-password --host=${pg.host} --port=${pg.port} --username=${pg.user} --dbname=${pg.database}`;
  const baseline = () => {
    const c0 = cpuOf("self");
    const t0 = performance.now();
    sh(`set -o pipefail; ${dumpCmd} | zstd -3 -q > ${out} && sync ${out}`, { env: { PGPASSWORD: pg.password } });
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, tools: cpuOf("self").children - c0.children };
  };

  const sections: string[] = [];
  const state = { rows: 0 };
  const peakBySize: number[] = [];
  for (const sizeGb of SIZES) {
    const genSeconds = growTo(pg, sizeGb * GB, state);
    const dumpBytes = Number(sh(`set -o pipefail; ${dumpCmd} | wc -c`, { env: { PGPASSWORD: pg.password } }).trim());
    const base: { seconds: number; tools: number }[] = [];
    const snap: JobRun[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which side goes first.
      const order = r % 2 === 0 ? ["baseline", "snapdb"] : ["snapdb", "baseline"];
      for (const side of order) {
        if (side === "baseline") base.push(baseline());
        else snap.push(await runJob(d, api, source.id, policy.id));
      }
      const ratio = snap[r]!.seconds / base[r]!.seconds;
      console.log(
        `[${sizeGb} GB round ${r + 1}/${ROUNDS}, ${order[0]} first] baseline ${base[r]!.seconds.toFixed(2)} s, snapdb ${snap[r]!.seconds.toFixed(2)} s, ratio ${ratio.toFixed(2)} (load ${load()})`,
      );
    }
    rmSync(out, { force: true });
    const ratios = snap.map((s, i) => s.seconds / base[i]!.seconds);
    const peaks = snap.map((s) => s.peakMiB);
    peakBySize.push(Math.max(...peaks));
    const wrongSize = snap.filter((s) => s.sizeBytes !== dumpBytes).length;
    sections.push(`### ${sizeGb} GB: database ${(dbBytes(pg) / GB).toFixed(2)} GB on disk, dump ${(dumpBytes / MB).toFixed(0)} MB, stored ${(snap[0]!.storedBytes / MB).toFixed(0)} MB; generated in ${genSeconds.toFixed(0)} s

| ${ROUNDS} rounds, alternating order | seconds, median (min–max) | CPU s, median: daemon + tools |
|---|---|---|
| baseline: pg_dump -Fc -Z0 \\| zstd -3 > file; sync file | ${mmm(
      base.map((b) => b.seconds),
      (n) => n.toFixed(2),
    )} | 0.00 + ${median(base.map((b) => b.tools)).toFixed(2)} |
| snapdb: run-now → finishedAt, local managed, zstd 3 | ${mmm(
      snap.map((s) => s.seconds),
      (n) => n.toFixed(2),
    )} | ${median(snap.map((s) => s.cpu.self)).toFixed(2)} + ${median(snap.map((s) => s.cpu.children)).toFixed(2)} |

Ratio snapdb / baseline: median of the per-round ratios **${median(ratios).toFixed(2)}** (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; ${ratios.filter((x) => x <= 1.15).length} of ${ROUNDS} rounds ≤ 1.15), ratio of the medians ${(median(snap.map((s) => s.seconds)) / median(base.map((b) => b.seconds))).toFixed(2)} (target ≤ 1.15). Per round: ${ratios.map((x) => x.toFixed(2)).join(", ")}.
Daemon peak RSS: ${mmm(peaks, (n) => n.toFixed(0))} MiB. Jobs whose sizeBytes differed from \`pg_dump | wc -c\`: ${wrongSize}.
`);
  }
  const growth = (peakBySize[peakBySize.length - 1]! / peakBySize[0]! - 1) * 100;
  sections.push(`Highest daemon peak RSS per size: ${SIZES.map((s, i) => `${s} GB ${peakBySize[i]!.toFixed(0)} MiB`).join(", ")}; growth from the smallest to the largest ${growth >= 0 ? "+" : ""}${growth.toFixed(1)} % (target: does not grow; ≤ 200 MB = 190.7 MiB).
`);
  appendResults("Backup vs shell pipeline, paired rounds (bench/backup-paired.ts)", sections.join("\n"));
} finally {
  await cleanup.run();
}
process.exit(0);
