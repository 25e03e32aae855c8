import { afterAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { decryptStream, encryptStream, isAgeRecipient, newAgeIdentity } from "../../src/crypto/age.ts";
import { countingTap, readAll, sha256Tap } from "../../src/lib/streams.ts";
import { compressStage, decompressStage, type Compression } from "../../src/runner/compression.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-stages");
afterAll(() => dir.cleanup());

/** A stream of `total` bytes, semi-compressible, in chunks of 64 KiB. */
function source(total: number, seed = 1): { stream: ReadableStream<Uint8Array>; sha256: string } {
  const hash = createHash("sha256");
  const chunks: Uint8Array[] = [];
  let left = total;
  let i = seed;
  while (left > 0) {
    const n = Math.min(65536, left);
    const chunk = Buffer.alloc(n);
    for (let j = 0; j < n; j += 16) chunk.write(`row ${i++} value\n`.padEnd(16).slice(0, Math.min(16, n - j)), j);
    randomBytes(8).copy(chunk, 0);
    hash.update(chunk);
    chunks.push(chunk);
    left -= n;
  }
  let k = 0;
  return {
    stream: new ReadableStream({
      pull(c) {
        if (k < chunks.length) c.enqueue(chunks[k++]);
        else c.close();
      },
    }),
    sha256: hash.digest("hex"),
  };
}

const through = (s: ReadableStream<Uint8Array>, t: TransformStream<Uint8Array, Uint8Array> | null) => (t ? s.pipeThrough(t) : s);

function run(argv: string[], input: Buffer): Buffer {
  const r = Bun.spawnSync(argv, { stdin: input });
  if (r.exitCode !== 0) throw new Error(`${argv[0]} failed: ${r.stderr}`);
  return r.stdout;
}

describe("pipeline stages", () => {
  for (const c of [
    { algorithm: "zstd", level: 3 },
    { algorithm: "zstd", level: 1 },
    { algorithm: "gzip", level: 6 },
    { algorithm: "none", level: 0 },
  ] as Compression[]) {
    test(`${c.algorithm} ${c.level}: round trip, and the standard tool reads it`, async () => {
      const src = source(3 * 1024 * 1024 + 17);
      const packed = await readAll(through(src.stream, compressStage(c)));
      const back = await readAll(through(new Blob([packed]).stream(), decompressStage(c.algorithm)));
      expect(createHash("sha256").update(back).digest("hex")).toBe(src.sha256);
      if (c.algorithm !== "none") expect(packed.length).toBeLessThan(back.length);
      const cli = c.algorithm === "zstd" ? ["zstd", "-d", "-c"] : c.algorithm === "gzip" ? ["gzip", "-d", "-c"] : null;
      if (cli) expect(createHash("sha256").update(run(cli, packed)).digest("hex")).toBe(src.sha256);
    });
  }

  test("zstd output of the CLI decompresses in-process", async () => {
    const src = Buffer.from("hello from the zstd command line\n".repeat(1000));
    const packed = run(["zstd", "-3", "-c"], src);
    const back = await readAll(through(new Blob([packed]).stream(), decompressStage("zstd")));
    expect(back.equals(src)).toBe(true);
  });

  test("corrupt compressed input fails the stream instead of yielding garbage", async () => {
    const packed = await readAll(through(source(256 * 1024).stream, compressStage({ algorithm: "zstd", level: 3 })));
    packed[Math.floor(packed.length / 2)]! ^= 0xff;
    await expect(readAll(through(new Blob([packed]).stream(), decompressStage("zstd")))).rejects.toThrow();
  });

  test("age: round trip with several recipients; `age -d` decrypts; a wrong identity fails", async () => {
    const a = await newAgeIdentity();
    const b = await newAgeIdentity();
    expect(isAgeRecipient(a.recipient)).toBe(true);
    expect(isAgeRecipient("age1notakey")).toBe(false);
    const src = source(1024 * 1024 + 5);
    const sealed = await readAll(await encryptStream(src.stream, [a.recipient, b.recipient]));
    for (const who of [a, b]) {
      const back = await readAll(await decryptStream(new Blob([sealed]).stream(), [who.identity]));
      expect(createHash("sha256").update(back).digest("hex")).toBe(src.sha256);
    }
    const keyFile = join(dir.path, "key.txt");
    writeFileSync(keyFile, `${b.identity}\n`);
    expect(
      createHash("sha256")
        .update(run(["age", "-d", "-i", keyFile], sealed))
        .digest("hex"),
    ).toBe(src.sha256);
    const stranger = await newAgeIdentity();
    await expect(decryptStream(new Blob([sealed]).stream(), [stranger.identity]).then(readAll)).rejects.toThrow();
  });

  test("age: a file from the age CLI decrypts in-process", async () => {
    const me = await newAgeIdentity();
    const sealed = run(["age", "-r", me.recipient], Buffer.from("made by age(1)\n"));
    const back = await readAll(await decryptStream(new Blob([sealed]).stream(), [me.identity]));
    expect(back.toString()).toBe("made by age(1)\n");
  });

  test("taps count and hash what passes", async () => {
    const src = source(777_777);
    let n = 0;
    const hash = sha256Tap();
    const out = await readAll(src.stream.pipeThrough(countingTap((b) => (n += b))).pipeThrough(hash.stream));
    expect(n).toBe(777_777);
    expect(out.length).toBe(777_777);
    expect(hash.digest()).toBe(src.sha256);
  });

  test("backpressure: a slow consumer keeps compression from running ahead", async () => {
    let produced = 0;
    const total = 64 * 1024 * 1024;
    const chunk = randomBytes(65536); // incompressible, so output ≈ input
    const input = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          if (produced >= total) return c.close();
          produced += chunk.length;
          c.enqueue(chunk);
        },
      },
      { highWaterMark: 1 },
    );
    const reader = input.pipeThrough(compressStage({ algorithm: "zstd", level: 1 })!).getReader();
    let consumed = 0;
    for (let i = 0; i < 20; i++) {
      const { value } = await reader.read();
      consumed += value?.byteLength ?? 0;
      await Bun.sleep(5);
    }
    // The producer may be ahead by a few buffered chunks, never by the whole input.
    expect(produced).toBeLessThan(consumed + 8 * 1024 * 1024);
    await reader.cancel();
  });
});

