import { statSync } from "node:fs";
import { inspectSqlite } from "./sqlite-inspect.ts";
import { verifyFailure, type Engine, type SourceTarget, type VerifyResult } from "./types.ts";

/**
 * A SQLite source is a file on the daemon's host. Verify opens it read-only (never creating
 * it) and reads the schema, which is what fails for a file that is not a database. Dumps
 * use bun:sqlite's own online backup, so there is no external tool to check.
 */
export const sqliteEngine: Engine = {
  name: "sqlite",
  defaultPort: null,
  dumpTools: [],
  async verify(target: SourceTarget): Promise<VerifyResult> {
    const path = target.path ?? "";
    const started = performance.now();
    try {
      if (!statSync(path).isFile()) return verifyFailure("DATABASE_NOT_FOUND", `${path} is not a regular file`);
    } catch {
      return verifyFailure("DATABASE_NOT_FOUND", `${path} does not exist or is not readable by the daemon`);
    }
    // In a child (sqlite-inspect.ts): a file swapped for a FIFO would block the open, and a
    // blocked open on the daemon's thread would stop the whole daemon.
    const r = await inspectSqlite(path, { verify: true }, { timeoutMs: (target.options.connectTimeoutSeconds ?? 10) * 1000 }).catch((err: Error) => ({
      error: err.message,
      version: undefined,
    }));
    if (r.error !== undefined || !r.version) return verifyFailure("DATABASE_NOT_FOUND", `${path} does not open as a SQLite database: ${r.error ?? "no answer"}`);
    return { ok: true, latencyMs: Math.max(0, Math.round(performance.now() - started)), serverVersion: r.version };
  },
};
