import { childEnv, findTool, runTool, StderrTail } from "./process.ts";

/** A dump or restore tool that failed: its exit code and what it said last (secrets masked). */
export class ToolFailedError extends Error {
  constructor(
    readonly code: "DUMP_FAILED" | "RESTORE_FAILED" | "COMPRESSION_FAILED" | "ENCRYPTION_FAILED",
    readonly tool: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly signalCode: string | number | null = null,
  ) {
    // exitCode 0: the tool ended well but what it produced failed a check (stderr says which).
    const how = signalCode ? ` was killed by ${signalCode}` : exitCode === 0 ? "" : ` exited with code ${exitCode}`;
    super(`${tool}${how}${stderr ? `: ${stderr}` : ""}`);
    this.name = "ToolFailedError";
  }
}

export interface ToolOptions {
  toolPath: string;
  secretEnv?: Record<string, string>;
  /** Other secrets the tool is given (not through its environment), masked in its stderr too. */
  secrets?: string[];
  signal?: AbortSignal;
  cwd?: string;
}

const KILL_GRACE_MS = 5000;

type Killable = { kill(signal?: number | NodeJS.Signals): void; exited: Promise<number> };

/**
 * Stops a tool the way it asks to be stopped: SIGTERM, then SIGKILL if it is still there
 * after a grace. pg_dump (and pg_basebackup) answer SIGTERM by canceling their query on the
 * server; a SIGKILL leaves a backend that waits on a lock queued there until the lock goes,
 * and every later conflicting lock request (DDL) queues behind it.
 */
export function terminateTool(proc: Killable): void {
  proc.kill("SIGTERM");
  const hard = setTimeout(() => proc.kill("SIGKILL"), KILL_GRACE_MS);
  void proc.exited.finally(() => clearTimeout(hard));
}

function killOnAbort(proc: Killable, signal?: AbortSignal) {
  const onAbort = () => terminateTool(proc);
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  return () => signal?.removeEventListener("abort", onAbort);
}

/** `setpriv` paths probed here: the prefix that runs a tool under them, or null if it failed. */
const deathGuards = new Map<string, string[] | null>();

/**
 * Makes the tools started from now on die with the daemon, when this machine allows it:
 * `setpriv --pdeathsig KILL` (util-linux, essential on Debian) sets the parent-death signal
 * and then execs the tool, which keeps its pid. Without it, a tool that writes a file
 * itself (a backup straight into local storage) runs on after a kill -9 of the daemon,
 * loading the database for a file nobody keeps (recovery removes it at the next start).
 * Probed once per process by running `setpriv --version` under it: under the systemd unit
 * the seccomp filter (~@privileged) refuses the capset setpriv always makes (EPERM), so the
 * probe fails and tools run as they are; there the unit's cgroup stops whatever a dead
 * daemon left.
 */
export async function guardToolsWithDaemon(toolPath: string): Promise<boolean> {
  const setpriv = findTool("setpriv", toolPath);
  if (!setpriv) return false;
  if (!deathGuards.has(setpriv)) {
    const prefix = [setpriv, "--pdeathsig", "KILL", "--"];
    const run = await runTool([...prefix, setpriv, "--version"], { toolPath, timeoutMs: 5000 }).catch(() => null);
    deathGuards.set(setpriv, run?.exitCode === 0 ? prefix : null);
  }
  return deathGuards.get(setpriv) !== null;
}

function deathGuardFor(toolPath: string): string[] | null {
  const setpriv = findTool("setpriv", toolPath);
  return setpriv ? (deathGuards.get(setpriv) ?? null) : null;
}

/** Where a tool's stdin/stdout go: a pipe to the daemon, nowhere, or an fd (one end of an OS pipe). */
export type ToolStdio = "ignore" | "pipe" | number;

/**
 * A tool's stdin may also be a few bytes given at start (an age identity read with `-i -`):
 * Bun hands them over in an anonymous memory file (memfd), so they are on no filesystem
 * and in no argv or environment.
 */
export type ToolStdin = ToolStdio | Uint8Array;

/**
 * Starts a tool with a minimal environment (secrets only through `secretEnv`, or as bytes
 * on its stdin), keeps the tail of its stderr, and kills it when `signal` aborts. `onStderr`
 * sees the stderr text first and returns what is worth keeping for an error (zstd's
 * progress lines are read, not kept). `extraFds` become the tool's fds 3, 4, …
 */
export function spawnTool<In extends ToolStdin, Out extends ToolStdio>(argv: string[], opts: ToolOptions, stdin: In, stdout: Out, onStderr?: (text: string) => string, extraFds: number[] = []) {
  const tail = new StderrTail();
  const guard = deathGuardFor(opts.toolPath);
  const spawned = guard ? [...guard, ...argv] : argv;
  const proc = Bun.spawn(spawned, { env: childEnv(opts.toolPath, opts.secretEnv), cwd: opts.cwd, stdio: [stdin, stdout, "pipe", ...extraFds] });
  const detach = killOnAbort(proc, opts.signal);
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      tail.push(onStderr ? Buffer.from(onStderr(decoder.decode(chunk, { stream: true }))) : chunk);
    }
  })();
  const secrets = [...Object.values(opts.secretEnv ?? {}), ...(opts.secrets ?? [])];
  const failure = (code: ToolFailedError["code"]) => new ToolFailedError(code, argv[0]!, proc.exitCode, tail.text(secrets), proc.signalCode ?? null);
  return { proc, detach, stderrDone, failure };
}

