/**
 * The closed sets of `error.code` a failed backup job or restore reports. They are part of
 * the API contract (the OpenAPI document enumerates them, and generated clients switch over
 * them), so the rows' `error` column is typed with them: a new code that is not listed here
 * does not compile. test/unit/failure-codes.test.ts also checks that every code literal the
 * runner, engines and storage write is listed.
 */

/** What a failed source connection or dump-tool check says (data source verify, and the runner's probes). */
export const SOURCE_CHECK_CODES = [
  "CONNECTION_REFUSED",
  "TIMEOUT",
  "AUTH_FAILED",
  "DATABASE_NOT_FOUND",
  "TLS_ERROR",
  "DUMP_TOOL_MISSING",
  "DUMP_TOOL_TOO_OLD",
  "PATH_NOT_ALLOWED",
  "DATABASE_UNREADABLE",
] as const;

/** What a storage failure becomes in a job, a restore or a destination verify. */
export const STORAGE_FAILURE_CODES = ["STORAGE_UNREACHABLE", "ACCESS_DENIED", "BUCKET_NOT_FOUND", "ASSUME_ROLE_FAILED", "STORAGE_ERROR"] as const;

/** How a job or restore can end that is not about its data: the lifecycle and the unexpected. */
const LIFECYCLE_CODES = ["CANCELED", "INTERRUPTED", "SECRET_UNREADABLE", "INTERNAL"] as const;

/** Every `error.code` of a backup job. */
export const JOB_ERROR_CODES = [
  "DUMP_FAILED",
  "COMPRESSION_FAILED",
  "ENCRYPTION_FAILED",
  ...SOURCE_CHECK_CODES,
  ...STORAGE_FAILURE_CODES,
  "DATA_SOURCE_NOT_FOUND",
  "POLICY_NOT_FOUND",
  "DESTINATION_NOT_FOUND",
  // Whole-server backups: the server holds a database named like the globals part.
  "INVALID_TARGET",
  // The row counts of a policy with `fingerprint: true` could not be taken.
  "FINGERPRINT_FAILED",
  // A physical policy on a source it cannot serve (not PostgreSQL).
  "INVALID_POLICY",
  ...LIFECYCLE_CODES,
] as const;

/** Every `error.code` of a restore. */
export const RESTORE_ERROR_CODES = [
  "CHECKSUM_MISMATCH",
  "DECRYPT_FAILED",
  "DECOMPRESS_FAILED",
  "RESTORE_FAILED",
  "RESTORE_TOOL_MISSING",
  "TARGET_NOT_EMPTY",
  "DATABASE_CREATE_FAILED",
  "INVALID_TARGET",
  "GLOBALS_FAILED",
  // Restore plans: no successful backup to restore, a drill's verification failed, a run
  // given a backup that is not a dump of one database (a base backup, a whole server).
  "NO_BACKUP",
  "VERIFICATION_FAILED",
  "UNSUPPORTED_BACKUP",
  // Point-in-time restores: the instant is outside the recovery window.
  "OUTSIDE_WINDOW",
  "BACKUP_NOT_FOUND",
  "BACKUP_FILE_MISSING",
  "DATA_SOURCE_NOT_FOUND",
  ...SOURCE_CHECK_CODES,
  ...STORAGE_FAILURE_CODES,
  ...LIFECYCLE_CODES,
] as const;

/** What `POST /backup-jobs/{id}/verify` finds wrong with a stored file. */
export const FILE_CHECK_CODES = ["FILE_MISSING", "SIZE_MISMATCH", "CHECKSUM_MISMATCH", "DECRYPT_FAILED", "DECOMPRESS_FAILED", "STORAGE_ERROR"] as const;

export type SourceCheckCode = (typeof SOURCE_CHECK_CODES)[number];
export type StorageFailureCode = (typeof STORAGE_FAILURE_CODES)[number];
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];
export type RestoreErrorCode = (typeof RESTORE_ERROR_CODES)[number];
export type FileCheckCode = (typeof FILE_CHECK_CODES)[number];

const isIn =
  <T extends string>(list: readonly T[]) =>
  (code: string): code is T =>
    (list as readonly string[]).includes(code);

export const isJobErrorCode = isIn(JOB_ERROR_CODES);
export const isRestoreErrorCode = isIn(RESTORE_ERROR_CODES);
