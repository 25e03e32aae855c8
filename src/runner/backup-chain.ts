import { decryptStream, newAgeIdentity } from "../crypto/age.ts";
import type { DumpCommand, DumpEnv } from "../engines/dump.ts";
import { bytesReadBy, findTool, runTool } from "../engines/process.ts";
import { toolChain, toolChainInto, type ChainLink } from "../engines/tool-chain.ts";
import { guardToolsWithDaemon, ToolFailedError } from "../engines/tool-stream.ts";
import { hashGrowingFile } from "../lib/growing-file-hash.ts";
import { readAll } from "../lib/streams.ts";
import { classifyFsError, StorageError } from "../storage/errors.ts";
import type { DirectWrite } from "../storage/types.ts";
import type { Progress } from "./backup.ts";
import { zstdTool, type Compression } from "./compression.ts";
import { ZstdReport, zstdReportsTotals } from "./zstd-report.ts";

/** How often the live dump count is read from zstd's /proc entry (the queue flushes it every second). */
const LIVE_PROGRESS_MS = 500;

/**
 * The fast path of a backup: `pg_dump | zstd [| age]` as one chain of processes joined by
 * OS pipes, exactly the shell pipeline, so the dump's bytes never pass through the daemon's
 * one JS thread. The dump's size comes from zstd's own exact report, and the backup fails
 * if that report is missing; while it runs, the live count is what zstd has read (/proc).
 *
 * Planned when the dump is a tool (not SQLite), the compression is zstd, the `zstd` tool
 * is on the PATH and reports exact totals; age joins the chain when the `age` tool is on
 * the PATH and its output decrypts. Without compression or encryption, the chain is the
 * dump tool alone. The chain then runs either into a file the tools
 * write themselves (`chainIntoFile`, local destinations: the daemon touches no byte) or
 * into the daemon (`chainStream`, which uploads the stored bytes). Null from any of them:
 * the caller relays every stage through the daemon, which writes the same standard format.
 */
export interface BackupChainPlan {
  links: ChainLink[];
  /** Whether age runs in the chain; if not, the caller encrypts in-process (stream only). */
  encrypted: boolean;
  /** Live count of the stored bytes as they are hashed (progress, where it is also the dump's). */
  onStored(n: number): void;
  /** After every tool exited 0: checks zstd's report against the `stored` bytes, sets bytesIn. */
  check(stored: number): void;
}

export async function planBackupChain(dump: DumpCommand, compression: Compression, recipients: string[], env: DumpEnv, progress: Progress): Promise<BackupChainPlan | null> {
  const dumpLink: ChainLink = { argv: dump.argv, secretEnv: dump.secretEnv, errorCode: "DUMP_FAILED" };
  if (compression.algorithm === "none" && recipients.length === 0) {
    // The dump tool alone: what it writes is stored as is, so its size is the dump's.
    // (Under age the dump's exact size would be unknown: that case is relayed.)
    await guardToolsWithDaemon(env.toolPath);
    return {
      links: [dumpLink],
      encrypted: false,
      onStored: (n) => void (progress.bytesIn += n),
      check: (stored) => void (progress.bytesIn = stored),
    };
  }
  if (compression.algorithm !== "zstd") return null;
  const zstd = zstdTool(env.toolPath);
  if (!zstd || !(await zstdReportsTotals(zstd, env.toolPath))) return null;
  await guardToolsWithDaemon(env.toolPath);
  const ageTool = recipients.length > 0 ? findTool("age", env.toolPath) : null;
  const age = ageTool && (await ageToolWorks(ageTool, env.toolPath)) ? ageTool : null;

  const report = new ZstdReport();
  const links: ChainLink[] = [
    dumpLink,
    {
      // -vv for the exact totals at the end. Not --progress: at -vv it writes a line per
      // block (8,400 for 418 MB), which cost the daemon 0.2 s of CPU to read; the live
      // count comes from /proc instead.
      argv: [zstd, `-${compression.level}`, "--check", "-vv", "-c"],
      errorCode: "COMPRESSION_FAILED",
      onStderr: (text) => report.feed(text),
      onSpawn: (pid, exited) => {
        const live = setInterval(() => {
          const read = bytesReadBy(pid);
          if (read !== null && report.totals === null) progress.bytesIn = read;
        }, LIVE_PROGRESS_MS);
        void exited.finally(() => clearInterval(live));
      },
    },
  ];
  // Recipients are public keys, validated as age1… (so never read as an option).
  if (age) links.push({ argv: [age, "--encrypt", ...recipients.flatMap((r) => ["-r", r])], errorCode: "ENCRYPTION_FAILED" });

  return {
    links,
    encrypted: age !== null,
    onStored: () => {}, // the live dump count comes from zstd's /proc entry
    // zstd's stderr is read to its end by then (the chain waits for it).
    check(stored) {
      const totals = report.totals;
      if (!totals) throw new ToolFailedError("COMPRESSION_FAILED", zstd, 0, "zstd did not report how many bytes it read");
      if (!age && totals.written !== stored) {
        throw new ToolFailedError("COMPRESSION_FAILED", zstd, 0, `zstd reported ${totals.written} bytes written, ${stored} were stored`);
      }
      progress.bytesIn = totals.read;
    },
  };
}

