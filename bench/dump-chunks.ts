/**
 * Prototype: what pg_dump's stdout looks like to the runner (chunk count and size) and what
 * the no-compression pipeline (taps + sha256 + LocalDriver.put, from src/) costs in CPU with
 * those chunks as they come vs gathered to 1 MiB first, and the same for zstd 3 (compressStage)
 * and for the 1 MiB off-thread block compressor of pipeline-proto.ts.
 *
 *   node_modules/.bin/bun bench/dump-chunks.ts [sizeGB=0.25] [runs=3]
 */
import { toolOutput } from "../src/engines/tool-stream.ts";
import { countingTap, sha256Tap } from "../src/lib/streams.ts";
import { compressStage } from "../src/runner/compression.ts";
import { LocalDriver } from "../src/storage/local.ts";
import { startPostgres } from "../test/helpers/postgres.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { cpuOf, mmm } from "./lib.ts";
import { growTo } from "./pg-data.ts";
import { blockZstd, gather } from "./pipeline-proto.ts";

const size = Number(process.argv[2] ?? 0.25);
const runs = Math.max(1, Math.min(10, Number(process.argv[3] ?? 3)));
const pg = await startPostgres();
const dir = tempDir("snapdb-bench-chunks");
try {
  growTo(pg, size * 1e9, { rows: 0 });
  const dump = () =>
    toolOutput([`${pg.binDir}/pg_dump`, "--format=custom", "--compress=0", "--no-password", `--host=${pg.host}`, `--port=${pg.port}`, `--username=${pg.user}`, `--dbname=${pg.database}`], {
      toolPath: process.env.PATH ?? "/usr/bin:/bin",
      secretEnv: { PGPASSWORD: pg.password },
    });
  let chunks = 0;
  let bytes = 0;
  for await (const c of dump()) {
    chunks++;
    bytes += c.byteLength;
  }
  console.log(`pg_dump stdout as the runner reads it: ${(bytes / 1e6).toFixed(0)} MB in ${chunks} chunks, ${(bytes / chunks / 1024).toFixed(1)} KiB average\n`);
  const driver = new LocalDriver({ root: dir.path });
  const variants: Record<string, (s: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>> = {
    "none, chunks as they come (src)": (s) => s,
    "none, gathered to 1 MiB after the dump": (s) => s.pipeThrough(gather(1 << 20)),
    "zstd 3 compressStage, as they come (src)": (s) => s.pipeThrough(compressStage({ algorithm: "zstd", level: 3 })!),
    "zstd 3 compressStage, gathered to 1 MiB first": (s) => s.pipeThrough(gather(1 << 20)).pipeThrough(compressStage({ algorithm: "zstd", level: 3 })!),
    "zstd 3, 1 MiB blocks off-thread (blockZstd)": (s) => s.pipeThrough(blockZstd(3)),
  };
  const res: Record<string, { s: number[]; cpu: number[] }> = {};
  for (let r = 0; r < runs; r++) {
    for (const [name, f] of Object.entries(variants)) {
      const c0 = cpuOf("self");
      const t0 = performance.now();
      const stream = f(dump().pipeThrough(countingTap(() => {})))
        .pipeThrough(countingTap(() => {}))
        .pipeThrough(sha256Tap().stream);
      await driver.put(`x/${r}-${name.length}.bin`, stream);
      const c1 = cpuOf("self");
      (res[name] ??= { s: [], cpu: [] }).s.push((performance.now() - t0) / 1000);
      // Our own CPU only (the pipeline); pg_dump is a child reaped into `children`.
      res[name]!.cpu.push(c1.self - c0.self);
    }
  }
  console.log(`| pipeline (pg_dump → … → LocalDriver.put) | seconds | MB/s | CPU s of the pipeline process |\n|---|---|---|---|`);
  for (const [name, r] of Object.entries(res))
    console.log(
      `| ${name} | ${mmm(r.s, (n) => n.toFixed(2))} | ${mmm(
        r.s.map((x) => bytes / 1e6 / x),
        (n) => n.toFixed(0),
      )} | ${mmm(r.cpu, (n) => n.toFixed(2))} |`,
    );
} finally {
  dir.cleanup();
  await pg.stop();
}
process.exit(0);