/**
 * A tool's stdout as a stream that only ends cleanly if the tool exits 0: when stdout
 * closes, the stream waits for the exit status and errors with the stderr tail otherwise.
 * So a consumer that finishes an upload on end never completes a dump that failed. Reading
 * is pulled: when nobody reads, the pipe fills and the tool waits (backpressure). Canceling
 * the stream, or aborting `signal`, kills the tool.
 */
export function toolOutput(argv: string[], opts: ToolOptions & { errorCode?: "DUMP_FAILED" | "RESTORE_FAILED" }): ReadableStream<Uint8Array> {
  const { proc, detach, stderrDone, failure } = spawnTool(argv, opts, "ignore", "pipe");
  const reader = proc.stdout.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (!done) return controller.enqueue(value);
          await Promise.all([proc.exited, stderrDone]);
          detach();
          if (proc.exitCode === 0 && !opts.signal?.aborted) return controller.close();
          controller.error(failure(opts.errorCode ?? "DUMP_FAILED"));
        } catch (err) {
          detach();
          controller.error(err);
        }
      },
      async cancel() {
        // The consumer went away (an upload failed or was aborted): a dump tool may be
        // waiting on the database, so it is asked to stop (it cancels its query).
        terminateTool(proc);
        detach();
        await reader.cancel().catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A tool fed through its stdin (pg_restore, mysql): the returned promise resolves when all
 * of `input` was written, stdin closed and the tool exited 0; otherwise it rejects with the
 * stderr tail. Writes wait for the pipe to drain, so a slow tool slows the download.
 */
export async function toolInput(argv: string[], input: ReadableStream<Uint8Array>, opts: ToolOptions & { onStderr?: (text: string) => string }): Promise<{ stdout: string }> {
  const { proc, detach, stderrDone, failure } = spawnTool(argv, opts, "pipe", "pipe", opts.onStderr);
  const stdoutText = new Response(proc.stdout).text().then((t) => t.slice(0, 64 * 1024));
  const reader = input.getReader();
  let inputError: unknown = null;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || opts.signal?.aborted) break;
      try {
        await proc.stdin.write(value);
        await proc.stdin.flush();
      } catch {
        // The tool closed its stdin (it failed, or was killed): its exit status and stderr
        // say why, which a bare EPIPE would hide.
        break;
      }
    }
  } catch (err) {
    inputError = err;
    proc.kill("SIGKILL");
  }
  // Failed input or an abort: the tool dies BEFORE its stdin closes, so it never sees a
  // clean end of input (pg_restore --single-transaction then cannot commit).
  if (opts.signal?.aborted) proc.kill("SIGKILL");
  await reader.cancel().catch(() => {});
  try {
    await proc.stdin.end();
  } catch {}
  await Promise.all([proc.exited, stderrDone]);
  detach();
  if (inputError) throw inputError;
  if (proc.exitCode !== 0 || opts.signal?.aborted) throw failure("RESTORE_FAILED");
  return { stdout: await stdoutText };
}

/**
 * A tool as a stream stage (`zstd -c`): what is written goes to its stdin, its stdout is
 * the readable side. Writes wait for the pipe to drain and reads are pulled, so the stage
 * holds no more than the pipes do. If the upstream fails, the tool is killed and the
 * readable side fails with the upstream's own error (not "zstd was killed"), so the job
 * reports the real cause. A tool that exits non-zero fails the readable side.
 */
export function toolTransform(argv: string[], opts: ToolOptions & { errorCode: ToolFailedError["code"] }): ReadableWritablePair<Uint8Array, Uint8Array> {
  const { proc, detach, stderrDone, failure } = spawnTool(argv, opts, "pipe", "pipe");
  let upstreamError: unknown = null;
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      try {
        await proc.stdin.write(chunk);
        await proc.stdin.flush();
      } catch {
        // The tool went away: its exit status (read on the readable side) says why.
        await proc.exited;
        throw failure(opts.errorCode);
      }
    },
    async close() {
      await proc.stdin.end();
    },
    abort(reason) {
      upstreamError = reason ?? new Error("upstream aborted");
      proc.kill("SIGKILL");
    },
  });
  const reader = proc.stdout.getReader();
  const readable = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (!done) return controller.enqueue(value);
          await Promise.all([proc.exited, stderrDone]);
          detach();
          if (upstreamError) return controller.error(upstreamError);
          if (proc.exitCode === 0 && !opts.signal?.aborted) return controller.close();
          controller.error(failure(opts.errorCode));
        } catch (err) {
          detach();
          controller.error(upstreamError ?? err);
        }
      },
      async cancel() {
        proc.kill("SIGKILL");
        detach();
        await reader.cancel().catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
  return { writable, readable };
}