/** The chain's output as a stream into the daemon (which counts, hashes and uploads it). */
export async function chainStream(plan: BackupChainPlan, env: DumpEnv, signal: AbortSignal): Promise<ReadableStream<Uint8Array> | null> {
  const chain = await toolChain(plan.links, { toolPath: env.toolPath, signal, pipeDir: env.scratchDir });
  if (!chain) return null;
  let seen = 0;
  return chain.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        plan.onStored(chunk.byteLength);
        controller.enqueue(chunk);
      },
      flush() {
        plan.check(seen);
      },
    }),
  );
}

/**
 * The chain's last tool writes the stored bytes straight into `target` (a file the storage
 * driver opened), while the daemon hashes the file as it grows (positional reads of the
 * page cache, a few percent of the CPU of receiving the bytes through a pipe). Resolves
 * once every tool exited 0, the whole file is hashed and zstd's report matches it; the
 * caller then commits the file. Null when no OS pipe can be made (nothing was started).
 */
export async function chainIntoFile(plan: BackupChainPlan, env: DumpEnv, signal: AbortSignal, target: DirectWrite, onStored: (n: number) => void): Promise<{ sha256: string; size: number } | null> {
  const chain = await toolChainInto(plan.links, { toolPath: env.toolPath, signal, pipeDir: env.scratchDir }, target.fd);
  if (!chain) return null;
  const writer = plan.links[plan.links.length - 1]!;
  let toolsFailure: unknown = null;
  const finished = chain.finished.catch((err) => {
    toolsFailure = storageFailureOf(err, writer) ?? err;
    throw toolsFailure;
  });
  let hashed: { sha256: string; size: number };
  try {
    hashed = await hashGrowingFile(target.fd, finished, (n) => {
      plan.onStored(n);
      onStored(n);
    });
  } catch (err) {
    if (err === toolsFailure) throw err;
    // Reading the file back failed (an I/O error): the tools must be gone before the
    // caller removes the file they write.
    chain.stop();
    await finished.catch(() => {});
    throw classifyFsError(err, "local storage read");
  }
  plan.check(hashed.size);
  return hashed;
}

/** What zstd and age say when writing their output failed (zstd: "Write error : … No space left on device"). */
const WRITE_FAILED = /write error|failed to write|no space left on device|disk quota exceeded|file too large|input\/output error/i;
const OUT_OF_SPACE = /no space left on device|disk quota exceeded/i;

/**
 * The tool that writes the file failed to write it: that is the storage's failure (a full
 * disk), reported as the local driver reports its own (STORAGE_ERROR, retryable), not as
 * a compression or encryption error.
 */
function storageFailureOf(err: unknown, writer: ChainLink): StorageError | null {
  if (!(err instanceof ToolFailedError) || err.tool !== writer.argv[0] || err.code !== writer.errorCode) return null;
  // A file-size limit (ulimit -f, systemd's LimitFSIZE=) kills the writer: put would have seen EFBIG.
  if (err.signalCode === "SIGXFSZ") return new StorageError("STORAGE_ERROR", "local storage write: the file exceeds the size limit (SIGXFSZ)", { cause: err });
  if (!WRITE_FAILED.test(err.stderr)) return null;
  const why = OUT_OF_SPACE.test(err.stderr) ? "the destination is out of space (ENOSPC)" : err.message;
  return new StorageError("STORAGE_ERROR", `local storage write: ${why}`, { cause: err });
}

const PROBE = new TextEncoder().encode("snapdb: is this age?");
const trustedAge = new Set<string>();

/**
 * Whether this `age` writes what the daemon's own decrypter (typage, the reference) reads
 * back: a few bytes encrypted by the tool to a throwaway identity, decrypted in-process. A
 * tool that exits 0 but writes something else would otherwise store unreadable backups as
 * successes. Only a success is remembered.
 */
async function ageToolWorks(age: string, toolPath: string): Promise<boolean> {
  if (trustedAge.has(age)) return true;
  try {
    const { identity, recipient } = await newAgeIdentity();
    const run = await runTool([age, "--encrypt", "-r", recipient], { toolPath, timeoutMs: 10_000, stdin: PROBE });
    if (run.exitCode !== 0) return false;
    const plain = await readAll(await decryptStream(new Blob([run.stdoutBytes]).stream(), [identity]));
    if (!plain.equals(PROBE)) return false;
    trustedAge.add(age);
    return true;
  } catch {
    return false;
  }
}
