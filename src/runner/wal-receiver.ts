import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { dropSlot, receiveWalCommand, slotNameOf, slotStatus, type SlotStatus } from "../engines/physical.ts";
import { spawnTool } from "../engines/tool-stream.ts";
import type { SourceTarget } from "../engines/types.ts";
import { HISTORY_NAME, SEGMENT_NAME } from "../engines/wal-names.ts";
import type { WalCarry } from "../engines/wal-scan.ts";
import type { Logger } from "../lib/logger.ts";
import { ensureSlot, recordSlotReset } from "./physical-backup.ts";
import { archiveSpoolFile, type SegmentBuffer, type WalTarget, type WalUploadDeps } from "./wal-upload.ts";

export interface ReceiverDeps extends WalUploadDeps {
  logger: Logger;
  /** The source's connection, freshly resolved and checked (pinTarget); throws when refused. */
  pinnedTarget(): Promise<SourceTarget>;
  /** How often the spool is looked at for finished segments. */
  pollIntervalMs: number;
  /** How often the slot's retained WAL is read from the server. */
  statusIntervalMs: number;
  onGap?(dataSourceId: string, missing: number): void;
}

/** What the metrics show of one source's archiving. */
export interface ReceiverState {
  dataSourceId: string;
  receiving: boolean;
  /** pg_receivewal's process id while it runs. */
  pid: number | null;
  lastError: string | null;
  restarts: number;
  status: SlotStatus | null;
}

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
/** A pg_receivewal that ran this long was healthy: the next failure starts the backoff over. */
const HEALTHY_RUN_MS = 60_000;
const STOP_GRACE_MS = 10_000;
/** The server no longer has the WAL the slot or the spool asks for: the archive has a gap. */
const WAL_GONE = /has already been removed|invalidated|cannot be used|can no longer/i;

/**
 * Archives one PostgreSQL source's WAL: supervises `pg_receivewal` streaming into the
 * source's spool directory over its slot (restarted with backoff when it dies), and uploads
 * each finished segment (wal-upload.ts). Stopped with SIGINT, pg_receivewal's clean exit (it
 * keeps the partial segment, which the next run resumes).
 */
export class WalReceiver {
  readonly slot: string;
  readonly state: ReceiverState;
  private target: WalTarget;
  private proc: ReturnType<typeof spawnTool<"ignore", "ignore">>["proc"] | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wakeBackoff: (() => void) | null = null;
  private archiving: Promise<void> | null = null;
  private carry: WalCarry | null = null;
  private readonly buffer: SegmentBuffer = { bytes: null };
  private timers: ReturnType<typeof setInterval>[] = [];
  private lastTarget: SourceTarget | null = null;
  private warnedUnlimited = false;

  constructor(
    private readonly deps: ReceiverDeps,
    target: WalTarget,
    readonly spoolDir: string,
  ) {
    this.target = target;
    this.slot = slotNameOf(target.dataSourceId);
    this.state = { dataSourceId: target.dataSourceId, receiving: false, pid: null, lastError: null, restarts: 0, status: null };
  }

  get orgId(): string {
    return this.target.orgId;
  }

  /** A changed policy (destination, compression, encryption) applies from the next segment. */
  update(target: WalTarget): void {
    this.target = target;
  }

  start(): void {
    mkdirSync(this.spoolDir, { recursive: true, mode: 0o700 });
    this.loop = this.superviseLoop();
    this.timers.push(setInterval(() => void this.archivePass(), this.deps.pollIntervalMs));
    this.timers.push(setInterval(() => void this.readStatus(), this.deps.statusIntervalMs));
    void this.archivePass();
  }

