import { closeOsPipe, openOsPipe, type OsPipe } from "./os-pipe.ts";
import { spawnTool, type ToolFailedError, type ToolOptions } from "./tool-stream.ts";

/** One tool of a chain: its argv, its secret variables, the code its failure reports. */
export interface ChainLink {
  argv: string[];
  secretEnv?: Record<string, string>;
  errorCode: ToolFailedError["code"];
  /** Sees the tool's stderr text, returns what to keep for an error message. */
  onStderr?: (text: string) => string;
  /** Called once the tool runs, with its process id and exit. */
  onSpawn?: (pid: number, exited: Promise<number>) => void;
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
  const chain = await startChain(links, opts, "pipe");
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
export async function toolChainInto(
  links: ChainLink[],
  opts: ChainOptions,
  fd: number,
): Promise<{ finished: Promise<void>; stop(): void } | null> {
  const chain = await startChain(links, opts, fd);
  if (!chain) return null;
  const finished = chain.outcome().then((failure) => {
    if (failure) throw failure;
  });
  return { finished, stop: () => chain.stop() };
}

type ToolStdioIn = "ignore" | number;
type ToolStdioOut = "pipe" | number;

async function startChain(links: ChainLink[], opts: ChainOptions, lastStdout: ToolStdioOut) {
  const pipes: OsPipe[] = [];
  for (let i = 1; i < links.length; i++) {
    const pipe = await openOsPipe(opts.toolPath, opts.pipeDir);
    if (!pipe) {
      pipes.forEach(closeOsPipe);
      return null;
    }
    pipes.push(pipe);
  }
  const tools: ReturnType<typeof spawnTool<ToolStdioIn, ToolStdioOut>>[] = [];
  try {
    links.forEach((link, i) => {
      const stdin = i === 0 ? "ignore" : pipes[i - 1]!.read;
      const stdout = i === links.length - 1 ? lastStdout : pipes[i]!.write;
      const tool = spawnTool(link.argv, { ...opts, secretEnv: link.secretEnv }, stdin, stdout, link.onStderr);
      tools.push(tool);
      link.onSpawn?.(tool.proc.pid, tool.proc.exited);
    });
  } catch (err) {
    for (const t of tools) {
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
  // for hours. The tools after it see an end of input and finish by themselves.
  tools.forEach((t, i) =>
    void t.proc.exited.then((code) => {
      if (code !== 0) for (const before of tools.slice(0, i)) before.proc.kill("SIGKILL");
    }),
  );
  return {
    last: tools[tools.length - 1]!,
    /** Kills every tool (an error on the daemon's side, or a cancel). */
    stop() {
      tools.forEach((t) => {
        t.proc.kill("SIGKILL");
        t.detach();
      });
    },
    /** Once every tool exited and its stderr was read: null if all exited 0, else the cause. */
    async outcome(): Promise<ToolFailedError | null> {
      await Promise.all(tools.flatMap((t) => [t.proc.exited, t.stderrDone]));
      tools.forEach((t) => t.detach());
      const failedAt = tools.findLastIndex((t) => t.proc.exitCode !== 0);
      if (failedAt === -1 && !opts.signal?.aborted) return null;
      const cause = Math.max(failedAt, 0);
      return tools[cause]!.failure(links[cause]!.errorCode);
    },
  };
}
