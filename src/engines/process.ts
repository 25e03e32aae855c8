/**
 * Child processes of engines (dump, restore, `--version`): always an argv array, never a
 * shell string; secrets only through `secretEnv` (PGPASSWORD, MYSQL_PWD), never argv; the
 * child gets a minimal environment, not the daemon's (which may hold other secrets).
 */

import { readFileSync } from "node:fs";
import { redactSecrets } from "../lib/redact.ts";

/** Keeps the last `max` bytes of a stream of chunks: what a failing tool said last. */
export class StderrTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max = 4096) {}

  push(chunk: Uint8Array): void {
    const b = Buffer.from(chunk);
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.max && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
  }

  /** The tail as text, with every secret replaced, so it can go into job.error or a log. */
  text(secrets: readonly string[] = []): string {
    const all = Buffer.concat(this.chunks);
    return redactSecrets(
      all
        .subarray(Math.max(0, all.length - this.max))
        .toString("utf8")
        .trim(),
      secrets,
    );
  }
}

/**
 * How many bytes a running process has read so far (Linux `/proc/<pid>/io`, `rchar`: every
 * read(2), so a few KiB of its own start-up too): live progress for a tool whose input the
 * daemon does not see. Null when the process is gone or /proc does not tell.
 */
export function bytesReadBy(pid: number): number | null {
  return ioCount(pid, "rchar");
}

/** The same for what it has written (`wchar`: its stderr too, a few lines): a decompressor's output so far. */
export function bytesWrittenBy(pid: number): number | null {
  return ioCount(pid, "wchar");
}

function ioCount(pid: number, field: "rchar" | "wchar"): number | null {
  try {
    const match = new RegExp(`^${field}:\\s*(\\d+)$`, "m").exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Finds an executable on the given PATH (not the daemon's own unless that is what is passed). */
export function findTool(name: string, toolPath: string): string | null {
  return Bun.which(name, { PATH: toolPath }) ?? null;
}

/** The environment a tool runs in: PATH and locale only, plus the caller's (secret) variables. */
export function childEnv(toolPath: string, secretEnv: Record<string, string> = {}): Record<string, string> {
  return { PATH: toolPath, LANG: "C.UTF-8", LC_ALL: "C.UTF-8", ...secretEnv };
}

export interface ToolRun {
  exitCode: number | null;
  stdout: string;
  /** The same bytes as `stdout` (up to `maxStdout`), undecoded. */
  stdoutBytes: Buffer;
  stderrTail: string;
  timedOut: boolean;
}

/**
 * Runs a short tool to completion (e.g. `pg_dump --version`, or a probe fed a few bytes on
 * `stdin`), bounded by `timeoutMs` and `signal`.
 */
export async function runTool(
  argv: string[],
  opts: { toolPath: string; secretEnv?: Record<string, string>; timeoutMs: number; signal?: AbortSignal; maxStdout?: number; stdin?: Uint8Array },
): Promise<ToolRun> {
  const tail = new StderrTail();
  const proc = Bun.spawn(argv, {
    env: childEnv(opts.toolPath, opts.secretEnv),
    stdin: opts.stdin ? new Blob([opts.stdin]) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs);
  const onAbort = () => proc.kill("SIGTERM");
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const max = opts.maxStdout ?? 64 * 1024;
  const readStdout = async () => {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of proc.stdout) {
      if (size < max) parts.push(Buffer.from(chunk));
      size += chunk.length;
    }
    return Buffer.concat(parts).subarray(0, max);
  };
  const readStderr = async () => {
    for await (const chunk of proc.stderr) tail.push(chunk);
  };
  try {
    const [stdoutBytes] = await Promise.all([readStdout(), readStderr(), proc.exited]);
    const secrets = Object.values(opts.secretEnv ?? {});
    return { exitCode: proc.exitCode, stdout: stdoutBytes.toString("utf8"), stdoutBytes, stderrTail: tail.text(secrets), timedOut };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
