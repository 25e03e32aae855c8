/**
 * Prototype: the runner's backup pipeline (toolOutput → counting tap → zstd → counting tap →
 * sha256 tap → LocalDriver.put, all from src/) over a dump file, with the zstd stage swapped
 * for candidate fixes, to measure their gain before anyone edits src/:
 *
 *   A  compressStage as in src/runner/compression.ts
 *   B  the same createZstdCompress with `chunkSize: 256 KiB` (a one-line change)
 *   C  1 MiB blocks compressed by Bun.zstdCompress off the JS thread, 2 in flight; each block
 *      is its own zstd frame (a multi-frame file: `zstd -d` and node:zlib read it as one stream)
 *
 *   N  no compression (the `none` policy): what moving the bytes costs
 *   N2 no compression, chunks gathered to 1 MiB before the sha256 tap and the file writes
 *
 *   node_modules/.bin/bun bench/pipeline-proto.ts FILE.dump [runs=3]
 *
 * Each variant's output is decompressed and compared with the input, so none wins by being wrong.
 */
import { statSync } from "node:fs";
import { constants, createZstdCompress } from "node:zlib";
import { toolOutput } from "../src/engines/tool-stream.ts";
import { countingTap, fromNodeTransform, sha256Tap } from "../src/lib/streams.ts";
import { compressStage, decompressStage } from "../src/runner/compression.ts";
import { LocalDriver } from "../src/storage/local.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { cpuOf, mmm, sh } from "./lib.ts";

/** Variant C: whole blocks compressed on Bun's thread pool; order kept, at most `inflight` pending. */
export function blockZstd(level: number, blockSize = 1 << 20, inflight = 2): TransformStream<Uint8Array, Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  const pending: Promise<Uint8Array>[] = [];
  const push = async (c: TransformStreamDefaultController<Uint8Array>, block: Uint8Array) => {
    pending.push(Bun.zstdCompress(block, { level }));
    while (pending.length > inflight) c.enqueue(await pending.shift()!);
  };
  const take = () => {
    const block = parts.length === 1 ? parts[0]! : Buffer.concat(parts, held);
    parts = [];
    held = 0;
    return block;
  };
  return new TransformStream({
    async transform(chunk, c) {
      parts.push(chunk);
      held += chunk.byteLength;
      if (held >= blockSize) await push(c, take());
    },
    async flush(c) {
      if (held) await push(c, take());
      while (pending.length) c.enqueue(await pending.shift()!);
    },
  });
}

/** Gathers chunks into blocks of at least `bytes` (one write and one hash update per block). */
export function gather(bytes: number): TransformStream<Uint8Array, Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  const out = (c: TransformStreamDefaultController<Uint8Array>) => {
    if (held) c.enqueue(Buffer.concat(parts, held));
    parts = [];
    held = 0;
  };
  return new TransformStream({
    transform(chunk, c) {
      parts.push(chunk);
      held += chunk.byteLength;
      if (held >= bytes) out(c);
    },
    flush: out,
  });
}

const variants: Record<string, () => TransformStream<Uint8Array, Uint8Array>> = {
  "A: compressStage (src)": () => compressStage({ algorithm: "zstd", level: 3 })!,
  "B: + chunkSize 256 KiB": () => fromNodeTransform(createZstdCompress({ chunkSize: 256 * 1024, params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: 1 } })),
  "C: 1 MiB blocks, Bun.zstdCompress off-thread": () => blockZstd(3),
  "N: no compression": () => new TransformStream(),
  "N2: no compression, gathered to 1 MiB": () => gather(1 << 20),
};

if (import.meta.main) {
  const [file, runsArg] = process.argv.slice(2);
  if (!file) throw new Error("usage: bun bench/pipeline-proto.ts FILE.dump [runs]");
  const runs = Math.max(1, Math.min(10, Number(runsArg ?? 3)));
  const size = statSync(file).size;
  const want = sh(`sha256sum < ${file}`).split(" ")[0];
  const dir = tempDir("snapdb-bench-proto");
  const driver = new LocalDriver({ root: dir.path });
  try {
    console.log(`${(size / 1e6).toFixed(0)} MB dump, ${runs} runs each, round-robin\n`);
    const res: Record<string, { s: number[]; cpu: number[]; out: number }> = {};
    for (let r = 0; r < runs; r++) {
      for (const [name, make] of Object.entries(variants)) {
        const key = `proto/${r}-${name[0]}.dump.zst`;
        const c0 = cpuOf("self");
        const t0 = performance.now();
        let bytesIn = 0;
        const stream = toolOutput(["cat", file], { toolPath: process.env.PATH ?? "/usr/bin:/bin" })
          .pipeThrough(countingTap((n) => (bytesIn += n)))
          .pipeThrough(make())
          .pipeThrough(countingTap(() => {}))
          .pipeThrough(sha256Tap().stream);
        const put = await driver.put(key, stream);
        const s = (performance.now() - t0) / 1000;
        const c1 = cpuOf("self");
        if (bytesIn !== size) throw new Error(`${name}: read ${bytesIn} of ${size}`);
        const path = `${dir.path}/${key}`;
        const got = sh(name.startsWith("N") ? `sha256sum < ${path}` : `zstd -d -q < ${path} | sha256sum`).split(" ")[0];
        if (got !== want) throw new Error(`${name}: zstd -d gives different bytes`);
        if (r === 0 && !name.startsWith("N")) {
          // The daemon's own reader (verify, restore) must read it too.
          const h = sha256Tap();
          for await (const _ of (Bun.file(path).stream() as ReadableStream<Uint8Array>).pipeThrough(decompressStage("zstd")!).pipeThrough(h.stream));
          if (h.digest() !== want) throw new Error(`${name}: decompressStage gives different bytes`);
        }
        sh(`rm -f ${path}`);
        (res[name] ??= { s: [], cpu: [], out: put.size }).s.push(s);
        res[name]!.cpu.push(c1.self - c0.self + (c1.children - c0.children));
      }
    }
    console.log("| variant | seconds | MB/s of dump | CPU s (process + cat) | stored MB |\n|---|---|---|---|---|");
    for (const [name, r] of Object.entries(res)) {
      console.log(
        `| ${name} | ${mmm(r.s, (n) => n.toFixed(2))} | ${mmm(
          r.s.map((x) => size / 1e6 / x),
          (n) => n.toFixed(0),
        )} | ${mmm(r.cpu, (n) => n.toFixed(2))} | ${(r.out / 1e6).toFixed(1)} |`,
      );
    }
  } finally {
    dir.cleanup();
  }
  process.exit(0);
}
