import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { HOLD_BACK_BYTES, verifiedSource } from "../../src/runner/restore.ts";

// The stored file as a restore reads it: its tail is held back until the whole file's size
// and sha256 matched, however the storage cuts its chunks.

const streamOf = (chunks: Uint8Array[]) =>
  new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });

/** What a consumer receives before the stream ends or fails. */
async function consume(stream: ReadableStream<Uint8Array>): Promise<{ got: number; error: unknown }> {
  const reader = stream.getReader();
  let got = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { got, error: null };
      got += value.byteLength;
    }
  } catch (error) {
    return { got, error };
  }
}

describe("verified source", () => {
  const big = new Uint8Array(300 * 1024).fill(1);
  const tail = new Uint8Array([1, 2, 3, 4]);
  const sha = (...parts: Uint8Array[]) => createHash("sha256").update(Buffer.concat(parts)).digest("hex");

  test("a last chunk of 4 bytes (say, zstd's checksum) does not release the bytes before it until the file matched", async () => {
    const source = verifiedSource(streamOf([big, tail]), "0".repeat(64), null, () => {});
    const { got, error } = await consume(source.stream);
    expect(got).toBe(0);
    expect((error as { code?: string }).code).toBe("CHECKSUM_MISMATCH");
  });

  test("of many chunks, only those before the held-back tail flow before the end", async () => {
    const chunks = Array.from({ length: 40 }, (_, i) => new Uint8Array(32 * 1024).fill(i));
    const all = Buffer.concat(chunks);
    const source = verifiedSource(streamOf([...chunks]), sha(Buffer.from("other")), all.length, () => {});
    const { got, error } = await consume(source.stream);
    expect((error as { code?: string }).code).toBe("CHECKSUM_MISMATCH");
    expect(got).toBeLessThanOrEqual(all.length - HOLD_BACK_BYTES);
    expect(got).toBeGreaterThan(0);
  });

  test("a file that matches flows whole, counted once", async () => {
    let counted = 0;
    const source = verifiedSource(streamOf([big, tail]), sha(big, tail), big.length + tail.length, (n) => (counted += n));
    const { got, error } = await consume(source.stream);
    expect(error).toBeNull();
    expect(got).toBe(big.length + tail.length);
    expect(counted).toBe(got);
    expect(await source.settle(new AbortController().signal)).toBe(true);
  });
});
