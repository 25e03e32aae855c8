import { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import { SQLITE_READONLY_NOFOLLOW } from "./sqlite-path.ts";
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
    let db: Database | null = null;
    try {
      // The checked real path (sqlite-path.ts): a symlink swapped in since is not followed.
      db = new Database(path, SQLITE_READONLY_NOFOLLOW);
      db.query("SELECT count(*) AS n FROM sqlite_master").get();
      const row = db.query("SELECT sqlite_version() AS v").get() as { v: string };
      return { ok: true, latencyMs: Math.max(0, Math.round(performance.now() - started)), serverVersion: row.v };
    } catch (err) {
      return verifyFailure("DATABASE_NOT_FOUND", `${path} does not open as a SQLite database: ${(err as Error).message}`);
    } finally {
      db?.close();
    }
  },
};
