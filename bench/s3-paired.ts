/**
 * The S3 path, in pairs. Backups: each round runs the shell pipeline
 * `pg_dump -Fc -Z0 | zstd -3 | aws s3 cp - s3://bench/…` (the AWS CLI streaming from stdin)
 * and a snapdb backup of the same database to an S3 destination (zstd 3), both into the same
 * s3rver, back to back in alternating order. Reports the median of the per-round ratios, the
 * CPU of each side and of s3rver, and snapdb's peak RSS. Then s3rver alone: the stored file
 * uploaded by the CLI from disk, and the same bytes PUT in one request by curl, so what the
 * server itself costs is visible. Restores: each round restores the stored backup into a new
 * database twice, by `aws s3 cp s3://… - | zstd -d | pg_restore` (after `CREATE DATABASE`, with
 * snapdb's pg_restore flags) and by `POST /restores` from the S3 destination, alternating order.
 *
 *   node_modules/.bin/bun bench/s3-paired.ts [--sizes 0.5] [--rounds 7] [--binary source|compiled|PATH]
 *
 * s3rver runs in its own process (its CPU is counted apart from both sides). It does not
 * check signatures: the CLI gets s3rver's key pair in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
 * and `--endpoint-url`. Needs the `aws` command (Debian: apt-get install awscli).
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startPostgres } from "../test/helpers/postgres.ts";
import { apiOf, appendResults, cleanupStack, cpuOf, daemon, load, median, mmm, resetPeak, rssSampler, sh } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";
import { runJob, type JobRun } from "./run-job.ts";

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "0.5" }, rounds: { type: "string", default: "7" }, binary: { type: "string", default: "source" } },
});
const SIZES = values.sizes!.split(",").map(Number);
const ROUNDS = Math.max(3, Math.min(25, Number(values.rounds)));
const GB = 1e9;
const MB = 1e6;

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-bench-s3-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));

/** s3rver in its own process, so its CPU is its own. */
async function s3rverProcess() {
  const proc = Bun.spawn(
    ["node_modules/.bin/bun", "-e", `const { startS3rver } = await import("./test/helpers/s3rver.ts"); const s = await startS3rver(["bench"]); console.log(s.endpoint); await new Promise(() => {});`],
    { stdout: "pipe", stderr: "inherit" },
  );
  cleanup.push(() => proc.kill("SIGKILL"));
  const reader = proc.stdout.getReader();
  const endpoint = new TextDecoder().decode((await reader.read()).value).trim();
  reader.releaseLock();
  return { endpoint, pid: proc.pid };
}

