/**
 * What services tell the scheduler after their transaction commits. Kept as a bare
 * interface so modules depend on this shape, not on the scheduler's timers.
 */
export interface ScheduleSync {
  /** Re-reads one attachment (and its policy) and creates, replaces or removes its timer. */
  sync(attachmentId: string): void;
  /** Re-syncs every attachment of a policy (its cron or zone changed, or it was deleted). */
  syncPolicy(policyId: string): void;
  /** Re-reads one restore plan and creates, replaces or removes its timer. */
  syncPlan(planId: string): void;
}

/** A job the scheduler just queued: the runner subscribes to be woken. */
export interface QueuedJob {
  id: string;
  orgId: string;
  dataSourceId: string;
  attachmentId: string;
  policyId: string;
}
