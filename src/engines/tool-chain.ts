import { closeSync, readdirSync, readlinkSync, write as writeFd } from "node:fs";
import { closeOsPipe, openOsPipe, type OsPipe } from "./os-pipe.ts";
import { spawnTool, terminateTool, type ToolFailedError, type ToolOptions } from "./tool-stream.ts";

/** One tool of a chain: its argv, its secret variables, the code its failure reports. */
export interface ChainLink {
  argv: string[];
  secretEnv?: Record<string, string>;
  errorCode: ToolFailedError["code"];
  /** Sees the tool's stderr text, returns what to keep for an error message. */
  onStderr?: (text: string) => string;
  /** Called once the tool runs, with its process id and exit. */
  onSpawn?: (pid: number, exited: Promise<number>) => void;
  /**
   * Bytes the tool reads on its stdin at start (an age identity, `age -i -`), handed over in
   * an anonymous memory file: never on disk, argv or environment. Only for the first tool of
   * a fed chain, which then reads the chain's input from `/dev/fd/3`.
   */
  secretStdin?: Uint8Array;
  /** Secrets it holds other than its environment's, masked in its stderr. */
  secrets?: string[];
}

export interface ChainOptions extends Omit<ToolOptions, "secretEnv"> {
  /** Where the FIFOs behind the OS pipes are made (and unlinked at once): a private directory. */
  pipeDir: string;
}

/**
 * Tools joined like a shell pipeline (`pg_dump | zstd | age`) by OS pipes, so the bytes
 * between them never enter the daemon; the last tool's stdout is the returned stream. It
 * ends cleanly only once every tool exited 0. Otherwise it fails with the failure of the
 * last tool in the chain that failed: a tool that dies makes the ones before it fail too
 * (broken pipe) but never the ones after it (they see an end of input and exit 0), so the
 * downstream-most failure is the cause (and the tools before a failed one are killed at
 * once). Aborting `signal` or canceling the stream kills them all; reading is pulled, so
 * a slow consumer slows the whole chain (the pipes fill). Null when no OS pipe can be
 * made (no `mkfifo`): the caller then relays through the daemon.
 */
