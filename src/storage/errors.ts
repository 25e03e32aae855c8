import type { StorageFailureCode } from "../lib/failure-codes.ts";
import { outboundErrorOf } from "../net/outbound-policy.ts";

/**
 * Storage failures carry their own codes into `job.error` and the verify answer
 * (BUCKET_NOT_FOUND, ACCESS_DENIED, STORAGE_UNREACHABLE, ASSUME_ROLE_FAILED).
 */
export type StorageErrorCode = "NOT_FOUND" | "BUCKET_NOT_FOUND" | "ACCESS_DENIED" | "STORAGE_UNREACHABLE" | "ASSUME_ROLE_FAILED" | "INVALID_KEY" | "INVALID_RANGE" | "ABORTED" | "STORAGE_ERROR";

/**
 * The code a job, a restore or a destination verify reports for a storage error: the
 * driver-level ones (a missing object, an aborted request, a bad key or range) are
 * `STORAGE_ERROR` there; the caller decides when a missing object means more.
 */
export function storageFailureCode(code: StorageErrorCode): StorageFailureCode {
  return code === "NOT_FOUND" || code === "ABORTED" || code === "INVALID_KEY" || code === "INVALID_RANGE" ? "STORAGE_ERROR" : code;
}

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StorageError";
  }
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ConnectionRefused", "FailedToOpenSocket"]);

/** Maps an AWS SDK (or network) error to a storage code. Messages never carry credentials. */
export function classifyS3Error(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  // The endpoint's address is refused by the outbound policy, or its name does not resolve.
  const outbound = outboundErrorOf(err);
  if (outbound) return new StorageError("STORAGE_UNREACHABLE", `${what}: the storage endpoint is unreachable: ${outbound.message}`, { cause: err });
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? "";
  const status = e?.$metadata?.httpStatusCode;
  if (name === "AbortError") return new StorageError("ABORTED", `${what}: aborted`, { cause: err });
  if (name === "NoSuchBucket") return new StorageError("BUCKET_NOT_FOUND", `${what}: the bucket does not exist`, { cause: err });
  if (name === "NoSuchKey" || name === "NotFound") return new StorageError("NOT_FOUND", `${what}: no such object`, { cause: err });
  if (status === 403 || ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "Forbidden"].includes(name)) {
    return new StorageError("ACCESS_DENIED", `${what}: access denied (${name || status})`, { cause: err });
  }
  if (status === 404) return new StorageError("NOT_FOUND", `${what}: not found`, { cause: err });
  const netCode = e?.code ?? (e as { cause?: { code?: string } })?.cause?.code;
  if ((netCode && NETWORK_CODES.has(netCode)) || name === "TimeoutError" || name === "RequestTimeout") {
    return new StorageError("STORAGE_UNREACHABLE", `${what}: the storage endpoint is unreachable (${netCode ?? name})`, {
      cause: err,
    });
  }
  if (status === undefined && !name.match(/^[A-Z][A-Za-z]+$/)) {
    return new StorageError("STORAGE_UNREACHABLE", `${what}: ${e?.message ?? "request failed"}`, { cause: err });
  }
  return new StorageError("STORAGE_ERROR", `${what}: ${name || "error"}${status ? ` (HTTP ${status})` : ""}`, { cause: err });
}

/** Maps a filesystem error to a storage code. */
export function classifyFsError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ENOENT") return new StorageError("NOT_FOUND", `${what}: not found`, { cause: err });
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new StorageError("ACCESS_DENIED", `${what}: permission denied`, { cause: err });
  }
  // A full disk reached the job as a bare "ENOSPC" (this wrapper ran before job-error.ts's
  // out-of-space rule could see it): say what the operator must fix. Still STORAGE_ERROR and
  // retryable, since retention or the operator may free space before the retry.
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new StorageError("STORAGE_ERROR", `${what}: the destination is out of space (${code})`, { cause: err });
  }
  return new StorageError("STORAGE_ERROR", `${what}: ${code ?? "I/O error"}`, { cause: err });
}