  /**
   * Stops pg_receivewal (its partial segment stays for the next run) and the timers. Says how
   * pg_receivewal ended: exit code 0 is its clean exit on SIGINT; null when none was running.
   */
  async stop(): Promise<{ exitCode: number | null; signal: string | null } | null> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.wakeBackoff?.();
    const proc = this.proc;
    let ended: { exitCode: number | null; signal: string | null } | null = null;
    if (proc) {
      proc.kill("SIGINT");
      const hard = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
      await proc.exited.catch(() => {});
      clearTimeout(hard);
      ended = { exitCode: proc.exitCode, signal: proc.signalCode === null || proc.signalCode === undefined ? null : String(proc.signalCode) };
    }
    await this.loop;
    await this.archiving;
    return ended;
  }

  /**
   * The policy was detached: archive what is finished (unless the source is gone), then drop the slot (else the server
   * keeps WAL for it until max_slot_wal_keep_size) and the spool. Best effort, logged.
   */
  async retire(archiveRest: boolean): Promise<boolean> {
    await this.stop();
    if (archiveRest) {
      this.stopping = false;
      await this.archivePass().catch(() => {});
      this.stopping = true;
    }
    let dropped = false;
    if (this.lastTarget) {
      try {
        await dropSlot(this.lastTarget, this.slot);
        dropped = true;
      } catch (err) {
        this.deps.logger.warn("could not drop the replication slot of a detached physical policy; drop it by hand", { slot: this.slot, error: err });
      }
    }
    rmSync(this.spoolDir, { recursive: true, force: true });
    return dropped;
  }

  /** Uploads every finished file in the spool, oldest first; one pass at a time. */
  archivePass(): Promise<void> {
    this.archiving ??= this.archiveFinished().finally(() => (this.archiving = null));
    return this.archiving;
  }

  private async archiveFinished(): Promise<void> {
    let names: string[];
    try {
      names = readdirSync(this.spoolDir)
        .filter((n) => SEGMENT_NAME.test(n) || HISTORY_NAME.test(n))
        .sort((a, b) => (HISTORY_NAME.test(a) ? 0 : 1) - (HISTORY_NAME.test(b) ? 0 : 1) || (a < b ? -1 : 1));
    } catch {
      return;
    }
    for (const name of names) {
      if (this.stopping) return;
      try {
        const done = await archiveSpoolFile(this.deps, this.spoolDir, name, this.target, this.carry, this.buffer);
        this.carry = done.carry;
        if (done.gap > 0) {
          this.deps.logger.warn("the WAL archive has a gap: restores cannot replay across it", { dataSourceId: this.target.dataSourceId, before: name, missingSegments: done.gap });
          this.deps.onGap?.(this.target.dataSourceId, done.gap);
        }
      } catch (err) {
        this.carry = null;
        this.deps.logger.warn("archiving a WAL file failed; retried at the next pass", { dataSourceId: this.target.dataSourceId, file: name, error: err });
        return; // in order: a later segment waits for this one
      }
    }
  }

  private async readStatus(): Promise<void> {
    if (!this.lastTarget || this.stopping) return;
    try {
      const status = await slotStatus(this.lastTarget, this.slot);
      this.state.status = status;
      if (status.maxKeepMb < 0 && !this.warnedUnlimited) {
        this.warnedUnlimited = true;
        this.deps.logger.warn(
          "max_slot_wal_keep_size is -1 (unlimited) on the source: while WAL archiving is stopped or behind, its replication slot keeps WAL without bound and can fill the server's disk; set a limit",
          { dataSourceId: this.target.dataSourceId, slot: this.slot },
        );
      }
    } catch (err) {
      this.deps.logger.debug("reading the replication slot's status failed", { dataSourceId: this.target.dataSourceId, error: err });
    }
  }

  private async superviseLoop(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.stopping) {
      const started = Date.now();
      try {
        await this.receiveOnce();
      } catch (err) {
        this.state.lastError = err instanceof Error ? err.message : String(err);
      }
      this.state.receiving = false;
      if (this.stopping) break;
      this.state.restarts++;
      if (Date.now() - started >= HEALTHY_RUN_MS) backoff = MIN_BACKOFF_MS;
      this.deps.logger.warn("pg_receivewal stopped; restarting", { dataSourceId: this.target.dataSourceId, inMs: backoff, error: this.state.lastError });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff);
        this.wakeBackoff = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeBackoff = null;
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /**
   * pg_receivewal fills a new `.partial` file with zeros to the segment size before it writes
   * any WAL into it; killed in that moment (the daemon's kill -9 takes its tools along), the
   * file is left shorter than a segment, and every later run refuses it ("should be 0 or
   * 16777216"). WAL segment sizes are powers of two: a partial of any other size holds no
   * WAL yet, so removing it loses nothing (the slot still has that WAL).
   */
  private dropCutOffPartials(): void {
    for (const name of readdirSync(this.spoolDir)) {
      if (!name.endsWith(".partial")) continue;
      const path = join(this.spoolDir, name);
      const size = statSync(path).size;
      if (size === 0 || (size & (size - 1)) === 0) continue;
      rmSync(path, { force: true });
      this.deps.logger.warn("removed a partial WAL file cut off while it was being created", { dataSourceId: this.target.dataSourceId, file: name, size });
    }
  }

  /** One run of pg_receivewal, to its exit; throws with what it said when it failed. */
  private async receiveOnce(): Promise<void> {
    const target = await this.deps.pinnedTarget();
    this.lastTarget = target;
    const slotReset = await ensureSlot(target, this.slot);
    // Its WAL is gone (max_slot_wal_keep_size while archiving was paused or down): the slot
    // reserves again from now on; the spool's partial segment, from before the hole, goes.
    if (slotReset) await this.resetSlot(slotReset, false);
    if (this.stopping) return;
    this.dropCutOffPartials();
    const cmd = receiveWalCommand(target, this.deps.toolPath, this.slot, this.spoolDir);
    const tool = spawnTool(cmd.argv, { toolPath: this.deps.toolPath, secretEnv: cmd.secretEnv }, "ignore", "ignore");
    this.proc = tool.proc;
    this.state.receiving = true;
    this.state.pid = tool.proc.pid;
    void this.readStatus();
    await Promise.all([tool.proc.exited, tool.stderrDone]);
    tool.detach();
    this.proc = null;
    this.state.pid = null;
    if (this.stopping) return;
    const failure = tool.failure("DUMP_FAILED");
    if (WAL_GONE.test(failure.stderr)) await this.resetSlot(failure.stderr, true);
    throw failure;
  }

  /**
   * The server removed WAL the archive did not have yet (the slot hit max_slot_wal_keep_size,
   * or was dropped): a gap is certain. What the spool finished is archived and the rest of the
   * spool dropped; after pg_receivewal found its WAL gone the slot is dropped too (one that
   * ensureSlot just made again is kept), so archiving starts over from the server's position
   * now; the next segment archived records the gap.
   */
  private async resetSlot(why: string, dropSlotToo: boolean): Promise<void> {
    await this.archivePass();
    for (const name of readdirSync(this.spoolDir)) if (name.endsWith(".partial")) rmSync(join(this.spoolDir, name), { force: true });
    if (dropSlotToo && this.lastTarget) await dropSlot(this.lastTarget, this.slot).catch(() => {});
    const { orgId, dataSourceId } = this.target;
    await recordSlotReset(this.deps.db, this.deps.logger, { orgId, dataSourceId, slot: this.slot, reason: why });
  }
}
