import type { AbortReason } from "./job-error.ts";
import type { Progress } from "./backup.ts";
import type { RestoreProgress } from "./restore.ts";

/**
 * What services need from the runner: wake it, stop a running job or restore (by id: the
 * prefixes tell them apart), read live progress.
 */
export interface JobControl {
  /** Look at the queue now; never rejects (a failure is logged, the next wake retries). */
  wakeNow(): void;
  abortRunning(jobId: string, reason: AbortReason): boolean;
  progressOf(jobId: string): Progress | null;
  restoreProgressOf(restoreId: string): RestoreProgress | null;
}
