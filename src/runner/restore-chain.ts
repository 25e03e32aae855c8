import { existsSync } from "node:fs";
import { decryptStream } from "../crypto/age.ts";
import { ageDecrypts } from "../engines/age-tool.ts";
import type { DumpEnv } from "../engines/dump.ts";
import { bytesWrittenBy, findTool } from "../engines/process.ts";
import { RestoreSetupError, runRestoreTool, type ToolCommand } from "../engines/restore.ts";
import { toolChainFed, type ChainLink, type FedChain } from "../engines/tool-chain.ts";
import { guardToolsWithDaemon, ToolFailedError } from "../engines/tool-stream.ts";
import { countingTap } from "../lib/streams.ts";
import { StorageError } from "../storage/errors.ts";
import { decompressStage, zstdTool, type CompressionAlgorithm } from "./compression.ts";
import { ZstdStderr } from "./zstd-report.ts";

/**
 * The fast path of a restore: `age -d | zstd -d | pg_restore` (or `| mariadb`) as one chain
 * of processes joined by OS pipes, exactly the shell pipeline, so the decrypted and
 * decompressed bytes never pass through the daemon's one JS thread. The daemon reads the
 * stored file, hashes it and writes it into age's (or zstd's) input; it holds back the
 * file's tail until the whole file's size and sha256 matched (verifiedSource), so on a
 * mismatch, a cancel or any failure the tools are killed (the restore tool first) before
 * their input ends: pg_restore's single transaction never commits.
 *
 * The org's age identity goes to `age -d -i -` on its stdin, which Bun hands over in an
 * anonymous memory file: it is in no argv, no environment and no file. age then reads the
 * backup from `/dev/fd/3`, the read end of the daemon's pipe.
 *
 * Planned for zstd backups (with or without age) when `zstd`, `mkfifo` (and for encrypted
 * ones a working `age`) are on the tools' PATH and /proc is readable; otherwise, and for
 * gzip, no compression and SQLite targets, the daemon decodes every stage itself, as before.
 */

export type RestorePipeline = "tools" | "daemon";

export interface BackupFormat {
  compression: CompressionAlgorithm;
  encrypted: boolean;
}

/** Where a restore's bytes go and what happens just before the first of them does. */
export interface RestoreFeed {
  format: BackupFormat;
  /** The org's age identity when the backup is encrypted. */
  identity: string | null;
  cmd: ToolCommand;
  /** Runs once the backup is known to open with the identity, before any byte reaches the tool (MySQL `clean` drops tables here). */
  before?: () => Promise<void> | void;
  env: DumpEnv;
  signal: AbortSignal;
  /** Decompressed bytes handed to the restore tool so far (live, exact at the end when zstd reports it). */
  onWritten(total: number): void;
  /** Told which pipeline runs, before any byte goes (so a failure can say it too). */
  onPipeline?(pipeline: RestorePipeline): void;
}

/** The stored file as read, hashed and held back (verifiedSource's stream). */
type Source = ReadableStream<Uint8Array>;

/**
 * Restores `source` into the tool of `feed`: through the chain of tools when it can be
 * planned, else through the daemon's own stages. Returns which pipeline ran.
 */
export async function restoreThroughTools(source: Source, feed: RestoreFeed): Promise<RestorePipeline> {
  const plan = await planRestoreChain(feed.format, feed.identity, feed.env);
  if (plan && (await runChain(plan, source, feed))) return "tools";
  feed.onPipeline?.("daemon");
  let stream = await decodeInDaemon(source, feed.format, feed.identity, feed.env.toolPath, feed.signal);
  let written = 0;
  stream = stream.pipeThrough(countingTap((n) => feed.onWritten((written += n))));
  await feed.before?.();
  await runRestoreTool(feed.cmd, stream, feed.env.toolPath, feed.signal);
  return "daemon";
}

