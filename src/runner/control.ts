import type { AbortReason } from "./job-error.ts";
import type { Progress } from "./backup.ts";

/** What services need from the runner: wake it, stop a running job, read live progress. */
export interface JobControl {
  wake(): void;
  abortRunning(jobId: string, reason: AbortReason): boolean;
  progressOf(jobId: string): Progress | null;
}
