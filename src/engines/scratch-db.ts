import { RestoreSetupError, withConnection } from "./restore.ts";
import type { SourceTarget } from "./types.ts";

/**
 * Scratch databases of restore drills: `snapdb_drill_<the restore id's ULID, lower case>` on
 * the target's server. The name ties a leftover (after a crash) to the drill that made it,
 * so the daemon only ever drops scratch databases of its own drills that are over.
 */
export const SCRATCH_PREFIX = "snapdb_drill_";

const SCRATCH_NAME = /^snapdb_drill_[0-9a-z]{26}$/;

export const scratchNameOf = (restoreId: string) => `${SCRATCH_PREFIX}${restoreId.slice(restoreId.indexOf("_") + 1).toLowerCase()}`;

/** The restore a scratch name belongs to, or null for a name snapdb does not make. */
export const restoreIdOfScratch = (name: string): string | null => (SCRATCH_NAME.test(name) ? `rst_${name.slice(SCRATCH_PREFIX.length).toUpperCase()}` : null);

const quotePg = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteMy = (name: string) => `\`${name.replace(/`/g, "``")}\``;

/**
 * Drops a scratch database, if it exists, with the target's credentials. PostgreSQL:
 * `WITH (FORCE)` ends sessions still in it (a killed pg_restore's backend may linger).
 * Refuses any name that is not a scratch name: this never drops a user's database.
 */
export async function dropScratchDatabase(target: SourceTarget, name: string, signal?: AbortSignal): Promise<void> {
  if (!SCRATCH_NAME.test(name)) throw new RestoreSetupError("INVALID_TARGET", `refusing to drop ${JSON.stringify(name)}: not a drill's scratch database`);
  if (target.engine === "postgres") {
    await withConnection(target, "postgres", signal, async (sql) => {
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${quotePg(name)} WITH (FORCE)`);
      } catch (err) {
        // Before PostgreSQL 13 there is no FORCE: end the sessions by hand, then drop.
        if ((err as { errno?: string }).errno !== "42601") throw err;
        await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid()`;
        await sql.unsafe(`DROP DATABASE IF EXISTS ${quotePg(name)}`);
      }
    });
    return;
  }
  await withConnection(target, "information_schema", signal, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${quoteMy(name)}`));
}

/** The scratch databases on a target's server now (names only). */
export async function listScratchDatabases(target: SourceTarget, signal?: AbortSignal): Promise<string[]> {
  const pattern = `${SCRATCH_PREFIX.replace(/_/g, "\\_")}%`;
  const rows =
    target.engine === "postgres"
      ? await withConnection(target, "postgres", signal, (sql) => sql`SELECT datname AS name FROM pg_database WHERE datname LIKE ${pattern}`)
      : await withConnection(target, "information_schema", signal, (sql) => sql`SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE ${pattern}`);
  return (rows as { name: string }[]).map((r) => r.name).filter((n) => SCRATCH_NAME.test(n));
}
