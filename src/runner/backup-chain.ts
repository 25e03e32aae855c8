import { decryptStream, newAgeIdentity } from "../crypto/age.ts";
import type { DumpCommand, DumpEnv } from "../engines/dump.ts";
import { bytesReadBy, findTool, runTool } from "../engines/process.ts";
import { toolChain, type ChainLink } from "../engines/tool-chain.ts";
import { ToolFailedError } from "../engines/tool-stream.ts";
import { readAll } from "../lib/streams.ts";
import type { Progress } from "./backup.ts";
import { zstdTool, type Compression } from "./compression.ts";
import { ZstdReport, zstdReportsTotals } from "./zstd-report.ts";

/** How often the live dump count is read from zstd's /proc entry (the queue flushes it every second). */
const LIVE_PROGRESS_MS = 500;

export interface BackupChain {
  /** The stored bytes: compressed, and encrypted when `encrypted`. */
  stream: ReadableStream<Uint8Array>;
  /** Whether age ran in the chain; if not, the caller encrypts in-process. */
  encrypted: boolean;
}

/**
 * The fast path of a backup: `pg_dump | zstd [| age]` as one chain of processes joined by
 * OS pipes, exactly the shell pipeline, so the dump's bytes never pass through the daemon's
 * one JS thread; only the stored bytes do (counted, hashed, uploaded). The dump's size
 * comes from zstd's own exact report, and the stream fails if that report is missing;
 * while it runs, the live count is what zstd has read (from /proc).
 *
 * Taken when the dump is a tool (not SQLite), the compression is zstd, the `zstd` tool is
 * on the PATH and reports exact totals, and an OS pipe can be made; age joins the chain
 * when the `age` tool is on the PATH and its output decrypts. Otherwise null: the caller
 * relays every stage through the daemon, which writes the same standard format.
 */
export async function startBackupChain(
  dump: DumpCommand,
  compression: Compression,
  recipients: string[],
  env: DumpEnv,
  signal: AbortSignal,
  progress: Progress,
): Promise<BackupChain | null> {
  if (compression.algorithm !== "zstd") return null;
  const zstd = zstdTool(env.toolPath);
  if (!zstd || !(await zstdReportsTotals(zstd, env.toolPath))) return null;
  const ageTool = recipients.length > 0 ? findTool("age", env.toolPath) : null;
  const age = ageTool && (await ageToolWorks(ageTool, env.toolPath)) ? ageTool : null;

  const report = new ZstdReport();
  const links: ChainLink[] = [
    { argv: dump.argv, secretEnv: dump.secretEnv, errorCode: "DUMP_FAILED" },
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

  const chain = await toolChain(links, { toolPath: env.toolPath, signal, pipeDir: env.scratchDir });
  if (!chain) return null;
  let seen = 0;
  const stream = chain.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        controller.enqueue(chunk);
      },
      // The chain ended with every tool at exit 0, and zstd's stderr is read to its end.
      flush() {
        const totals = report.totals;
        if (!totals) throw new ToolFailedError("COMPRESSION_FAILED", zstd, 0, "zstd did not report how many bytes it read");
        if (!age && totals.written !== seen) {
          throw new ToolFailedError("COMPRESSION_FAILED", zstd, 0, `zstd reported ${totals.written} bytes written, ${seen} arrived`);
        }
        progress.bytesIn = totals.read;
      },
    }),
  );
  return { stream, encrypted: age !== null };
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
