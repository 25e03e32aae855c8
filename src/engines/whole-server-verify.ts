import { pinTarget, ProbeError } from "./network.ts";
import { checkPgDump } from "./postgres.ts";
import { engineFor } from "./registry.ts";
import { verifyFailure, type EngineEnv, type SourceTarget, type VerifyResult } from "./types.ts";
import { GLOBALS_PART, globalsReadable, listServerDatabases, unreadableDatabases } from "./whole-server.ts";

/**
 * Verify of a whole-server source: the engine's own checks against the server (PostgreSQL
 * logs into `postgres`, else `template1`; MySQL into no database), `pg_dumpall` for the
 * globals, then the databases a backup would take now and those of them the login cannot
 * read (and `:globals` when it cannot dump the roles/users). Anything unreadable makes it
 * `ok: false` (DATABASE_UNREADABLE): the backup would fail on it.
 */
export async function verifyWholeServer(target: SourceTarget, env: EngineEnv): Promise<VerifyResult> {
  const engine = engineFor(target.engine);
  let result = await engine.verify({ ...target, database: target.engine === "postgres" ? "postgres" : "information_schema" }, env);
  if (!result.ok && result.error.code === "DATABASE_NOT_FOUND" && target.engine === "postgres") {
    result = await engine.verify({ ...target, database: "template1" }, env);
  }
  if (!result.ok) return result;
  const measured = { latencyMs: result.latencyMs, serverVersion: result.serverVersion };
  if (target.engine === "postgres") {
    const tool = await checkPgDump(env, Number.parseInt(result.serverVersion, 10), "pg_dumpall");
    if (tool) return verifyFailure(tool.code, tool.message, measured);
  }
  const timeoutSeconds = Math.max(1, Math.ceil(env.timeoutMs / 1000));
  try {
    const pinned = await pinTarget(target, env.outbound, "verify");
    const databases = (await listServerDatabases(pinned, { timeoutSeconds })).map((d) => d.name);
    const unreadable = await unreadableDatabases(pinned, databases, timeoutSeconds);
    // The globals are a part too: named by their part name when the login cannot dump them.
    if (!(await globalsReadable(pinned, timeoutSeconds))) unreadable.unshift(GLOBALS_PART);
    // Its part name would clash with the globals': never backed up under a confusable name.
    if (databases.includes(GLOBALS_PART) && !unreadable.includes(GLOBALS_PART)) unreadable.push(GLOBALS_PART);
    if (unreadable.length) {
      const list = unreadable.map((d) => JSON.stringify(d)).join(", ");
      const globals = unreadable.includes(GLOBALS_PART) ? ` (${GLOBALS_PART}: the roles/users and grants)` : "";
      return {
        ...verifyFailure("DATABASE_UNREADABLE", `the login cannot read ${list}${globals}: a backup would fail; grant it access, or list databases in excludeDatabases`, measured),
        databases,
        unreadable,
      };
    }
    return { ok: true, ...measured, databases, unreadable };
  } catch (err) {
    if (err instanceof ProbeError) return { ok: false, ...measured, error: err.verifyError };
    throw err;
  }
}
