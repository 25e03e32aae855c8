import { createHash } from "node:crypto";
import type { Database } from "bun:sqlite";

/**
 * A fingerprint of every table of the store (row count and a hash of its rows), the audit
 * log included: equal before and after a rejected request means it changed nothing.
 */
export function storeFingerprint(sqlite: Database): Record<string, string> {
  const tables = sqlite
    .query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { name: string }[];
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    const rows = sqlite.query(`SELECT * FROM "${name}"`).all();
    const lines = rows.map((r) => JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v))).sort();
    out[name] = `${rows.length}:${createHash("sha256").update(lines.join("\n")).digest("hex").slice(0, 16)}`;
  }
  return out;
}

/**
 * The cheap per-request check: the rows SQLite wrote on this connection so far
 * (`total_changes()` counts every row inserted, updated or deleted, even an update to the
 * same value) and each table's row count. The app writes through this one connection, so
 * an unchanged value proves a request wrote nothing; hashing every row per request got
 * slow once the fuzzer had stored a few hundred 60 KiB values.
 */
export function writeCounter(sqlite: Database): string {
  const tables = sqlite
    .query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { name: string }[];
  const counts = tables.map(({ name }) => `${name}=${(sqlite.query(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n}`);
  const changes = (sqlite.query("SELECT total_changes() AS n").get() as { n: number }).n;
  return `changes=${changes} ${counts.join(" ")}`;
}

/** `PRAGMA integrity_check` and `foreign_key_check`: "ok" and no violations. */
export function storeConsistency(sqlite: Database): { integrity: string; foreignKeyViolations: unknown[] } {
  const integrity = (sqlite.query("PRAGMA integrity_check").all() as { integrity_check: string }[]).map((r) => r.integrity_check).join("; ");
  const foreignKeyViolations = sqlite.query("PRAGMA foreign_key_check").all();
  return { integrity, foreignKeyViolations };
}