/**
 * The daemon's own stages: age decrypt in-process, then decompression (the `zstd` tool as a
 * stage when installed, else in-process). Awaits the age header, so an identity that does
 * not open the file fails here, before the target is touched.
 */
export async function decodeInDaemon(source: Source, format: BackupFormat, identity: string | null, toolPath: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  let stream = source;
  if (format.encrypted) {
    if (!identity) throw noIdentity();
    const decrypted = await decryptStream(stream, [identity]).catch((err: unknown) => {
      if (err instanceof RestoreSetupError || err instanceof StorageError) throw err;
      throw doesNotDecrypt(err);
    });
    stream = tagged(decrypted, stageError("DECRYPT_FAILED"));
  }
  const decompress = decompressStage(format.compression, toolPath, signal);
  if (decompress) stream = tagged(stream.pipeThrough(decompress), stageError("DECOMPRESS_FAILED"));
  return stream;
}

export const noIdentity = () => new RestoreSetupError("DECRYPT_FAILED", "the organisation has no age identity to decrypt the backup with");

const doesNotDecrypt = (err: unknown) =>
  new RestoreSetupError("DECRYPT_FAILED", `the backup does not decrypt with the organisation's age identity: ${err instanceof Error ? err.message : String(err)}`);

const stageError = (code: "DECRYPT_FAILED" | "DECOMPRESS_FAILED") => (err: unknown) => new RestoreSetupError(code, err instanceof Error ? err.message : String(err));

/** Errors of one stage come out as `wrap` makes them (DECRYPT_FAILED, …) unless they are ours (checksum, storage) already. */
export function tagged(inner: ReadableStream<Uint8Array>, wrap: (err: unknown) => Error): ReadableStream<Uint8Array> {
  const reader = inner.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          const ours = err instanceof RestoreSetupError || err instanceof StorageError;
          controller.error(ours ? err : wrap(err));
        }
      },
      cancel: (reason) => reader.cancel(reason).catch(() => {}),
    },
    { highWaterMark: 0 },
  );
}

interface RestoreChainPlan {
  age: string | null;
  zstd: string;
}

async function planRestoreChain(format: BackupFormat, identity: string | null, env: DumpEnv): Promise<RestoreChainPlan | null> {
  if (format.compression !== "zstd") return null;
  const zstd = zstdTool(env.toolPath);
  // /proc: to see when age has opened its input (openedFd3), and the live count.
  if (!zstd || !findTool("mkfifo", env.toolPath) || !existsSync("/proc/self/fd")) return null;
  let age: string | null = null;
  if (format.encrypted) {
    if (!identity) throw noIdentity();
    age = findTool("age", env.toolPath);
    if (!age || !(await ageDecrypts(age, env.toolPath, env.scratchDir))) return null;
  }
  await guardToolsWithDaemon(env.toolPath);
  return { age, zstd };
}

/** Enough of the file to hold age's header (a stanza per recipient, ~100 bytes each). */
const HEADER_PEEK = 64 * 1024;
/** How long the tools of a chain whose first tool went away get to end by themselves. */
const TOOLS_GRACE_MS = 5000;
/** How often the live count is read from zstd's /proc entry (the queue flushes it every second). */
const LIVE_PROGRESS_MS = 500;

