import type { ApiClient } from "./api.ts";
import { ApiError } from "./api.ts";
import { formatBytes, spanOf } from "./format.ts";
import { ProgressView } from "./progress.ts";

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
/** A daemon that restarts under a long wait is waited for, up to this long. */
const UNREACHABLE_GRACE_MS = 30_000;

export interface WaitTarget {
  kind: "backup" | "restore";
  id: string;
  total: number | null;
  exact: boolean;
}

const pathOf = (t: WaitTarget) => (t.kind === "backup" ? `/backup-jobs/${t.id}` : `/restores/${t.id}`);
const bytesOf = (t: WaitTarget, item: any): number => (t.kind === "backup" ? item.progress?.bytesIn : item.progress?.bytesRead) ?? 0;

async function poll(api: ApiClient, target: WaitTarget): Promise<any> {
  const deadline = Date.now() + UNREACHABLE_GRACE_MS;
  for (;;) {
    try {
      return await api.get(pathOf(target));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 0 || Date.now() > deadline) throw err;
      await Bun.sleep(1000);
    }
  }
}

/** The one line said when it is over. */
export function summary(target: WaitTarget, item: any): string {
  const took = spanOf(item.startedAt, item.finishedAt);
  if (item.status === "succeeded") {
    return target.kind === "backup"
      ? `${item.id} succeeded: ${formatBytes(item.sizeBytes)} dumped, ${formatBytes(item.storedBytes)} stored in ${took} (sha256 ${String(item.sha256).slice(0, 16)}…)`
      : `${item.id} succeeded: ${formatBytes(item.progress?.bytesRead)} read, ${formatBytes(item.progress?.bytesWritten)} restored in ${took}`;
  }
  return `${item.id} ${item.status}: ${item.error ? `${item.error.code}: ${item.error.message}` : "no error recorded"}`;
}

/**
 * Polls a job or restore until it ends, drawing its progress on `out` (stdout by default: a
 * bar on a terminal, plain lines elsewhere; none with `quiet`). Returns the final answer.
 * Ctrl-C stops the waiting only: the job goes on in the daemon.
 */
export async function waitUntilDone(api: ApiClient, target: WaitTarget, quiet = false, out: NodeJS.WriteStream = process.stdout): Promise<any> {
  const view = new ProgressView(out, { id: target.id, total: target.total, exact: target.exact });
  const redraw = !quiet && view.tty ? setInterval(() => view.render(), 100) : null;
  const onInterrupt = () => {
    if (redraw) clearInterval(redraw);
    view.clear();
    process.stderr.write(`stopped waiting; ${target.id} goes on in the daemon: snapdb ${target.kind === "backup" ? "jobs" : "restores"} show ${target.id}\n`);
    process.exit(130);
  };
  process.once("SIGINT", onInterrupt);
  try {
    for (;;) {
      const item = await poll(api, target);
      // The end is said by the summary line, not by a last progress line.
      if (!quiet && !TERMINAL.has(item.status)) {
        view.update(item.status, bytesOf(target, item), item.startedAt ? Date.parse(item.startedAt) : null);
        view.render();
      }
      if (TERMINAL.has(item.status)) return item;
      await Bun.sleep(view.tty ? 250 : 1000);
    }
  } finally {
    if (redraw) clearInterval(redraw);
    view.clear();
    process.off("SIGINT", onInterrupt);
  }
}

/** Prints the outcome (summary on stdout, or `id status: CODE: message` on stderr) and gives the exit code. */
export function report(target: WaitTarget, item: any, json: boolean): number {
  if (json) process.stdout.write(`${JSON.stringify(item, null, 2)}\n`);
  if (item.status === "succeeded") {
    if (!json) process.stdout.write(`${summary(target, item)}\n`);
    return 0;
  }
  process.stderr.write(`${summary(target, item)}\n`);
  return 1;
}
