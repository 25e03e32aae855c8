import { AppError, invalidInput } from "../../lib/errors.ts";
import { canonicalZone, CRON_MESSAGE, cronProblem, normaliseCron } from "../../scheduler/cron.ts";
import { isAgeRecipient } from "./age-recipient.ts";

/** A policy's nested settings as stored: every field present. */
export interface StoredRetention {
  keepLast: number;
  keepHourly: number;
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  keepYearly: number;
  maxAgeDays: number | null;
}
export type Algorithm = "zstd" | "gzip" | "none";
export type PolicyMethod = "logical" | "physical";
export interface StoredCompression {
  algorithm: Algorithm;
  level: number;
}
export interface StoredEncryption {
  enabled: boolean;
  recipients: string[];
}

export const DEFAULTS = {
  timezone: "UTC",
  compression: { algorithm: "zstd", level: 3 } as StoredCompression,
  encryption: { enabled: true, recipients: [] } as StoredEncryption,
  timeoutSeconds: 86_400,
  retries: 2,
};

const LEVELS: Record<Algorithm, { min: number; max: number; default: number }> = {
  zstd: { min: 1, max: 19, default: 3 },
  gzip: { min: 1, max: 9, default: 6 },
  none: { min: 0, max: 0, default: 0 },
};

/**
 * A policy's timeout under the operator's ceiling (runner.maxTimeoutSeconds): above it is
 * refused; left out, the default is cut to the ceiling.
 */
export function checkTimeout(seconds: number | undefined, ceiling: number): number {
  const value = seconds ?? Math.min(DEFAULTS.timeoutSeconds, ceiling);
  if (value > ceiling) {
    throw invalidInput("/timeoutSeconds", `timeoutSeconds must be at most ${ceiling}: this daemon's runner.maxTimeoutSeconds (${ceiling}) is the ceiling for backup timeouts`);
  }
  return value;
}

export function checkCron(expression: string): string {
  const problem = cronProblem(expression);
  if (problem) {
    // The fixed sentence first (clients match on it), then what exactly is wrong.
    const message = `${CRON_MESSAGE}: ${problem}`;
    throw new AppError("INVALID_INPUT", message, [{ path: "/scheduleCron", message }]);
  }
  return normaliseCron(expression);
}

export function checkZone(zone: string): string {
  const canonical = canonicalZone(zone);
  if (!canonical) throw invalidInput("/timezone", `timezone must be an IANA time zone name such as Europe/Berlin, not ${JSON.stringify(zone)}`);
  return canonical;
}

type RetentionInput = Partial<Record<keyof StoredRetention, number | null>>;

const COUNT_FIELDS = ["keepLast", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly"] as const;
export const MAX_KEEP = 100_000;
export const MAX_AGE_DAYS = 36_500;

/**
 * A stored retention as the API shows it. Policies written before `keepHourly` existed lack
 * it; absent means 0 (the rule is off), which is what they meant.
 */
export function storedRetention(raw: unknown): StoredRetention {
  const r = (raw ?? {}) as Partial<StoredRetention>;
  return {
    keepLast: r.keepLast ?? 0,
    keepHourly: r.keepHourly ?? 0,
    keepDaily: r.keepDaily ?? 0,
    keepWeekly: r.keepWeekly ?? 0,
    keepMonthly: r.keepMonthly ?? 0,
    keepYearly: r.keepYearly ?? 0,
    maxAgeDays: r.maxAgeDays ?? null,
  };
}

export function checkRetention(input: RetentionInput): StoredRetention {
  const stored = storedRetention(input);
  // The route schema checks these too; this keeps the rule where the service can't be bypassed.
  for (const field of COUNT_FIELDS) {
    const n = stored[field];
    if (!Number.isInteger(n) || n < -1 || n > MAX_KEEP) {
      throw invalidInput(`/retention/${field}`, `${field} must be an integer from -1 (no limit) to ${MAX_KEEP}`);
    }
  }
  const { maxAgeDays } = stored;
  if (maxAgeDays !== null && (!Number.isInteger(maxAgeDays) || maxAgeDays < 1 || maxAgeDays > MAX_AGE_DAYS)) {
    throw invalidInput("/retention/maxAgeDays", `maxAgeDays must be an integer from 1 to ${MAX_AGE_DAYS}, or null`);
  }
  if (COUNT_FIELDS.every((f) => stored[f] === 0) && maxAgeDays === null) {
    throw invalidInput("/retention", "retention needs at least one rule that keeps something (keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly or maxAgeDays)");
  }
  return stored;
}

export function checkCompression(input: { algorithm?: Algorithm; level?: number }, base?: StoredCompression): StoredCompression {
  const algorithm = input.algorithm ?? base?.algorithm ?? DEFAULTS.compression.algorithm;
  const range = LEVELS[algorithm];
  if (algorithm === "none") return { algorithm, level: 0 };
  // A level only carries over when the algorithm does; switching algorithm resets to its default.
  const level = input.level ?? (base && base.algorithm === algorithm ? base.level : range.default);
  if (level < range.min || level > range.max) {
    throw invalidInput("/compression/level", `${algorithm} level must be from ${range.min} to ${range.max}`);
  }
  return { algorithm, level };
}

/** `fastCheckpoint` is a pg_basebackup option: refused (not ignored) on a logical policy. */
export function checkFastCheckpoint(method: PolicyMethod, fastCheckpoint: boolean | undefined): boolean {
  if (fastCheckpoint && method !== "physical") throw invalidInput("/fastCheckpoint", "fastCheckpoint applies to policies with method physical only");
  return fastCheckpoint ?? false;
}

/**
 * A policy's method is fixed: its backups (dumps or base backups with their WAL) are one
 * kind, and retention treats them as one series.
 */
export function checkMethodUnchanged(before: PolicyMethod, patch: PolicyMethod | undefined): PolicyMethod {
  if (patch !== undefined && patch !== before) {
    throw invalidInput("/method", `method cannot change (this policy is ${before}); create a new policy with method ${patch} and attach that one`);
  }
  return before;
}

export function checkEncryption(input: { enabled?: boolean; recipients?: string[] }, base?: StoredEncryption): StoredEncryption {
  const enabled = input.enabled ?? base?.enabled ?? true;
  const recipients = [...new Set(input.recipients ?? base?.recipients ?? [])];
  recipients.forEach((r, i) => {
    if (!isAgeRecipient(r)) throw invalidInput(`/encryption/recipients/${i}`, "recipients must be age X25519 public keys (age1…)");
  });
  if (!enabled && recipients.length) {
    throw invalidInput("/encryption/recipients", "recipients need encryption.enabled = true");
  }
  return { enabled, recipients };
}
