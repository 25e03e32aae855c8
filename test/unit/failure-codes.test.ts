import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SecretDecryptError } from "../../src/crypto/secrets.ts";
import { DumpSetupError } from "../../src/engines/dump.ts";
import { ProbeError } from "../../src/engines/network.ts";
import { RestoreSetupError } from "../../src/engines/restore.ts";
import { ToolFailedError } from "../../src/engines/tool-stream.ts";
import { ERROR_CODES } from "../../src/lib/errors.ts";
import { FILE_CHECK_CODES, JOB_ERROR_CODES, RESTORE_ERROR_CODES, SOURCE_CHECK_CODES } from "../../src/lib/failure-codes.ts";
import { classifyJobFailure, JobSetupError, type AbortReason } from "../../src/runner/job-error.ts";
import { classifyRestoreFailure } from "../../src/runner/restore-run.ts";
import { StorageError, type StorageErrorCode } from "../../src/storage/errors.ts";
import { REPO_ROOT } from "../helpers/daemon.ts";

/**
 * The `error.code` lists the API enumerates (src/lib/failure-codes.ts) hold every code the
 * runner can write. The row types already refuse an unlisted code at compile time; these
 * tests look from the other side: what the classifiers make of every error they can meet,
 * and every code literal the code-producing sources write.
 */

// Records over the code types: a code added to one of them and not here does not compile.
const STORAGE_CODES: Record<StorageErrorCode, true> = {
  NOT_FOUND: true,
  BUCKET_NOT_FOUND: true,
  ACCESS_DENIED: true,
  STORAGE_UNREACHABLE: true,
  ASSUME_ROLE_FAILED: true,
  INVALID_KEY: true,
  INVALID_RANGE: true,
  ABORTED: true,
  STORAGE_ERROR: true,
};
const TOOL_CODES: Record<ToolFailedError["code"], true> = { DUMP_FAILED: true, RESTORE_FAILED: true, COMPRESSION_FAILED: true, ENCRYPTION_FAILED: true };
const DUMP_SETUP_CODES: Record<DumpSetupError["code"], true> = { DUMP_TOOL_MISSING: true, AUTH_FAILED: true, DUMP_FAILED: true };

/** Every kind of error a backup or restore pipeline can end with. */
function everyFailure(): unknown[] {
  return [
    ...Object.keys(STORAGE_CODES).map((c) => new StorageError(c as StorageErrorCode, "x")),
    ...Object.keys(TOOL_CODES).map((c) => new ToolFailedError(c as ToolFailedError["code"], "tool", 1, "")),
    ...Object.keys(DUMP_SETUP_CODES).map((c) => new DumpSetupError(c as DumpSetupError["code"], "x")),
    ...SOURCE_CHECK_CODES.map((code) => new ProbeError({ code, message: "x" })),
    new SecretDecryptError("x"),
    new Error("ENOSPC: no space left on device"),
    new Error("anything else"),
    "not even an Error",
  ];
}
const REASONS: (AbortReason | null)[] = [null, "canceled", "timeout", "shutdown"];

describe("failure codes", () => {
  test("a backup job's error, whatever ended it, has a listed code", () => {
    const codes = new Set<string>();
    for (const reason of REASONS) for (const err of [...everyFailure(), ...JOB_ERROR_CODES.map((c) => new JobSetupError(c, "x"))]) codes.add(classifyJobFailure(err, reason).code);
    expect([...codes].filter((c) => !(JOB_ERROR_CODES as readonly string[]).includes(c))).toEqual([]);
  });

  test("a restore's error, whatever ended it, has a listed code", () => {
    const codes = new Set<string>();
    for (const reason of REASONS) for (const err of [...everyFailure(), ...RESTORE_ERROR_CODES.map((c) => new RestoreSetupError(c, "x"))]) codes.add(classifyRestoreFailure(err, reason, 60).code);
    expect([...codes].filter((c) => !(RESTORE_ERROR_CODES as readonly string[]).includes(c))).toEqual([]);
  });

  test("every code literal the runner, engines, storage and job/restore services write is listed", () => {
    const listed = new Set<string>([
      ...JOB_ERROR_CODES,
      ...RESTORE_ERROR_CODES,
      ...FILE_CHECK_CODES,
      ...ERROR_CODES, // AppError answers of the services
      ...Object.keys(STORAGE_CODES), // driver codes, mapped by storageFailureCode before they reach a row
      "ENOSPC", // an errno the local driver raises for classifyFsError to read
    ]);
    // Where a code is made: `code: "X"`, `new SomeError("X"`, `errorCode: "X"`, `fail("X"`, `verifyFailure("X"`, `tagged(stream, "X")`.
    const made = /(?:\bcode: |new \w+Error\(|errorCode: |\bfail\(|verifyFailure\(|tagged\([^,()]+, )"([A-Z][A-Z0-9_]+)"/g;
    const dirs = ["src/runner", "src/engines", "src/storage", "src/modules/jobs", "src/modules/restores", "src/modules/data-sources", "src/modules/destinations"];
    const unlisted: string[] = [];
    let found = 0;
    for (const dir of dirs) {
      for (const name of readdirSync(join(REPO_ROOT, dir))) {
        if (!name.endsWith(".ts")) continue;
        const text = readFileSync(join(REPO_ROOT, dir, name), "utf8");
        for (const m of text.matchAll(made)) {
          found++;
          if (!listed.has(m[1]!)) unlisted.push(`${dir}/${name}: ${m[1]}`);
        }
      }
    }
    expect(found).toBeGreaterThan(100);
    expect(unlisted).toEqual([]);
  });

  test("each list names a code once", () => {
    for (const list of [JOB_ERROR_CODES, RESTORE_ERROR_CODES, FILE_CHECK_CODES, ERROR_CODES]) expect(new Set(list).size).toBe(list.length);
  });
});
