import { runTool } from "../engines/process.ts";

/**
 * zstd's stderr read line by line: a line `summary` recognises is its own, the error lines
 * are kept (for an error message), the chatter is not.
 */
export abstract class ZstdStderr {
  private partial = "";

  /** Reads a summary line's figures; false for any other line. */
  protected abstract summary(line: string): boolean;

  /** Takes stderr text; returns zstd's error lines (kept for an error message), not its chatter. */
  feed(text: string): string {
    const lines = (this.partial + text).split(/[\r\n]/);
    this.partial = lines.pop() ?? "";
    const keep: string[] = [];
    for (const raw of lines) {
      const line = raw.trim();
      if (!this.summary(line) && WORTH_KEEPING.test(line)) keep.push(line);
    }
    return keep.length ? `${keep.join("\n")}\n` : "";
  }
}

/**
 * What `zstd -vv` writes on stderr, read back: at the end, the exact totals of bytes read
 * and written (`(N B => M B, …)`; zstd 1.4 wrote `(N => M bytes, …)`). When the dump is
 * piped straight into zstd, this is how the job learns the dump's size without the bytes
 * passing through the daemon.
 */
export class ZstdReport extends ZstdStderr {
  /** Set once zstd printed its summary line: bytes read and bytes written, exact. */
  totals: { read: number; written: number } | null = null;

  protected summary(line: string): boolean {
    const done = TOTALS.exec(line);
    if (done) this.totals = { read: Number(done[1]), written: Number(done[2]) };
    return done !== null;
  }
}

const TOTALS = /\(\s*(\d+)(?: B)? => +(\d+)(?: B| bytes)?,/;
/** zstd's own errors start with `zstd:`; the rest at -vv is chatter (parameters, timings). */
const WORTH_KEEPING = /^zstd:|error/i;

const trusted = new Set<string>();

/**
 * Whether this `zstd` prints exact byte totals at -vv (every version since at least 1.4
 * does; a build that does not is not trusted with the dump's size). It compresses a few
 * known bytes and reads the report back. Only a success is remembered, so a probe that
 * failed for a passing reason (a busy machine) is asked again at the next backup.
 */
export async function zstdReportsTotals(zstd: string, toolPath: string): Promise<boolean> {
  if (trusted.has(zstd)) return true;
  const input = new Uint8Array(4321).fill(7);
  const run = await runTool([zstd, "-vv", "-1", "-c"], { toolPath, timeoutMs: 10_000, stdin: input }).catch(() => null);
  const report = new ZstdReport();
  report.feed(`${run?.stderrTail ?? ""}\n`);
  const ok = run?.exitCode === 0 && report.totals?.read === input.length && report.totals.written === run.stdoutBytes.length;
  if (ok) trusted.add(zstd);
  return ok;
}
