import { createHash } from "node:crypto";

/** A deterministic pseudo-random byte stream of `size` bytes in uneven chunks, with its sha256. */
export function patternStream(size: number, seed = 1): { stream: ReadableStream<Uint8Array>; sha256: Promise<string> } {
  const hash = createHash("sha256");
  const digest = Promise.withResolvers<string>();
  let produced = 0;
  let x = seed >>> 0 || 1;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced >= size) {
        digest.resolve(hash.digest("hex"));
        controller.close();
        return;
      }
      // Uneven chunk sizes, so part boundaries never line up with chunk boundaries.
      const n = Math.min(size - produced, 700_000 + (produced % 97) * 1000);
      const chunk = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk[i] = x & 0xff;
      }
      produced += n;
      hash.update(chunk);
      controller.enqueue(chunk);
    },
  });
  return { stream, sha256: digest.promise };
}

/** `size` good bytes, then the stream errors (a dump tool dying mid-way). */
export function failingStream(size: number, error = new Error("source failed")): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) {
        controller.error(error);
        return;
      }
      const n = Math.min(1024 * 1024, size - sent);
      sent += n;
      controller.enqueue(new Uint8Array(n).fill(7));
    },
  });
}

/** A stream that yields `size` bytes and then waits forever (until canceled). */
export function stallingStream(size: number): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new Uint8Array(size).fill(3));
        return;
      }
      return new Promise(() => {});
    },
  });
}

export async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), size };
}

export const bytesStream = (bytes: Uint8Array) => new Blob([bytes]).stream() as ReadableStream<Uint8Array>;
