import { SecretDecryptError } from "../crypto/secrets.ts";
import { DumpSetupError } from "../engines/dump.ts";
import { ProbeError } from "../engines/network.ts";
import { ToolFailedError } from "../engines/tool-stream.ts";
import { outboundErrorOf } from "../net/outbound-policy.ts";
import type { JobErrorCode } from "../lib/failure-codes.ts";
import { StorageError, storageFailureCode } from "../storage/errors.ts";

/** Why a job's AbortController fired: decides the code whatever error the pipeline surfaced. */
export type AbortReason = "canceled" | "timeout" | "shutdown";

export interface JobFailure {
  code: JobErrorCode;
  message: string;
  /** Worth another attempt (with backoff) when the policy has retries left. */
  retryable: boolean;
}

/** A dump that failed because the server went away is worth retrying; a SQL error is not. */
const TRANSIENT_DUMP = /could not connect|connection refused|connection reset|lost connection|server closed the connection|can't connect|gone away|timeout expired|too many connections/i;

const STORAGE_RETRYABLE = new Set(["STORAGE_UNREACHABLE", "STORAGE_ERROR", "ABORTED"]);

export class JobSetupError extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = "JobSetupError";
  }
}

const clip = (text: string, max = 2000) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** How long a backup may run, and which setting said so. */
export interface JobTimeout {
  seconds: number;
  /** The operator's runner.maxTimeoutSeconds cut the policy's timeoutSeconds. */
  capped: boolean;
}

/** A policy's timeoutSeconds under the operator's ceiling (policies written before it was lowered may exceed it). */
export function effectiveTimeout(policySeconds: number, ceilingSeconds: number): JobTimeout {
  return policySeconds > ceilingSeconds ? { seconds: ceilingSeconds, capped: true } : { seconds: policySeconds, capped: false };
}

/** Turns whatever ended a job into the `job.error` it reports. Messages carry no secrets. */
export function classifyJobFailure(err: unknown, aborted: AbortReason | null, timeout?: JobTimeout): JobFailure {
  if (aborted === "canceled") return { code: "CANCELED", message: "the job was canceled", retryable: false };
  if (aborted === "timeout") {
    const limit = timeout?.capped ? `runner.maxTimeoutSeconds (${timeout.seconds}), the daemon's ceiling on the policy's timeoutSeconds` : `the policy's timeoutSeconds (${timeout?.seconds})`;
    return { code: "TIMEOUT", message: `the job ran longer than ${limit}`, retryable: true };
  }
  if (aborted === "shutdown") return { code: "INTERRUPTED", message: "the daemon shut down while the job ran", retryable: true };
  if (err instanceof JobSetupError) return { code: err.code, message: clip(err.message), retryable: err.retryable };
  if (err instanceof DumpSetupError) return { code: err.code, message: clip(err.message), retryable: false };
  if (err instanceof ToolFailedError) {
    // A backup's chain has no restore tool: RESTORE_FAILED cannot reach here, and is no job code.
    const code = err.code === "RESTORE_FAILED" ? "INTERNAL" : err.code;
    return { code, message: clip(err.message), retryable: TRANSIENT_DUMP.test(err.stderr) };
  }
  // The source's host is unreachable as configured: a name that did not resolve may next
  // time; an address the outbound policy refuses will not.
  if (err instanceof ProbeError) {
    return { code: err.verifyError.code, message: clip(err.verifyError.message), retryable: outboundErrorOf(err)?.kind !== "denied" };
  }
  if (err instanceof StorageError) {
    const code = storageFailureCode(err.code);
    if (outboundErrorOf(err)?.kind === "denied") return { code, message: clip(err.message), retryable: false };
    return { code, message: clip(err.message), retryable: STORAGE_RETRYABLE.has(err.code) };
  }
  if (err instanceof SecretDecryptError) return { code: "SECRET_UNREADABLE", message: err.message, retryable: false };
  const message = err instanceof Error ? err.message : String(err);
  if (/ENOSPC|no space left/i.test(message)) return { code: "STORAGE_ERROR", message: "the destination is out of space", retryable: false };
  return { code: "INTERNAL", message: "unexpected error in the backup pipeline (see the daemon log)", retryable: false };
}

/** Exponential backoff: base, 2·base, 4·base, … capped at one hour. */
export function retryDelayMs(baseSeconds: number, attempt: number): number {
  return Math.min(3600, baseSeconds * 2 ** Math.max(0, attempt - 1)) * 1000;
}