export async function toolChain(links: ChainLink[], opts: ChainOptions): Promise<ReadableStream<Uint8Array> | null> {
  const chain = await startChain(links, opts, "ignore", "pipe");
  if (!chain) return null;
  const reader = (chain.last.proc.stdout as ReadableStream<Uint8Array>).getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (!done) return controller.enqueue(value);
          const failure = await chain.outcome();
          if (failure) controller.error(failure);
          else controller.close();
        } catch (err) {
          chain.stop();
          controller.error(err);
        }
      },
      async cancel() {
        chain.stop();
        await reader.cancel().catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * The same chain with the last tool writing straight into `fd` (a file the caller opened):
 * no byte of it passes through the daemon at all. Resolves once every tool exited 0;
 * rejects with the downstream-most failure as above. Aborting `signal` or `stop()` (an
 * error on the daemon's side) kills them all. Null when no OS pipe can be made.
 */
export async function toolChainInto(links: ChainLink[], opts: ChainOptions, fd: number): Promise<{ finished: Promise<void>; stop(): void } | null> {
  const chain = await startChain(links, opts, "ignore", fd);
  if (!chain) return null;
  const finished = chain.outcome().then((failure) => {
    if (failure) throw failure;
  });
  return { finished, stop: () => chain.stop() };
}

/**
 * A chain the daemon feeds (`age -d | zstd -d | pg_restore`): the first tool reads an OS
 * pipe the daemon writes into (its stdin, or `/dev/fd/3` when its stdin carries a secret),
 * the last one's stdout goes nowhere. The daemon decides when the input ends: `end()` gives
 * the first tool a clean end of input, `kill()` kills every tool (the last one first, so it
 * can never act on an end of input) before the input is dropped.
 */
export interface FedChain {
  /** Writes into the first tool's input; waits while the pipe is full. Rejects once the tool is gone (EPIPE). */
  write(chunk: Uint8Array): Promise<void>;
  /** Closes the input (once the first tool has opened it, when it opens `/dev/fd/3` itself). */
  end(): Promise<void>;
  /** Kills every tool, the last one first, waits until they are gone, then drops the input. */
  kill(): Promise<void>;
  /**
   * Resolves once every tool exited 0. Rejects with the cause: the upstream-most tool that
   * failed by itself (a tool after it fails on the input it cut short, a tool before it on
   * the pipe it broke: killed, SIGPIPE, "Broken pipe"); failing that, the downstream-most.
   */
  finished: Promise<void>;
}

/**
 * Starts a fed chain; null when no OS pipe can be made (nothing was started). A failing
 * tool takes the tools after it down at once, the last one first: they would otherwise see
 * an end of input where the data was cut. The tools before it end by themselves (a broken
 * pipe at their next write), so their own exits still tell which tool failed first.
 * Aborting `signal` kills them all, the last one first.
 */
export async function toolChainFed(links: ChainLink[], opts: ChainOptions): Promise<FedChain | null> {
  const input = await openOsPipe(opts.toolPath, opts.pipeDir);
  if (!input) return null;
  const { signal, ...rest } = opts;
  let chain: Awaited<ReturnType<typeof startChain>> = null;
  try {
    // The abort is handled here, not by each tool, so the last tool is killed first.
    chain = await startChain(links, rest, input.read, "ignore", "upstream");
  } finally {
    // The first tool holds its own copy of the read end now (or none was started).
    closeSync(input.read);
    if (!chain) closeOsPipe(input);
  }
  if (!chain) return null;
  const started = chain;
  const first = started.tools[0]!;
  const viaFd3 = links[0]!.secretStdin !== undefined;
  let open = true;
  let pending: Promise<unknown> = Promise.resolve();
  let closed: Promise<void> | null = null;
  // Only once the last write has left the thread pool: a write still queued there would
  // otherwise go to whatever file reuses the fd number.
  const closeInput = () =>
    (closed ??= (async () => {
      open = false;
      await pending.catch(() => {});
      try {
        closeSync(input.write);
      } catch {}
    })());
  const kill = async () => {
    started.stop(true);
    await Promise.all(started.tools.map((t) => t.proc.exited));
    await closeInput();
  };
  const onAbort = () => void kill();
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const finished = started.outcome().then(async (failure) => {
    signal?.removeEventListener("abort", onAbort);
    await closeInput();
    if (failure) throw failure;
  });
  // A failure with nobody waiting yet must not surface as an unhandled rejection.
  finished.catch(() => {});
  return {
    write(chunk) {
      if (!open) return Promise.reject(new Error("the chain's input is closed"));
      const done = writeAll(input.write, chunk);
      pending = done;
      return done;
    },
    async end() {
      await pending.catch(() => {});
      if (viaFd3) await openedFd3(first.proc);
      await closeInput();
    },
    kill,
    finished,
  };
}

/** Writes all of `chunk` to a blocking fd, off the JS thread (it waits there while the pipe is full). */
function writeAll(fd: number, chunk: Uint8Array): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const from = (offset: number) =>
      writeFd(fd, chunk, offset, chunk.byteLength - offset, null, (err, n) => {
        if (err) return reject(err);
        if (offset + n < chunk.byteLength) from(offset + n);
        else resolve();
      });
    from(0);
  });
}

/**
 * Waits until a tool has opened its `/dev/fd/3` (a second fd of its own leads to the same
 * pipe), or exited. Closing the pipe's write end before that would make its open wait
 * forever: an open of a FIFO for reading waits for a writer. Looked up in /proc, a few ms.
 */
async function openedFd3(proc: { pid: number; exitCode: number | null; signalCode: unknown }): Promise<void> {
  const dir = `/proc/${proc.pid}/fd`;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode) return;
    try {
      const target = readlinkSync(`${dir}/3`);
      if (readdirSync(dir).some((fd) => fd !== "3" && linkOf(`${dir}/${fd}`) === target)) return;
    } catch {}
    await Bun.sleep(2);
  }
}

