/**
 * Base backup throughput (physical policies), in paired rounds: each round runs the shell
 * pipeline `pg_basebackup -Ft -D - -X none --checkpoint=fast | zstd -3 > file; sync file`
 * and a snapdb base backup of the same cluster (physical policy, fastCheckpoint, zstd 3, to
 * the local managed destination) back to back, order alternating; without age (what the
 * baseline does) and with age (the default). The daemon archives the cluster's WAL all along
 * (pg_receivewal), as it does in use. Reports seconds, MB/s of tar, CPU and the daemon's peak RSS.
 *
 *   node_modules/.bin/bun bench/pitr-basebackup.ts [--sizes 0.5] [--rounds 5]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startPostgres } from "../test/helpers/postgres.ts";
import { appendResults, cleanupStack, cpuOf, daemonWithPgSource, load, median, mmm, sh } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";
import { runJob, type JobRun } from "./run-job.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "0.5" }, rounds: { type: "string", default: "5" } } });
const SIZES = values.sizes!.split(",").map(Number);
const ROUNDS = Math.max(3, Math.min(25, Number(values.rounds)));
const GB = 1e9;
const MB = 1e6;

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-bench-pitr-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));

try {
  const pg = await startPostgres({ replication: true });
  cleanup.push(() => pg.stop());
  const { d, api, managed, source } = await daemonWithPgSource(pg, cleanup);
  const policy = (encrypted: boolean) =>
    api("POST", "/backup-policies", {
      name: `physical-${encrypted ? "age" : "plain"}`,
      method: "physical",
      fastCheckpoint: true,
      scheduleCron: "0 3 1 1 *",
      timezone: "UTC",
      destinationId: managed.id,
      retention: { keepLast: 2 },
      compression: { algorithm: "zstd", level: 3 },
      encryption: { enabled: encrypted, recipients: [] },
      timeoutSeconds: 3600,
      retries: 0,
    });
  // One physical policy per source: the plain one first, the age one after it is detached.
  const plain = await policy(false);
  const withAge = await policy(true);

  const out = join(scratch, "out.tar.zst");
  const tool = `${pg.binDir}/pg_basebackup --pgdata=- --format=tar --wal-method=none --checkpoint=fast --no-password --host=${pg.host} --port=${pg.port} --username=${pg.user}`;
  const baseline = () => {
    const c0 = cpuOf("self");
    const t0 = performance.now();
    sh(`set -o pipefail; ${tool} | zstd -3 -q > ${out} && sync ${out}`, { env: { PGPASSWORD: pg.password } });
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, tools: cpuOf("self").children - c0.children };
  };

  const sections: string[] = [];
  const state = { rows: 0 };
  for (const sizeGb of SIZES) {
    const genSeconds = growTo(pg, sizeGb * GB, state);
    const tarBytes = Number(sh(`set -o pipefail; ${tool} | wc -c`, { env: { PGPASSWORD: pg.password } }).trim());
    const rows: string[] = [];
    for (const [label, pol] of [
      ["zstd 3", plain],
      ["zstd 3 + age", withAge],
    ] as const) {
      const att = await api("POST", "/attachments", { dataSourceId: source.id, policyId: pol.id, enabled: true });
      const base: { seconds: number; tools: number }[] = [];
      const snap: JobRun[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? ["baseline", "snapdb"] : ["snapdb", "baseline"];
        for (const side of order) {
          if (side === "baseline") base.push(baseline());
          else snap.push(await runJob(d, api, source.id, pol.id));
        }
        console.log(`[${sizeGb} GB ${label} ${r + 1}/${ROUNDS}] baseline ${base[r]!.seconds.toFixed(2)} s, snapdb ${snap[r]!.seconds.toFixed(2)} s (load ${load()})`);
      }
      await api("DELETE", `/attachments/${att.id}`);
      const ratios = snap.map((s, i) => s.seconds / base[i]!.seconds);
      rows.push(
        `| baseline: pg_basebackup -Ft -D - -X none \\| zstd -3 > file; sync | ${mmm(
          base.map((b) => b.seconds),
          (n) => n.toFixed(2),
        )} | ${(tarBytes / MB / median(base.map((b) => b.seconds))).toFixed(0)} | 0.00 + ${median(base.map((b) => b.tools)).toFixed(2)} | |`,
        `| snapdb base backup, ${label} (run-now → finishedAt) | ${mmm(
          snap.map((s) => s.seconds),
          (n) => n.toFixed(2),
        )} | ${(tarBytes / MB / median(snap.map((s) => s.seconds))).toFixed(0)} | ${median(snap.map((s) => s.cpu.self)).toFixed(2)} + ${median(snap.map((s) => s.cpu.children)).toFixed(2)} | ratio ${median(ratios).toFixed(2)} (${ratios.map((x) => x.toFixed(2)).join(", ")}); peak RSS ${mmm(
          snap.map((s) => s.peakMiB),
          (n) => n.toFixed(0),
        )} MiB; stored ${(snap[0]!.storedBytes / MB).toFixed(0)} MB |`,
      );
      rmSync(out, { force: true });
    }
    sections.push(`### ${sizeGb} GB: cluster ${(dbBytes(pg) / GB).toFixed(2)} GB (appdb), tar ${(tarBytes / MB).toFixed(0)} MB; generated in ${genSeconds.toFixed(0)} s

| ${ROUNDS} rounds each, alternating order | seconds, median (min–max) | MB/s of tar | CPU s, median: daemon + tools | snapdb / baseline, median of per-round ratios |
|---|---|---|---|---|
${rows.join("\n")}
`);
  }
  appendResults(
    "Base backup vs shell pipeline, paired rounds (bench/pitr-basebackup.ts)",
    `${sections.join("\n")}
Seconds are wall time from \`POST /backup-jobs/run-now\` to the job's \`finishedAt\`: they include creating or checking the replication slot and reading the server's WAL position before and after pg_basebackup (two short SQL connections), which the baseline does not do. The WAL archiver streamed the cluster's WAL throughout.`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
