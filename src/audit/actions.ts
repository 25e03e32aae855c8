/**
 * Every audit event's `action` and `targetType`: closed sets, enumerated in the OpenAPI
 * document, so a client can switch over them. `recordAudit` takes only these, so a new
 * action is added here or does not compile.
 */
export const AUDIT_ACTIONS = [
  "data_source.created",
  "data_source.updated",
  "data_source.deleted",
  "data_source.credentials_set",
  "data_source.credentials_deleted",
  "data_source.verified",
  "storage_destination.created",
  "storage_destination.updated",
  "storage_destination.deleted",
  "storage_destination.verified",
  "backup_policy.created",
  "backup_policy.updated",
  "backup_policy.deleted",
  "attachment.created",
  "attachment.updated",
  "attachment.deleted",
  "attachment.run_skipped",
  "backup_job.queued",
  "backup_job.started",
  "backup_job.completed",
  "backup_job.failed",
  "backup_job.retry_scheduled",
  "backup_job.cancel_requested",
  "backup_job.canceled",
  "backup_job.verified",
  "backup_job.download_link_created",
  "backup_file.deleted",
  "backup_file.delete_failed",
  "restore.queued",
  "restore.started",
  "restore.completed",
  "restore.failed",
  "restore.cancel_requested",
  "restore.canceled",
  "notification_channel.created",
  "notification_channel.updated",
  "notification_channel.deleted",
  "notification_channel.tested",
  "notification_rule.created",
  "notification_rule.updated",
  "notification_rule.deleted",
] as const;

export const AUDIT_TARGET_TYPES = [
  "data_source",
  "storage_destination",
  "backup_policy",
  "attachment",
  "backup_job",
  "restore",
  "notification_channel",
  "notification_rule",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];
export type AuditTargetType = (typeof AUDIT_TARGET_TYPES)[number];
