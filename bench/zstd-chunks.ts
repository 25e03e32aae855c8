/**
 * Prototype: which way of driving in-process zstd is fastest over a pipe of dump bytes?
 * Compares the runner's compressStage with variants (bigger zlib output chunks, coalesced
 * input). Output sizes are printed so a variant never wins by
 * compressing less.
 *
 *   node_modules/.bin/bun bench/zstd-chunks.ts FILE.dump [runs=3]
 */
import { statSync } from "node:fs";
import { constants, createZstdCompress } from "node:zlib";
import { fromNodeTransform } from "../src/lib/streams.ts";
import { compressStage } from "../src/runner/compression.ts";
import { mmm, sh } from "./lib.ts";

const [file, runsArg] = process.argv.slice(2);
if (!file) throw new Error("usage: bun bench/zstd-chunks.ts FILE.dump [runs]");
const runs = Number(runsArg ?? 3);
const size = statSync(file).size;
const piped = () => Bun.spawn(["cat", file], { stdout: "pipe", stderr: "ignore" }).stdout as ReadableStream<Uint8Array>;

/** Gathers input chunks into blocks of at least `bytes` before passing them on. */
export function coalesce(bytes: number): TransformStream<Uint8Array, Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  const flushTo = (c: TransformStreamDefaultController<Uint8Array>) => {
    if (!held) return;
    c.enqueue(parts.length === 1 ? parts[0]! : Buffer.concat(parts, held));
    parts = [];
    held = 0;
  };
  return new TransformStream({
    transform(chunk, c) {
      parts.push(chunk);
      held += chunk.byteLength;
      if (held >= bytes) flushTo(c);
    },
    flush: flushTo,
  });
}

const zstd = (extra: Record<string, unknown> = {}, params: Record<number, number> = {}) =>
  fromNodeTransform(createZstdCompress({ ...extra, params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: 1, ...params } }));

const variants: [string, () => ReadableStream<Uint8Array>][] = [
  ["compressStage as in src (pipe chunks in, default chunkSize out)", () => piped().pipeThrough(compressStage({ algorithm: "zstd", level: 3 })!)],
  ["chunkSize 256 KiB out", () => piped().pipeThrough(zstd({ chunkSize: 256 * 1024 }))],
  [
    "input coalesced to 1 MiB",
    () =>
      piped()
        .pipeThrough(coalesce(1 << 20))
        .pipeThrough(zstd()),
  ],
  [
    "input coalesced to 1 MiB + chunkSize 256 KiB",
    () =>
      piped()
        .pipeThrough(coalesce(1 << 20))
        .pipeThrough(zstd({ chunkSize: 256 * 1024 })),
  ],
  // ZSTD_c_nbWorkers (libzstd's own thread) is left out: Bun 1.4.4's zlib fails with
  // ERR_STREAM_PUSH_AFTER_EOF when it is set.
];

console.log(`| variant | seconds, median (min–max) | MB/s | output MB | output chunks |\n|---|---|---|---|---|`);
const cli: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  sh(`zstd -3 -q < ${file} > /dev/null`);
  cli.push((performance.now() - t0) / 1000);
}
console.log(
  `| zstd -3 CLI | ${mmm(cli, (n) => n.toFixed(2))} | ${mmm(
    cli.map((s) => size / 1e6 / s),
    (n) => n.toFixed(0),
  )} | ${(Number(sh(`zstd -3 -q < ${file} | wc -c`)) / 1e6).toFixed(1)} | |`,
);
for (const [name, make] of variants) {
  const secs: number[] = [];
  let out = 0;
  let chunks = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    out = 0;
    chunks = 0;
    for await (const c of make()) {
      out += c.byteLength;
      chunks++;
    }
    secs.push((performance.now() - t0) / 1000);
  }
  console.log(
    `| ${name} | ${mmm(secs, (n) => n.toFixed(2))} | ${mmm(
      secs.map((s) => size / 1e6 / s),
      (n) => n.toFixed(0),
    )} | ${(out / 1e6).toFixed(1)} | ${chunks} |`,
  );
}
