import { createHash } from "node:crypto";
import type { Transform } from "node:stream";

/**
 * A Node transform (zlib) as a web TransformStream with backpressure: a chunk is handed to
 * the transform only when the one before it has been processed, and the TransformStream
 * stops calling `transform` while its readable side is full, so memory holds about one
 * chunk's worth of output however slow the consumer is.
 */
export function fromNodeTransform(node: Transform): TransformStream<Uint8Array, Uint8Array> {
  let failed: Error | null = null;
  // `cancel` (newer Streams spec, supported by Bun) frees the native stream on abort.
  const transformer: Transformer<Uint8Array, Uint8Array> & { cancel(): void } = {
    start(controller) {
      node.on("data", (chunk: Buffer) => controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
      node.on("error", (err) => {
        failed = err;
        controller.error(err);
      });
    },
    transform(chunk) {
      if (failed) throw failed;
      return new Promise<void>((resolve, reject) => node.write(chunk, (err) => (err ? reject(err) : resolve())));
    },
    flush() {
      if (failed) throw failed;
      return new Promise<void>((resolve, reject) => {
        node.once("end", resolve);
        node.once("error", reject);
        node.end();
        node.resume();
      });
    },
    cancel() {
      node.destroy();
    },
  };
  return new TransformStream<Uint8Array, Uint8Array>(transformer);
}

/** Passes bytes through and reports each chunk's size (progress, sizes). */
export function countingTap(onBytes: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      onBytes(chunk.byteLength);
      controller.enqueue(chunk);
    },
  });
}

/**
 * Passes bytes through while hashing them (and counting them, with `onBytes`: one stage,
 * not two, on the daemon's busiest path); `digest()` is valid once the stream has ended.
 */
export function sha256Tap(onBytes?: (n: number) => void): { stream: TransformStream<Uint8Array, Uint8Array>; digest(): string } {
  const hash = createHash("sha256");
  let hex: string | null = null;
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      hash.update(chunk);
      onBytes?.(chunk.byteLength);
      controller.enqueue(chunk);
    },
    flush() {
      hex = hash.digest("hex");
    },
  });
  return {
    stream,
    digest() {
      if (hex === null) throw new Error("sha256 read before the stream ended");
      return hex;
    },
  };
}

/** Reads a whole stream; for tests and small objects only. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new Response(stream).arrayBuffer());
}
