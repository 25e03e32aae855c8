/**
 * Where the time goes: each in-process stage of the backup pipeline (the very functions the
 * runner uses) timed alone over a dump file read through a pipe like pg_dump's stdout, next
 * to the command-line tool that does the same job. Used by backup-throughput.ts; also
 *
 *   node_modules/.bin/bun bench/stages.ts FILE.dump [runs]
 */
import { statSync } from "node:fs";
import { encryptStream } from "../src/crypto/age.ts";
import { countingTap, sha256Tap } from "../src/lib/streams.ts";
import { compressStage } from "../src/runner/compression.ts";
import { mmm, sh } from "./lib.ts";

/** The file's bytes as a pipe from a child process, as the runner reads pg_dump. */
function piped(file: string): ReadableStream<Uint8Array> {
  return Bun.spawn(["cat", file], { stdout: "pipe", stderr: "ignore" }).stdout as ReadableStream<Uint8Array>;
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<{ bytes: number; chunks: number }> {
  let bytes = 0;
  let chunks = 0;
  for await (const c of stream) {
    bytes += c.byteLength;
    chunks++;
  }
  return { bytes, chunks };
}

async function timed(f: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

export async function stageTimings(dumpFile: string, recipient: string, runs = 3): Promise<string> {
  const size = statSync(dumpFile).size;
  const zst = `${dumpFile}.zst`;
  sh(`zstd -3 -q -f ${dumpFile} -o ${zst}`);
  const zsize = statSync(zst).size;
  let chunkInfo = "";
  const cases: [string, number, () => Promise<unknown> | unknown][] = [
    [
      "pipe read only (cat | runner-style reader)",
      size,
      async () => {
        const r = await drain(piped(dumpFile));
        chunkInfo = `${r.chunks} chunks, ${(r.bytes / r.chunks / 1024).toFixed(0)} KiB average`;
      },
    ],
    [
      "pipe read + counting tap + sha256 tap (no compression)",
      size,
      () =>
        drain(
          piped(dumpFile)
            .pipeThrough(countingTap(() => {}))
            .pipeThrough(sha256Tap().stream),
        ),
    ],
    ["zstd 3 in-process (compressStage, node:zlib)", size, () => drain(piped(dumpFile).pipeThrough(compressStage({ algorithm: "zstd", level: 3 })!))],
    ["zstd 3 CLI (zstd -3 < file > /dev/null)", size, () => sh(`zstd -3 -q < ${dumpFile} > /dev/null`)],
    ["age in-process (typage) over the .zst", zsize, async () => drain(await encryptStream(piped(zst), [recipient]))],
    ["age CLI over the .zst", zsize, () => sh(`age -r ${recipient} < ${zst} > /dev/null`)],
    ["sha256 tap over the .zst", zsize, () => drain(piped(zst).pipeThrough(sha256Tap().stream))],
    [
      "whole in-process chain: zstd 3 → age → count → sha256",
      size,
      async () => {
        const s = piped(dumpFile)
          .pipeThrough(countingTap(() => {}))
          .pipeThrough(compressStage({ algorithm: "zstd", level: 3 })!);
        await drain((await encryptStream(s, [recipient])).pipeThrough(countingTap(() => {})).pipeThrough(sha256Tap().stream));
      },
    ],
  ];
  const rows: string[] = [];
  for (const [name, bytes, f] of cases) {
    const secs: number[] = [];
    for (let i = 0; i < runs; i++) secs.push(await timed(f));
    rows.push(
      `| ${name.replaceAll("|", "\\|")} | ${(bytes / 1e6).toFixed(0)} | ${mmm(secs, (n) => n.toFixed(2))} | ${mmm(
        secs.map((s) => bytes / 1e6 / s),
        (n) => n.toFixed(0),
      )} |`,
    );
  }
  sh(`rm -f ${zst}`);
  return `Stages alone, in the benchmark process (one core each; the daemon runs them all on its one JS thread), over a ${(size / 1e6).toFixed(0)} MB dump file read through a pipe (${chunkInfo}):

| stage | input MB | seconds, median (min–max) | MB/s of its input |
|---|---|---|---|
${rows.join("\n")}
`;
}

if (import.meta.main) {
  const [file, runs] = process.argv.slice(2);
  if (!file) throw new Error("usage: bun bench/stages.ts FILE.dump [runs]");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const dir = mkdtempSync("/tmp/snapdb-stages-");
  try {
    sh(`age-keygen -o ${dir}/k 2>/dev/null`);
    console.log(await stageTimings(file, sh(`age-keygen -y ${dir}/k`).trim(), Number(runs ?? 3)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
