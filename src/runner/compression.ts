import { constants, createGunzip, createGzip, createZstdCompress, createZstdDecompress } from "node:zlib";
import { fromNodeTransform } from "../lib/streams.ts";

export type CompressionAlgorithm = "zstd" | "gzip" | "none";

export interface Compression {
  algorithm: CompressionAlgorithm;
  level: number;
}

export const LEVELS: Record<CompressionAlgorithm, { min: number; max: number; default: number }> = {
  zstd: { min: 1, max: 19, default: 3 },
  gzip: { min: 1, max: 9, default: 6 },
  none: { min: 0, max: 0, default: 0 },
};

/** The file name layer of each algorithm: `.zst` and `.gz` are what `zstd -d` and `gunzip` expect. */
export const COMPRESSION_EXT: Record<CompressionAlgorithm, string> = { zstd: ".zst", gzip: ".gz", none: "" };

/**
 * In-process streaming compression (zlib's zstd and gzip): standard frames that the
 * `zstd` and `gzip` command-line tools read, so a backup restores without snapdb.
 */
export function compressStage(c: Compression): TransformStream<Uint8Array, Uint8Array> | null {
  switch (c.algorithm) {
    case "zstd":
      return fromNodeTransform(
        createZstdCompress({
          params: { [constants.ZSTD_c_compressionLevel]: c.level, [constants.ZSTD_c_checksumFlag]: 1 },
        }),
      );
    case "gzip":
      return fromNodeTransform(createGzip({ level: c.level }));
    case "none":
      return null;
  }
}

export function decompressStage(algorithm: CompressionAlgorithm): TransformStream<Uint8Array, Uint8Array> | null {
  switch (algorithm) {
    case "zstd":
      return fromNodeTransform(createZstdDecompress());
    case "gzip":
      return fromNodeTransform(createGunzip());
    case "none":
      return null;
  }
}