describe("zstd through the zstd tool", () => {
  const PATH = process.env.PATH!;

  test("round trip with the tool both ways, and across tool/in-process", async () => {
    const src = source(2 * 1024 * 1024 + 3);
    const packed = await readAll(src.stream.pipeThrough(compressStage({ algorithm: "zstd", level: 3 }, PATH)!));
    expect(
      createHash("sha256")
        .update(await readAll(new Blob([packed]).stream().pipeThrough(decompressStage("zstd")!)))
        .digest("hex"),
    ).toBe(src.sha256);
    expect(
      createHash("sha256")
        .update(await readAll(new Blob([packed]).stream().pipeThrough(decompressStage("zstd", PATH)!)))
        .digest("hex"),
    ).toBe(src.sha256);
  });

  test("an upstream failure surfaces as itself, and the tool is gone", async () => {
    const failing = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(1000));
        c.error(new Error("pg_dump exited with code 1: boom"));
      },
    });
    await expect(readAll(failing.pipeThrough(compressStage({ algorithm: "zstd", level: 3 }, PATH)!))).rejects.toThrow("pg_dump exited with code 1: boom");
  });

  test("corrupt input fails decompression with the tool's message", async () => {
    const packed = await readAll(source(256 * 1024).stream.pipeThrough(compressStage({ algorithm: "zstd", level: 3 }, PATH)!));
    packed[Math.floor(packed.length / 2)]! ^= 0xff;
    await expect(readAll(new Blob([packed]).stream().pipeThrough(decompressStage("zstd", PATH)!))).rejects.toThrow(/zstd/);
  });

  test("without zstd on the PATH, compression stays in-process", async () => {
    const src = source(100_000);
    const packed = await readAll(src.stream.pipeThrough(compressStage({ algorithm: "zstd", level: 3 }, "/nonexistent")!));
    expect(run(["zstd", "-d", "-c"], packed).length).toBe(100_000);
  });
});
