/**
 * S3 upload memory: one compressed backup-sized stream (88 MB by default) uploaded to
 * s3rver, each way in a fresh process of its own, sampling that process's RSS:
 * the AWS SDK's lib-storage `Upload` as is, snapdb's `S3Driver.put` (its own multipart loop
 * over reused part buffers, with a full collection per part when the process grew beyond the
 * upload's buffers; lib-storage's Upload until 2026-11-29), and Bun's built-in S3 client
 * (`S3File.writer`) for comparison.
 *
 *   node_modules/.bin/bun bench/s3-upload-memory.ts [--mb 88] [--runs 3]
 *
 * s3rver runs in its own process too, so its memory is not counted.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { appendResults, cleanupStack, median, mmm } from "./lib.ts";

const VARIANTS = ["lib-storage Upload (no collection)", "snapdb S3Driver.put", "Bun S3Client writer"] as const;
const PART = 8 * 1024 * 1024;
const QUEUE = 2;

const { values } = parseArgs({
  options: { mb: { type: "string", default: "88" }, runs: { type: "string", default: "3" }, child: { type: "string" }, endpoint: { type: "string" }, file: { type: "string" } },
});

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;

if (values.child !== undefined) {
  // One upload in this fresh process; prints {before, peak, seconds, cpu} as JSON.
  const variant = VARIANTS[Number(values.child)]!;
  const endpoint = values.endpoint!;
  const creds = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  const { S3Client } = await import("@aws-sdk/client-s3");
  const { Upload } = await import("@aws-sdk/lib-storage");
  const { S3Driver } = await import("../src/storage/s3.ts");
  Bun.gc(true);
  const before = rssMiB();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB())), 20);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const body = Bun.file(values.file!).stream();
  const key = `k-${values.child}-${Date.now()}`;
  if (variant === "lib-storage Upload (no collection)") {
    const client = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials: creds, requestChecksumCalculation: "WHEN_REQUIRED" });
    await new Upload({ client, params: { Bucket: "bench", Key: key, Body: body }, partSize: PART, queueSize: QUEUE }).done();
  } else if (variant === "snapdb S3Driver.put") {
    await new S3Driver({ bucket: "bench", region: "us-east-1", endpoint, forcePathStyle: true, credentials: creds, partSize: PART, queueSize: QUEUE }).put(key, body);
  } else {
    const writer = new Bun.S3Client({ endpoint, bucket: "bench", region: "us-east-1", ...creds }).file(key).writer({ partSize: PART, queueSize: QUEUE });
    for await (const chunk of body) {
      writer.write(chunk);
      await writer.flush();
    }
    await writer.end();
  }
  clearInterval(sampler);
  peak = Math.max(peak, rssMiB());
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ before, peak, seconds: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 }));
  process.exit(0);
}

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-s3mem-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));
try {
  const mb = Number(values.mb);
  const runs = Math.max(3, Math.min(10, Number(values.runs)));
  // Incompressible bytes, like a zstd stream: what the runner hands to the driver.
  const file = join(scratch, "payload.bin");
  writeFileSync(file, randomBytes(mb * 1e6));

  const server = Bun.spawn(
    ["node_modules/.bin/bun", "-e", `const { startS3rver } = await import("./test/helpers/s3rver.ts"); const s = await startS3rver(["bench"]); console.log(s.endpoint); await new Promise(() => {});`],
    { stdout: "pipe", stderr: "inherit" },
  );
  cleanup.push(() => server.kill("SIGKILL"));
  const reader = server.stdout.getReader();
  const endpoint = new TextDecoder().decode((await reader.read()).value).trim();

  const results = new Map<string, { before: number; peak: number; seconds: number; cpu: number }[]>(VARIANTS.map((v) => [v, []]));
  for (let run = 1; run <= runs; run++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const child = Bun.spawnSync(["node_modules/.bin/bun", import.meta.path, "--child", String(i), "--endpoint", endpoint, "--file", file], { stdout: "pipe", stderr: "pipe" });
      if (child.exitCode !== 0) throw new Error(`${VARIANTS[i]} failed: ${child.stderr}`);
      const r = JSON.parse(child.stdout.toString().trim().split("\n").pop()!);
      results.get(VARIANTS[i]!)!.push(r);
      console.log(`[run ${run}/${runs}] ${VARIANTS[i]}: peak ${r.peak.toFixed(0)} MiB (before ${r.before.toFixed(0)}), ${r.seconds.toFixed(2)} s, CPU ${r.cpu.toFixed(2)} s`);
    }
  }
  const rows = VARIANTS.map((v) => {
    const rs = results.get(v)!;
    return `| ${v} | ${mmm(
      rs.map((r) => r.peak - r.before),
      (n) => n.toFixed(0),
    )} | ${mmm(
      rs.map((r) => r.peak),
      (n) => n.toFixed(0),
    )} | ${mmm(
      rs.map((r) => r.seconds),
      (n) => n.toFixed(2),
    )} | ${median(rs.map((r) => r.cpu)).toFixed(2)} |`;
  });
  appendResults(
    "S3 upload memory (bench/s3-upload-memory.ts)",
    `One ${mb} MB stream of random bytes (a compressed backup's worth) uploaded to s3rver with ${PART / 2 ** 20} MiB parts, ${QUEUE} in flight, each way in a fresh process (after its modules loaded and a full collection); RSS sampled every 20 ms. ${runs} runs, median (min–max).

| way | RSS growth, MiB | peak RSS, MiB | seconds | CPU s (median) |
|---|---|---|---|---|
${rows.join("\n")}`,
  );
} finally {
  await cleanup.run();
}
