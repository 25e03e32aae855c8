import { formatBytes, formatDuration } from "./format.ts";

export interface ProgressOut {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** The job or restore id the line starts with. */
  id: string;
  /** What `bytes` will reach: exact (a restore reads the stored file) or an estimate (the last backup's size). */
  total: number | null;
  exact: boolean;
  now?: () => number;
  /** Without a terminal: a line on every status change, and at least this often while it runs. */
  plainEveryMs?: number;
}

const BAR = 20;
const RATE_WINDOW_MS = 5000;

/**
 * The live line of `--wait`. On a terminal one line is redrawn in place (`\r`, erase to the
 * end) whenever its text changes; the caller decides how often to call `render` (~10/s).
 * Elsewhere (a pipe, a log file) it prints plain lines instead, which read well in a CI log.
 */
export class ProgressView {
  private status = "";
  private bytes = 0;
  private samples: { at: number; bytes: number }[] = [];
  private readonly since: number;
  private runningSince: number | null = null;
  private lastDrawn = "";
  private lastPlainAt = 0;
  private readonly now: () => number;

  constructor(
    private readonly out: ProgressOut,
    private readonly opts: ProgressOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.since = this.now();
  }

  get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  /** `startedAt`: when the daemon started it (elapsed and the first rate count from there), if known. */
  update(status: string, bytes: number, startedAt?: number | null): void {
    const at = this.now();
    const changed = status !== this.status;
    if (status !== "queued" && this.runningSince === null) this.runningSince = startedAt && Number.isFinite(startedAt) ? Math.min(at, startedAt) : at;
    this.status = status;
    this.bytes = bytes;
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - this.samples[0]!.at > RATE_WINDOW_MS) this.samples.shift();
    if (!this.tty && (changed || at - this.lastPlainAt >= (this.opts.plainEveryMs ?? 5000))) {
      this.lastPlainAt = at;
      this.out.write(`${this.line(false)}\n`);
    }
  }

  /** Redraws the terminal line if its text changed; a no-op without a terminal. */
  render(): void {
    if (!this.tty || !this.status) return;
    // A pseudo-terminal may report 0 columns: then assume a common width.
    const text = this.line(true, Math.max(40, (this.out.columns || 120) - 1));
    if (text === this.lastDrawn) return;
    this.lastDrawn = text;
    this.out.write(`\r${text}\x1b[K`);
  }

  /** Clears the terminal line, so the summary that follows starts on a clean one. */
  clear(): void {
    if (this.tty && this.lastDrawn) this.out.write("\r\x1b[K");
    this.lastDrawn = "";
  }

  /** Bytes per second over the last few seconds; the average since it started while that window is too short. */
  rate(): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (first && last && last.at - first.at >= 500) return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
    const running = this.runningSince === null ? 0 : this.now() - this.runningSince;
    return running > 0 ? (this.bytes * 1000) / running : 0;
  }

  /**
   * The line's words. The terminal's line leaves out the id (said before it starts, and
   * again at the end), and when too wide for the terminal (a wrapped line cannot be redrawn
   * with \r) it drops the least useful first: the status, the rate, the elapsed time, the bar.
   */
  line(terminal: boolean, width = Infinity): string {
    const now = this.now();
    const id = terminal ? [] : [{ text: this.opts.id, drop: 99 }];
    if (this.status === "queued") return [...id.map((p) => p.text), "queued", `waiting ${formatDuration(now - this.since)}`].join("  ").slice(0, width);
    const { total, exact } = this.opts;
    const rate = this.rate();
    const parts: { text: string; drop: number }[] = [...id, { text: this.status, drop: 0 }];
    if (total && total > 0) {
      const fraction = Math.min(exact ? 1 : 0.99, this.bytes / total);
      const filled = Math.round(fraction * BAR);
      if (terminal) parts.push({ text: `[${"=".repeat(Math.max(0, filled - 1))}${filled ? ">" : ""}${" ".repeat(BAR - filled)}]`, drop: 3 });
      parts.push({ text: `${Math.floor(fraction * 100)}%`, drop: 99 });
      parts.push({ text: `${formatBytes(this.bytes)} / ${exact ? "" : "~"}${formatBytes(total)}`, drop: 99 });
      parts.push({ text: rate ? `${formatBytes(rate)}/s` : "-- /s", drop: 1 });
      parts.push({ text: `elapsed ${formatDuration(now - (this.runningSince ?? this.since))}`, drop: 2 });
      const left = total - this.bytes;
      parts.push({ text: `ETA ${rate && left > 0 ? formatDuration((left * 1000) / rate) : left > 0 ? "--:--" : "soon"}`, drop: 99 });
    } else {
      parts.push({ text: formatBytes(this.bytes), drop: 99 });
      parts.push({ text: rate ? `${formatBytes(rate)}/s` : "-- /s", drop: 1 });
      parts.push({ text: `elapsed ${formatDuration(now - (this.runningSince ?? this.since))}`, drop: 2 });
      parts.push({ text: "(no earlier backup to estimate an ETA from)", drop: 0 });
    }
    const join = () => parts.map((p) => p.text).join("  ");
    while (join().length > width) {
      const droppable = parts.filter((p) => p.drop < 99);
      if (!droppable.length) break;
      parts.splice(parts.indexOf(droppable.reduce((a, b) => (b.drop < a.drop ? b : a))), 1);
    }
    return join().slice(0, width);
  }
}
