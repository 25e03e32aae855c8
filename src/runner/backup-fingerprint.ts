import { isJobErrorCode } from "../lib/failure-codes.ts";
import type { DumpEnv } from "../engines/dump.ts";
import { FingerprintError, mysqlFingerprint, openPgSnapshot, type Fingerprint, type PgSnapshot } from "../engines/fingerprint.ts";
import { RestoreSetupError } from "../engines/restore.ts";
import { inspectSqlite } from "../engines/sqlite-inspect.ts";
import type { SourceTarget } from "../engines/types.ts";
import { JobSetupError } from "./job-error.ts";

/** Counting rows of a SQLite snapshot: bounded like a check, generous (it reads the whole file). */
const SQLITE_COUNT_TIMEOUT_MS = 3_600_000;

/**
 * A backup's fingerprint (policy `fingerprint: true`), taken in the dump's own snapshot:
 * - PostgreSQL: a REPEATABLE READ transaction exports its snapshot, counts every table in
 *   it, and stays open while pg_dump runs with `--snapshot=<id>`; closed when the backup is
 *   over (`await using`), whatever its outcome;
 * - MySQL/MariaDB: counted in a consistent-snapshot transaction just before the dump (see
 *   mysqlFingerprint for what that promises);
 * - SQLite: counted in the snapshot file the dump then streams.
 * `dumpEnv` is the environment the dump must run with; `result()` is the fingerprint once
 * the dump has been made (null when the policy does not ask for one).
 */
export interface BackupFingerprint extends AsyncDisposable {
  dumpEnv: DumpEnv;
  result(): Fingerprint | null;
}

const SNAPSHOT_ID = /^[0-9A-Fa-f-]{1,64}$/;

function asJobError(err: unknown): unknown {
  if (err instanceof FingerprintError) return new JobSetupError("FINGERPRINT_FAILED", err.message, true);
  if (err instanceof RestoreSetupError) return new JobSetupError(isJobErrorCode(err.code) ? err.code : "FINGERPRINT_FAILED", err.message);
  return err;
}

export async function takeFingerprint(enabled: boolean, target: SourceTarget, env: DumpEnv, signal: AbortSignal): Promise<BackupFingerprint> {
  const none: BackupFingerprint = { dumpEnv: env, result: () => null, [Symbol.asyncDispose]: async () => {} };
  if (!enabled) return none;
  if (target.engine === "sqlite") {
    let fingerprint: Fingerprint | null = null;
    const onSqliteSnapshot = async (path: string) => {
      const takenAt = Date.now();
      const counted = await inspectSqlite(path, { count: true }, { timeoutMs: SQLITE_COUNT_TIMEOUT_MS, signal }).catch((err: Error) => {
        throw new JobSetupError("FINGERPRINT_FAILED", `could not count the rows of the snapshot: ${err.message}`, true);
      });
      fingerprint = { tables: counted.tables ?? {}, takenAt };
    };
    return { dumpEnv: { ...env, onSqliteSnapshot }, result: () => fingerprint, [Symbol.asyncDispose]: async () => {} };
  }
  const database = target.database ?? "";
  if (target.engine === "postgres") {
    let session: PgSnapshot;
    try {
      session = await openPgSnapshot(target, database);
    } catch (err) {
      throw asJobError(err);
    }
    if (!SNAPSHOT_ID.test(session.snapshot)) {
      await session.close();
      throw new JobSetupError("FINGERPRINT_FAILED", `unexpected snapshot id from the server: ${JSON.stringify(session.snapshot.slice(0, 80))}`);
    }
    return { dumpEnv: { ...env, pgSnapshot: session.snapshot }, result: () => session.fingerprint, [Symbol.asyncDispose]: () => session.close() };
  }
  try {
    const fingerprint = await mysqlFingerprint(target, database, signal);
    return { dumpEnv: env, result: () => fingerprint, [Symbol.asyncDispose]: async () => {} };
  } catch (err) {
    throw asJobError(err);
  }
}