/** Runs the chain; false when no OS pipe could be made (nothing was started or read). */
async function runChain(plan: RestoreChainPlan, source: Source, feed: RestoreFeed): Promise<boolean> {
  const { identity, signal } = feed;
  const report = new DecompressReport();
  let live: ReturnType<typeof setInterval> | null = null;
  const links: ChainLink[] = [];
  if (plan.age) {
    links.push({
      argv: [plan.age, "--decrypt", "-i", "-", "/dev/fd/3"],
      secretStdin: new TextEncoder().encode(`${identity}\n`),
      secrets: [identity!],
      errorCode: "RESTORE_FAILED",
    });
  }
  links.push({
    // -v: the exact count of bytes written, on stderr at the end.
    argv: [plan.zstd, "-d", "-v", "-c"],
    errorCode: "RESTORE_FAILED",
    onStderr: (text) => report.feed(text),
    onSpawn: (pid, exited) => {
      live = setInterval(() => {
        const n = bytesWrittenBy(pid);
        if (n !== null && report.total === null) feed.onWritten(n);
      }, LIVE_PROGRESS_MS);
      void exited.finally(() => clearInterval(live!));
    },
  });
  links.push({ argv: feed.cmd.argv, secretEnv: feed.cmd.secretEnv, errorCode: "RESTORE_FAILED" });

  const chain = await toolChainFed(links, { toolPath: feed.env.toolPath, pipeDir: feed.env.scratchDir, signal });
  if (!chain) return false;
  feed.onPipeline?.("tools");
  const reader = source.getReader();
  try {
    const head = await peek(reader, HEADER_PEEK);
    // Read by the daemon too: an identity that does not open the file fails before the target is touched.
    if (identity) await opensWith(head.chunks, identity);
    await feed.before?.();
    for (const chunk of head.chunks) await write(chain, chunk, signal);
    if (!head.done) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await write(chain, value, signal);
      }
    }
    // The whole file matched: the tools may see the end of their input now.
    await chain.end();
    await chain.finished;
  } catch (err) {
    // A tool went away (the write failed): the others end by themselves within moments, and
    // their own exits tell which tool failed first; killing them now could hide that. Any
    // other failure (a mismatch, a cancel, storage) kills them before their input ends.
    if (err instanceof ToolWentAway) await Promise.race([chain.finished.catch(() => {}), Bun.sleep(TOOLS_GRACE_MS)]);
    await chain.kill();
    const cause = await chain.finished.then(
      () => null,
      (e: unknown) => e,
    );
    // A write that failed means a tool went away: the tools' own failure says why.
    throw named(err instanceof ToolWentAway && cause ? cause : err, plan);
  } finally {
    if (live) clearInterval(live);
    reader.releaseLock();
  }
  if (report.total !== null) feed.onWritten(report.total);
  return true;
}

class ToolWentAway extends Error {}

async function write(chain: FedChain, chunk: Uint8Array, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
  await chain.write(chunk).catch((err: unknown) => {
    throw new ToolWentAway(err instanceof Error ? err.message : String(err));
  });
}

/** Reads chunks until `min` bytes or the end, whichever first. */
async function peek(reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }, min: number): Promise<{ chunks: Uint8Array[]; done: boolean }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < min) {
    const { done, value } = await reader.read();
    if (done || !value) return { chunks, done: true };
    chunks.push(value);
    size += value.byteLength;
  }
  return { chunks, done: false };
}

/** Whether the file's age header opens with `identity` (typage reads just the header here). */
async function opensWith(head: Uint8Array[], identity: string): Promise<void> {
  try {
    const out = await decryptStream(new Blob([Buffer.concat(head)]).stream(), [identity]);
    await out.cancel().catch(() => {});
  } catch (err) {
    throw doesNotDecrypt(err);
  }
}

/** A tool's failure under the stage it stands for: age → DECRYPT_FAILED, zstd → DECOMPRESS_FAILED, the restore tool's stays RESTORE_FAILED. */
function named(err: unknown, plan: RestoreChainPlan): unknown {
  if (!(err instanceof ToolFailedError)) return err;
  if (plan.age && err.tool === plan.age) return doesNotDecrypt(err);
  if (err.tool === plan.zstd) return new RestoreSetupError("DECOMPRESS_FAILED", err.message);
  return err;
}

/** What `zstd -d -v` says at the end: `/*stdin*\ : 418123456 bytes`. Its error lines are kept, its chatter not. */
class DecompressReport extends ZstdStderr {
  total: number | null = null;

  protected summary(line: string): boolean {
    const done = /:\s*(\d+) bytes$/.exec(line);
    if (done) this.total = Number(done[1]);
    return done !== null;
  }
}