try {
  const awsVersion = sh("aws --version 2>&1").trim();
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  pg.psql("ALTER ROLE snapdb_test CREATEDB;");
  const s3 = await s3rverProcess();
  const d = await daemon({ binary: values.binary, env: { SNAPDB_RUNNER_MAX_CONCURRENT: "1" } });
  cleanup.push(() => d.stop());
  const api = apiOf(d, await d.token("org_bench"));
  const dst = await api("POST", "/storage-destinations", {
    kind: "s3",
    name: "bench-s3",
    bucket: "bench",
    endpoint: s3.endpoint,
    auth: { type: "accessKey", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  const source = await api("POST", "/data-sources", { name: "bench-pg", engine: "postgres", host: pg.host, port: pg.port, database: pg.database });
  await api("PUT", `/data-sources/${source.id}/credentials`, { username: pg.user, password: pg.password });
  const policy = await api("POST", "/backup-policies", {
    name: "s3-zstd",
    scheduleCron: "0 3 1 1 *",
    timezone: "UTC",
    destinationId: dst.id,
    retention: { keepLast: 2 },
    compression: { algorithm: "zstd", level: 3 },
    encryption: { enabled: false, recipients: [] },
    timeoutSeconds: 3600,
    retries: 0,
  });

  const awsEnv = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_DEFAULT_REGION: "us-east-1", PGPASSWORD: pg.password };
  const aws = `aws --endpoint-url ${s3.endpoint} --only-show-errors s3 cp`;
  const dumpCmd = `${pg.binDir}/pg_dump --format=custom --compress=0 --no-password --host=${pg.host} --port=${pg.port} --username=${pg.user} --dbname=${pg.database}`;
  /** A timed shell command: wall seconds, CPU of the tools (this process's reaped children) and of s3rver. */
  const timed = (cmd: string) => {
    const c0 = cpuOf("self");
    const s0 = cpuOf(s3.pid).self;
    const t0 = performance.now();
    sh(`set -o pipefail; ${cmd}`, { env: awsEnv });
    return { seconds: (performance.now() - t0) / 1000, tools: cpuOf("self").children - c0.children, server: cpuOf(s3.pid).self - s0 };
  };

  const flags = "--no-owner --no-privileges --exit-on-error --single-transaction";
  const conn = `--no-password --host=${pg.host} --port=${pg.port} --username=${pg.user}`;
  let restoreN = 0;
  /** One restore through the API, from the POST to its finishedAt, with the daemon's peak RSS and CPU. */
  const snapRestore = async (job: any) => {
    resetPeak(d.pid);
    const sampler = rssSampler(d.pid, 100);
    const c0 = cpuOf(d.pid);
    const s0 = cpuOf(s3.pid).self;
    const t0 = Date.now();
    const r = await api("POST", "/restores", { backupJobId: job.id, targetDatabase: `restore_${++restoreN}` });
    let row = r;
    while (!["succeeded", "failed", "canceled"].includes(row.status)) {
      await Bun.sleep(250);
      row = await api("GET", `/restores/${r.id}`);
    }
    const mem = sampler.stop();
    const c1 = cpuOf(d.pid);
    if (row.status !== "succeeded") throw new Error(`restore ${r.id} ${row.status}: ${JSON.stringify(row.error)}`);
    if (row.progress.bytesWritten !== job.sizeBytes) throw new Error(`restore ${r.id} wrote ${row.progress.bytesWritten} bytes, the dump has ${job.sizeBytes}`);
    return { seconds: (Date.parse(row.finishedAt) - t0) / 1000, self: c1.self - c0.self, tools: c1.children - c0.children, server: cpuOf(s3.pid).self - s0, peakMiB: Math.max(mem.hwm, mem.maxRss) };
  };
  const dropRestored = () => {
    for (const name of pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'restore_%';").trim().split("\n").filter(Boolean)) pg.psql(`DROP DATABASE ${name};`);
  };
  /** Restores of `job` (stored in S3 by snapdb) against the CLI fetching the baseline's object of the same dump. */
  const restoreRounds = async (sizeGb: number, job: any) => {
    const base: ReturnType<typeof timed>[] = [];
    const snap: Awaited<ReturnType<typeof snapRestore>>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ["baseline", "snapdb"] : ["snapdb", "baseline"];
      for (const side of order) {
        if (side === "snapdb") snap.push(await snapRestore(job));
        else {
          const db = `restore_${++restoreN}`;
          base.push(
            timed(
              `${pg.binDir}/psql ${conn} --dbname=postgres -qAtX -c 'CREATE DATABASE ${db}' && ${aws} s3://bench/baseline/${sizeGb}-0.dump.zst - | zstd -d -q | ${pg.binDir}/pg_restore ${flags} ${conn} --dbname=${db}`,
            ),
          );
        }
      }
      dropRestored();
      console.log(
        `[${sizeGb} GB restore round ${r + 1}/${ROUNDS}, ${order[0]} first] baseline ${base[r]!.seconds.toFixed(2)} s, snapdb ${snap[r]!.seconds.toFixed(2)} s, ratio ${(snap[r]!.seconds / base[r]!.seconds).toFixed(2)}, snapdb peak ${snap[r]!.peakMiB.toFixed(0)} MiB (load ${load()})`,
      );
    }
    const ratios = snap.map((s, i) => s.seconds / base[i]!.seconds);
    return `| ${ROUNDS} restore rounds, alternating order | seconds, median (min–max) | CPU s, median: daemon + tools | s3rver CPU s | daemon peak RSS MiB |
|---|---|---|---|---|
| baseline: CREATE DATABASE; aws s3 cp s3://… - \\| zstd -d \\| pg_restore | ${mmm(
      base.map((b) => b.seconds),
      (n) => n.toFixed(2),
    )} | 0.00 + ${median(base.map((b) => b.tools)).toFixed(2)} | ${median(base.map((b) => b.server)).toFixed(2)} | |
| snapdb: POST /restores → finishedAt, from the S3 destination | ${mmm(
      snap.map((s) => s.seconds),
      (n) => n.toFixed(2),
    )} | ${median(snap.map((s) => s.self)).toFixed(2)} + ${median(snap.map((s) => s.tools)).toFixed(2)} | ${median(snap.map((s) => s.server)).toFixed(2)} | ${mmm(
      snap.map((s) => s.peakMiB),
      (n) => n.toFixed(0),
    )} |

Restore ratio snapdb / baseline: median of the per-round ratios **${median(ratios).toFixed(2)}** (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; ${ratios.filter((x) => x <= 1.05).length} of ${ROUNDS} rounds ≤ 1.05), ratio of the medians ${(median(snap.map((s) => s.seconds)) / median(base.map((b) => b.seconds))).toFixed(2)} (target ≤ 1.05). Per round: ${ratios.map((x) => x.toFixed(2)).join(", ")}. Both restore with pg_restore ${flags}; each snapdb restore wrote exactly the dump's bytes (checked).`;
  };

  const sections: string[] = [];
  const state = { rows: 0 };
  for (const sizeGb of SIZES) {
    const genSeconds = growTo(pg, sizeGb * GB, state);
    const dumpBytes = Number(sh(`set -o pipefail; ${dumpCmd} | wc -c`, { env: awsEnv }).trim());
    const base: { seconds: number; tools: number; server: number }[] = [];
    const snap: (JobRun & { server: number })[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ["baseline", "snapdb"] : ["snapdb", "baseline"];
      for (const side of order) {
        if (side === "baseline") base.push(timed(`${dumpCmd} | zstd -3 -q | ${aws} - s3://bench/baseline/${sizeGb}-${r}.dump.zst`));
        else {
          const s0 = cpuOf(s3.pid).self;
          const run = await runJob(d, api, source.id, policy.id);
          snap.push({ ...run, server: cpuOf(s3.pid).self - s0 });
        }
      }
      console.log(
        `[${sizeGb} GB round ${r + 1}/${ROUNDS}, ${order[0]} first] baseline ${base[r]!.seconds.toFixed(2)} s, snapdb ${snap[r]!.seconds.toFixed(2)} s, ratio ${(snap[r]!.seconds / base[r]!.seconds).toFixed(2)}, snapdb peak ${snap[r]!.peakMiB.toFixed(0)} MiB (load ${load()})`,
      );
    }

    // s3rver alone, with the stored bytes: the CLI from a file, and one plain PUT.
    const stored = join(scratch, "stored.dump.zst");
    sh(`set -o pipefail; ${dumpCmd} | zstd -3 -q > ${stored}`, { env: awsEnv });
    const storedBytes = statSync(stored).size;
    const dumpZstd: number[] = [];
    const cliFile: { seconds: number; tools: number; server: number }[] = [];
    const curlPut: { seconds: number; tools: number; server: number }[] = [];
    for (let r = 0; r < 3; r++) {
      dumpZstd.push(timed(`${dumpCmd} | zstd -3 -q > /dev/null`).seconds);
      cliFile.push(timed(`${aws} ${stored} s3://bench/alone/${sizeGb}-${r}.dump.zst`));
      curlPut.push(timed(`curl -sf -o /dev/null -T ${stored} ${s3.endpoint}/bench/alone/put-${sizeGb}-${r}.dump.zst`));
    }
    rmSync(stored, { force: true });

    const restores = await restoreRounds(sizeGb, snap.at(-1)!.row);

    const ratios = snap.map((s, i) => s.seconds / base[i]!.seconds);
    const peaks = snap.map((s) => s.peakMiB);
    const wrongSize = snap.filter((s) => s.sizeBytes !== dumpBytes).length;
    const mbps = (seconds: number[], bytes: number) => `${(bytes / MB / median(seconds)).toFixed(0)} MB/s`;
    sections.push(`### ${sizeGb} GB: database ${(dbBytes(pg) / GB).toFixed(2)} GB on disk, dump ${(dumpBytes / MB).toFixed(0)} MB, stored ${(storedBytes / MB).toFixed(0)} MB; generated in ${genSeconds.toFixed(0)} s

| ${ROUNDS} rounds, alternating order | seconds, median (min–max) | CPU s, median: daemon + tools | s3rver CPU s |
|---|---|---|---|
| baseline: pg_dump -Fc -Z0 \\| zstd -3 \\| aws s3 cp - s3://… | ${mmm(
      base.map((b) => b.seconds),
      (n) => n.toFixed(2),
    )} | 0.00 + ${median(base.map((b) => b.tools)).toFixed(2)} | ${median(base.map((b) => b.server)).toFixed(2)} |
| snapdb: run-now → finishedAt, S3 destination, zstd 3 | ${mmm(
      snap.map((s) => s.seconds),
      (n) => n.toFixed(2),
    )} | ${median(snap.map((s) => s.cpu.self)).toFixed(2)} + ${median(snap.map((s) => s.cpu.children)).toFixed(2)} | ${median(snap.map((s) => s.server)).toFixed(2)} |

Ratio snapdb / baseline: median of the per-round ratios **${median(ratios).toFixed(2)}** (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; ${ratios.filter((x) => x <= 1.05).length} of ${ROUNDS} rounds ≤ 1.05), ratio of the medians ${(median(snap.map((s) => s.seconds)) / median(base.map((b) => b.seconds))).toFixed(2)} (target ≤ 1.05). Per round: ${ratios.map((x) => x.toFixed(2)).join(", ")}.
Daemon peak RSS: ${mmm(peaks, (n) => n.toFixed(0))} MiB (target ≤ 120 MB = 114.4 MiB). Jobs whose sizeBytes differed from \`pg_dump | wc -c\`: ${wrongSize}.

${restores}

Alone, 3 runs each (median): \`pg_dump | zstd -3 > /dev/null\` ${mmm(dumpZstd, (n) => n.toFixed(2))} s (${mbps(dumpZstd, dumpBytes)} of dump); the ${(storedBytes / MB).toFixed(0)} MB file into s3rver by \`aws s3 cp FILE\` ${mmm(
      cliFile.map((x) => x.seconds),
      (n) => n.toFixed(2),
    )} s (${mbps(
      cliFile.map((x) => x.seconds),
      storedBytes,
    )}; CLI CPU ${median(cliFile.map((x) => x.tools)).toFixed(2)} s, s3rver CPU ${median(cliFile.map((x) => x.server)).toFixed(2)} s), by one \`curl -T\` PUT ${mmm(
      curlPut.map((x) => x.seconds),
      (n) => n.toFixed(2),
    )} s (${mbps(
      curlPut.map((x) => x.seconds),
      storedBytes,
    )}; s3rver CPU ${median(curlPut.map((x) => x.server)).toFixed(2)} s).
`);
  }
  appendResults(
    "S3 backup vs shell pipeline with the AWS CLI, paired rounds (bench/s3-paired.ts)",
    `${awsVersion}; s3rver 3.7 in its own Bun process on 127.0.0.1 (the AWS CLI and snapdb write to the same server). snapdb's S3 uploads: 8 MiB parts, 2 in flight; the CLI's defaults (8 MiB parts, up to 10 requests in flight). The CPU columns: snapdb's daemon process + its children (pg_dump, zstd); the baseline's tools (pg_dump, zstd, aws); s3rver's own process.

${sections.join("\n")}`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