function linkOf(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

type ToolStdioIn = "ignore" | number;
type ToolStdioOut = "pipe" | "ignore" | number;
/** Which failing tool is the chain's cause: see toolChain (downstream) and toolChainFed (upstream). */
type CauseRule = "downstream" | "upstream";

/** A tool that failed because another went first: killed (by us, or SIGPIPE), or told its output pipe broke. */
const BROKEN_PIPE = /broken pipe|EPIPE/i;

async function startChain(links: ChainLink[], opts: ChainOptions, firstStdin: ToolStdioIn, lastStdout: ToolStdioOut, rule: CauseRule = "downstream") {
  const pipes: OsPipe[] = [];
  for (let i = 1; i < links.length; i++) {
    const pipe = await openOsPipe(opts.toolPath, opts.pipeDir);
    if (!pipe) {
      pipes.forEach(closeOsPipe);
      return null;
    }
    pipes.push(pipe);
  }
  const tools: ReturnType<typeof spawnTool<ToolStdioIn | Uint8Array, ToolStdioOut>>[] = [];
  try {
    links.forEach((link, i) => {
      const input = i === 0 ? firstStdin : pipes[i - 1]!.read;
      const viaFd3 = i === 0 && link.secretStdin !== undefined;
      const stdin = viaFd3 ? link.secretStdin! : input;
      const stdout = i === links.length - 1 ? lastStdout : pipes[i]!.write;
      const toolOpts = { ...opts, secretEnv: link.secretEnv, secrets: link.secrets };
      const tool = spawnTool(link.argv, toolOpts, stdin, stdout, link.onStderr, viaFd3 && typeof input === "number" ? [input] : []);
      tools.push(tool);
      link.onSpawn?.(tool.proc.pid, tool.proc.exited);
    });
  } catch (err) {
    for (const t of tools.toReversed()) {
      t.proc.kill("SIGKILL");
      t.detach();
    }
    throw err;
  } finally {
    // The children hold their own copies now; the daemon's must go, or no tool ever sees
    // the end of its input.
    pipes.forEach(closeOsPipe);
  }
  // A tool that fails takes the tools before it down at once: they would die of a broken
  // pipe at their next write anyway, but one waiting on the database (a lock) may not write
  // for hours. The tools after it see an end of input and finish by themselves. A fed chain
  // (a restore) is the other way round: an end of input where the data was cut must not be
  // acted on, so the tools after it go at once, the last one first, and the ones before it
  // (fed by the daemon, never waiting on a database) die of the broken pipe.
  // Not after an abort or a stop, though: every tool was sent SIGTERM then (killOnAbort or
  // stop(), SIGKILL after a grace), zstd and age die of it at once, and a SIGKILL on their
  // exit would beat pg_dump's own cancel of the query it waits on, leaving its backend
  // queued on the lock on the server.
  let stopping = false;
  tools.forEach(
    (t, i) =>
      void t.proc.exited.then((code) => {
        if (code === 0 || stopping || opts.signal?.aborted) return;
        const others = rule === "upstream" ? tools.slice(i + 1).toReversed() : tools.slice(0, i);
        for (const other of others) other.proc.kill("SIGKILL");
      }),
  );
  return {
    tools,
    last: tools[tools.length - 1]!,
    /**
     * Stops every tool, the last one first (an error on the daemon's side, or a cancel):
     * SIGTERM, then SIGKILL after a grace (terminateTool), so a pg_dump waiting on a lock
     * cancels its query instead of leaving its backend queued on the server. `hard`: SIGKILL
     * at once, for a fed chain, whose restore tool must be gone before its input ends.
     */
    stop(hard = false) {
      stopping = true;
      tools.toReversed().forEach((t) => {
        if (hard) t.proc.kill("SIGKILL");
        else terminateTool(t.proc);
        t.detach();
      });
    },
    /** Once every tool exited and its stderr was read: null if all exited 0, else the cause. */
    async outcome(): Promise<ToolFailedError | null> {
      await Promise.all(tools.flatMap((t) => [t.proc.exited, t.stderrDone]));
      tools.forEach((t) => t.detach());
      const failures = tools.map((t, i) => (t.proc.exitCode === 0 ? null : t.failure(links[i]!.errorCode)));
      let cause = rule === "upstream" ? failures.findIndex((f) => f !== null && f.exitCode !== null && !BROKEN_PIPE.test(f.stderr)) : -1;
      if (cause === -1) cause = failures.findLastIndex((f) => f !== null);
      if (cause === -1 && !opts.signal?.aborted) return null;
      cause = Math.max(cause, 0);
      return failures[cause] ?? tools[cause]!.failure(links[cause]!.errorCode);
    },
  };
}
