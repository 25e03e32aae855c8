/**
 * Backup throughput and memory: PostgreSQL databases of two sizes, snapdb `run-now` vs the
 * shell pipeline, to a local (managed) destination and to S3 (s3rver), plus stage timings.
 *
 *   node_modules/.bin/bun bench/backup-throughput.ts [--sizes 0.5,2] [--runs 3]
 *
 * Everything runs on 127.0.0.1 in temp dirs that are removed at the end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { startPostgres } from "../test/helpers/postgres.ts";
import { startS3rver } from "../test/helpers/s3rver.ts";
import { apiOf, appendResults, cleanupStack, cpuOf, daemon, load, median, memOf, mmm, sh } from "./lib.ts";
import { runJob } from "./run-job.ts";
import { dbBytes, growTo } from "./pg-data.ts";
import { stageTimings } from "./stages.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "0.5,2" }, runs: { type: "string", default: "3" } } });
const SIZES = values.sizes!.split(",").map(Number);
const RUNS = Math.max(3, Math.min(10, Number(values.runs)));
const GB = 1e9;
const MB = 1e6;

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-bench-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));

try {
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  const s3 = await startS3rver(["bench"]);
  cleanup.push(() => s3.close());
  const d = await daemon({ env: { SNAPDB_RUNNER_MAX_CONCURRENT: "1" } });
  cleanup.push(() => d.stop());
  const api = apiOf(d, await d.token("org_bench"));

  const managed = await api("POST", "/storage-destinations/managed/ensure");
  const s3dst = await api("POST", "/storage-destinations", {
    kind: "s3",
    name: "bench-s3",
    bucket: "bench",
    endpoint: s3.endpoint,
    auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const source = await api("POST", "/data-sources", { name: "bench-pg", engine: "postgres", host: pg.host, port: pg.port, database: pg.database });
  await api("PUT", `/data-sources/${source.id}/credentials`, { username: pg.user, password: pg.password });
  const policy = async (name: string, destinationId: string, algorithm: string, level: number, encrypt: boolean) =>
    (
      await api("POST", "/backup-policies", {
        name,
        scheduleCron: "0 3 1 1 *",
        timezone: "UTC",
        destinationId,
        retention: { keepLast: 2 },
        compression: { algorithm, level },
        encryption: { enabled: encrypt, recipients: [] },
        timeoutSeconds: 3600,
        retries: 0,
      })
    ).id as string;
  const policies = {
    local: await policy("local-zstd", managed.id, "zstd", 3, false),
    localAge: await policy("local-zstd-age", managed.id, "zstd", 3, true),
    localRaw: await policy("local-none", managed.id, "none", 0, false),
    s3: await policy("s3-zstd", s3dst.id, "zstd", 3, false),
  };

  /** CPU seconds of the last run: `self` is snapdb's process (or the bench's, for the SDK upload), `children` the tools (pg_dump, zstd, age). */
  let lastCpu = { self: 0, children: 0 };
  /** One snapdb backup (bench/run-job.ts); its CPU becomes the last run's. */
  async function snapdb(policyId: string) {
    const r = await runJob(d, api, source.id, policyId);
    lastCpu = r.cpu;
    return r;
  }

  const pgEnv = { PGPASSWORD: pg.password };
  const dumpCmd = `${pg.binDir}/pg_dump --format=custom --compress=0 --no-password --host=${pg.host} --port=${pg.port} --username=${pg.user} --dbname=${pg.database}`;
  const identity = join(scratch, "age.key");
  sh(`age-keygen -o ${identity} 2>/dev/null`);
  const recipient = sh(`age-keygen -y ${identity}`).trim();
  const out = join(scratch, "out");
  /** A shell pipeline with pipefail (a failing stage fails the run); returns wall seconds. */
  const shell = (pipeline: string) => {
    const c0 = cpuOf("self");
    const t0 = performance.now();
    sh(`set -o pipefail; ${pipeline}`, { env: pgEnv });
    const seconds = (performance.now() - t0) / 1000;
    const c1 = cpuOf("self");
    lastCpu = { self: 0, children: c1.children - c0.children };
    return seconds;
  };
  const s3client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  cleanup.push(() => s3client.destroy());
  /** The same pipeline to a file, then an upload of the file (same part size and queue as snapdb). */
  async function shellThenUpload() {
    const t0 = performance.now();
    const c0 = cpuOf("self");
    shell(`${dumpCmd} | zstd -3 -q > ${out}`);
    const shellCpu = lastCpu;
    const body = Bun.file(out).stream();
    await new Upload({ client: s3client, params: { Bucket: "bench", Key: `baseline-${Date.now()}.dump.zst`, Body: body as any }, partSize: 8 * 1024 * 1024, queueSize: 2 }).done();
    // The bench process's own CPU also counts s3rver (in-process here); it is the same for snapdb's S3 runs but not counted there.
    lastCpu = { self: cpuOf("self").self - c0.self, children: shellCpu.children };
    return (performance.now() - t0) / 1000;
  }

  type Variant = { name: string; kind: "baseline" | "snapdb" | "stage"; run: () => Promise<number> | number };
  const memBySize: Record<string, number[]> = {};
  const sections: string[] = [];
  const state = { rows: 0 };

  for (const sizeGb of SIZES) {
    const genSeconds = growTo(pg, sizeGb * GB, state);
    const onDisk = dbBytes(pg);
    const dumpBytes = Number(sh(`set -o pipefail; ${dumpCmd} | wc -c`, { env: pgEnv }).trim());
    const peaks: number[] = [];
    const peakBy: Record<string, number[]> = {};
    const jobSecs: Record<string, number[]> = {};
    const stored: Record<string, number> = {};
    const snap = (policyId: string, label: string) => async () => {
      const r = await snapdb(policyId);
      peaks.push(r.peakMiB);
      (peakBy[label] ??= []).push(r.peakMiB);
      (jobSecs[label] ??= []).push(r.jobSeconds);
      stored[label] = r.storedBytes;
      if (r.sizeBytes !== dumpBytes) console.warn(`note: job dumped ${r.sizeBytes} bytes, pg_dump | wc -c gave ${dumpBytes}`);
      return r.seconds;
    };
    const variants: Variant[] = [
      { name: "stage: pg_dump > /dev/null", kind: "stage", run: () => shell(`${dumpCmd} > /dev/null`) },
      { name: "stage: pg_dump | zstd -3 > /dev/null", kind: "stage", run: () => shell(`${dumpCmd} | zstd -3 -q > /dev/null`) },
      { name: "baseline local: pg_dump | zstd -3 > file; sync file", kind: "baseline", run: () => shell(`${dumpCmd} | zstd -3 -q > ${out} && sync ${out}`) },
      { name: "snapdb local, zstd 3", kind: "snapdb", run: snap(policies.local, "local") },
      { name: "baseline local+age: pg_dump | zstd -3 | age -r R > file; sync file", kind: "baseline", run: () => shell(`${dumpCmd} | zstd -3 -q | age -r ${recipient} > ${out} && sync ${out}`) },
      { name: "snapdb local, zstd 3 + age", kind: "snapdb", run: snap(policies.localAge, "localAge") },
      { name: "snapdb local, no compression, no encryption (dump + pipeline + write)", kind: "snapdb", run: snap(policies.localRaw, "localRaw") },
      { name: "baseline S3: pg_dump | zstd -3 > file, then SDK Upload of the file", kind: "baseline", run: shellThenUpload },
      { name: "snapdb S3 (s3rver), zstd 3", kind: "snapdb", run: snap(policies.s3, "s3") },
    ];
    const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const cpus = new Map<string, { self: number; children: number }[]>(variants.map((v) => [v.name, []]));
    // Round-robin, so a burst of load from the rest of the machine hits every variant alike.
    for (let r = 0; r < RUNS; r++) {
      for (const v of variants) {
        const s = await v.run();
        times.get(v.name)!.push(s);
        cpus.get(v.name)!.push(lastCpu);
        console.log(`[${sizeGb} GB run ${r + 1}/${RUNS}] ${v.name}: ${s.toFixed(2)} s (load ${load()})`);
      }
    }
    const mbps = (xs: number[]) => xs.map((s) => dumpBytes / MB / s);
    const med = (name: string) => median(times.get(name)!);
    const ratio = (snap: string, base: string) => (med(snap) / med(base)).toFixed(2);
    const cpuCell = (xs: { self: number; children: number }[]) =>
      `${median(xs.map((x) => x.self)).toFixed(2)} + ${median(xs.map((x) => x.children)).toFixed(2)} = ${median(xs.map((x) => x.self + x.children)).toFixed(2)}`;
    const cpuRatio = (a: string, b: string) => {
      const tot = (n: string) => median(cpus.get(n)!.map((x) => x.self + x.children));
      return (tot(a) / tot(b)).toFixed(2);
    };
    const esc = (s: string) => s.replaceAll("|", "\\|");
    const rows = variants.map((v) => `| ${esc(v.name)} | ${mmm(times.get(v.name)!, (n) => n.toFixed(2))} | ${mmm(mbps(times.get(v.name)!), (n) => n.toFixed(0))} | ${cpuCell(cpus.get(v.name)!)} |`);
    memBySize[String(sizeGb)] = peaks;
    const idle = memOf(d.pid);
    sections.push(`### ${sizeGb} GB target: database ${(onDisk / GB).toFixed(2)} GB on disk, dump ${(dumpBytes / MB).toFixed(0)} MB (pg_dump -Fc -Z0), generated in ${genSeconds.toFixed(0)} s

Stored sizes: zstd 3 ${(stored.local! / MB).toFixed(0)} MB (${(dumpBytes / stored.local!).toFixed(2)}×), zstd 3 + age ${(stored.localAge! / MB).toFixed(0)} MB.

| what | seconds, median (min–max) of ${RUNS} | MB/s of dump bytes | CPU s: snapdb process + tools (median) |
|---|---|---|---|
${rows.join("\n")}

Ratios snapdb / baseline (median seconds): local zstd **${ratio(variants[3]!.name, variants[2]!.name)}** (target ≤ 1.15), local zstd + age **${ratio(variants[5]!.name, variants[4]!.name)}**, S3 **${ratio(variants[8]!.name, variants[7]!.name)}**. CPU seconds snapdb / baseline (less sensitive to the machine's other load): local zstd ${cpuRatio(variants[3]!.name, variants[2]!.name)}, local zstd + age ${cpuRatio(variants[5]!.name, variants[4]!.name)}. The CPU column leaves out the PostgreSQL server; "tools" are the child processes (pg_dump, and zstd/age for the baseline); for the S3 baseline the first figure is the benchmark process (AWS SDK upload plus the in-process s3rver).

Seconds above are wall time from sending \`POST /backup-jobs/run-now\` to the job's \`finishedAt\` (stamped after the file and its directory were fsynced and the row committed; the job is polled every 250 ms); the job's own startedAt→finishedAt: ${Object.entries(
      jobSecs,
    )
      .map(([k, v]) => `${k} ${mmm(v, (n) => n.toFixed(2))} s`)
      .join(", ")}.

Daemon peak RSS during these backups (VmHWM reset before each job, VmRSS sampled every 100 ms), MiB: ${Object.entries(peakBy)
      .map(([k, v]) => `${k} ${mmm(v, (n) => n.toFixed(0))}`)
      .join(", ")}; all ${peaks.length} jobs ${mmm(peaks, (n) => n.toFixed(0))}; RSS when idle after them: ${idle?.rss.toFixed(0)} MiB.
`);
    // Stage timings on a dump file of this size, in-process (what the daemon does per stage).
    shell(`${dumpCmd} > ${out}`);
    sections.push(await stageTimings(out, recipient, RUNS));
    rmSync(out, { force: true });
  }

  // Numeric order (object keys put "2" before "0.5"): growth is read from small to large.
  const sizes = Object.keys(memBySize).sort((a, b) => Number(a) - Number(b));
  const maxes = sizes.map((s) => Math.max(...memBySize[s]!));
  const spread = (Math.max(...maxes) / Math.min(...maxes) - 1) * 100;
  // Sizes in the order given (smallest first by default): does the peak grow with the data?
  const growth = (maxes[maxes.length - 1]! / maxes[0]! - 1) * 100;
  const medians = sizes.map((s) => median(memBySize[s]!));
  sections.push(`### Memory across sizes

Highest daemon peak RSS per size: ${sizes.map((s, i) => `${s} GB → ${maxes[i]!.toFixed(0)} MiB`).join(", ")} (median of all jobs: ${sizes.map((s, i) => `${s} GB ${medians[i]!.toFixed(0)} MiB`).join(", ")}); growth from ${sizes[0]} to ${sizes[sizes.length - 1]} GB ${growth >= 0 ? "+" : ""}${growth.toFixed(1)} % (target: no growth beyond +10 %), spread ${spread.toFixed(1)} %, max ${Math.max(...maxes).toFixed(0)} MiB (target ≤ 200 MB = 190.7 MiB).
`);
  appendResults("Backup throughput and memory (bench/backup-throughput.ts)", sections.join("\n"));
} finally {
  await cleanup.run();
}
process.exit(0);
