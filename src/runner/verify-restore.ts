import { runChecks, type CheckResult, type CheckSpec } from "../engines/checks.ts";
import { countTables, type Fingerprint } from "../engines/fingerprint.ts";
import { RestoreSetupError } from "../engines/restore.ts";
import { inspectSqlite } from "../engines/sqlite-inspect.ts";
import type { SourceTarget } from "../engines/types.ts";

/** A restore plan run's verification, as the restore shows it. */
export interface Verification {
  status: "passed" | "failed";
  fingerprint: boolean;
  tables: number;
  rowsCompared: number;
  mismatches: { table: string; expected: number; found: number | null }[];
  checks: CheckResult[];
  durationMs: number;
}

/** Where the restored data is: a database on a pinned network target, or a SQLite file. */
export interface RestoredAt {
  target: SourceTarget;
  database: string | null;
  sqlitePath: string | null;
}

const SQLITE_COUNT_TIMEOUT_MS = 3_600_000;

async function countRestored(at: RestoredAt, signal: AbortSignal): Promise<Record<string, number>> {
  if (at.target.engine !== "sqlite") return countTables(at.target, at.database!, signal);
  const r = await inspectSqlite(at.sqlitePath!, { count: true }, { timeoutMs: SQLITE_COUNT_TIMEOUT_MS, signal }).catch((err: Error) => {
    throw new RestoreSetupError("VERIFICATION_FAILED", `could not count the rows of the restored tables: ${err.message}`);
  });
  return r.tables ?? {};
}

/**
 * Compares the restored database with the backup: every table of the backup's fingerprint
 * must exist and hold exactly its rows (tables the target holds besides are not the
 * backup's business: a refreshed PostgreSQL target keeps tables the archive does not
 * name), then the plan's checks run. Without a fingerprint, only the checks decide.
 */
export async function verifyRestored(at: RestoredAt, fingerprint: Fingerprint | null, checks: CheckSpec[], signal: AbortSignal): Promise<Omit<Verification, "durationMs">> {
  const counts = await countRestored(at, signal);
  const mismatches: Verification["mismatches"] = [];
  let rowsCompared = 0;
  if (fingerprint) {
    for (const [table, expected] of Object.entries(fingerprint.tables).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const found = counts[table];
      if (found === undefined) {
        mismatches.push({ table, expected, found: null });
        continue;
      }
      rowsCompared += found;
      if (found !== expected) mismatches.push({ table, expected, found });
    }
  }
  const checked = await runChecks(at, checks, signal);
  return {
    status: mismatches.length === 0 && checked.every((c) => c.ok) ? "passed" : "failed",
    fingerprint: fingerprint !== null,
    tables: fingerprint ? Object.keys(fingerprint.tables).length : Object.keys(counts).length,
    rowsCompared,
    mismatches,
    checks: checked,
  };
}

/** The verification of a run whose restore failed before anything could be checked. */
export const notVerified = (fingerprint: boolean, durationMs: number): Verification => ({
  status: "failed",
  fingerprint,
  tables: 0,
  rowsCompared: 0,
  mismatches: [],
  checks: [],
  durationMs,
});

/** One sentence on why a verification failed, for the restore's error message. */
export function failureSummary(v: Omit<Verification, "durationMs">, specs: CheckSpec[]): string {
  const parts: string[] = [];
  const shown = v.mismatches.slice(0, 5).map((m) => (m.found === null ? `${m.table} is missing (${m.expected} rows expected)` : `${m.table} has ${m.found} rows, the backup ${m.expected}`));
  if (v.mismatches.length) parts.push(`${v.mismatches.length} of ${v.tables} tables differ from the backup's fingerprint: ${shown.join("; ")}${v.mismatches.length > 5 ? "; …" : ""}`);
  const failed = v.checks.filter((c) => !c.ok);
  if (failed.length) {
    const expected = (name: string) => JSON.stringify(specs.find((s) => s.name === name)?.expect ?? "");
    const said = failed.slice(0, 5).map((c) => (c.error ? `${c.name}: ${c.error}` : `${c.name}: expected ${expected(c.name)}, found ${c.found === null ? "no value" : JSON.stringify(c.found)}`));
    parts.push(`${failed.length} of ${v.checks.length} checks failed: ${said.join("; ")}${failed.length > 5 ? "; …" : ""}`);
  }
  return parts.join("; ");
}
