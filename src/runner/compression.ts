import { constants, createGunzip, createGzip, createZstdCompress, createZstdDecompress } from "node:zlib";
import { findTool } from "../engines/process.ts";
import { toolTransform } from "../engines/tool-stream.ts";
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

export type Stage = ReadableWritablePair<Uint8Array, Uint8Array>;

/**
 * Where zstd runs. The `zstd` tool, when it is on the PATH, is about 3× faster than the
 * in-process (node:zlib) zstd here (bench/RESULTS.md, "Stages alone"), and runs on the
 * other core; without it, compression stays in-process. Both write the same standard frames.
 */
export function zstdTool(toolPath: string | undefined): string | null {
  return toolPath ? findTool("zstd", toolPath) : null;
}

/**
 * Streaming compression: standard frames that the `zstd` and `gzip` command-line tools
 * read, so a backup restores without snapdb.
 */
export function compressStage(c: Compression, toolPath?: string, signal?: AbortSignal): Stage | null {
  switch (c.algorithm) {
    case "zstd": {
      const tool = zstdTool(toolPath);
      if (tool) {
        return toolTransform([tool, `-${c.level}`, "--check", "-q", "-c"], { toolPath: toolPath!, signal, errorCode: "COMPRESSION_FAILED" });
      }
      return fromNodeTransform(
        createZstdCompress({
          params: { [constants.ZSTD_c_compressionLevel]: c.level, [constants.ZSTD_c_checksumFlag]: 1 },
        }),
      );
    }
    case "gzip":
      return fromNodeTransform(createGzip({ level: c.level }));
    case "none":
      return null;
  }
}

export function decompressStage(algorithm: CompressionAlgorithm, toolPath?: string, signal?: AbortSignal): Stage | null {
  switch (algorithm) {
    case "zstd": {
      const tool = zstdTool(toolPath);
      if (tool) return toolTransform([tool, "-d", "-q", "-c"], { toolPath: toolPath!, signal, errorCode: "COMPRESSION_FAILED" });
      return fromNodeTransform(createZstdDecompress());
    }
    case "gzip":
      return fromNodeTransform(createGunzip());
    case "none":
      return null;
  }
}
