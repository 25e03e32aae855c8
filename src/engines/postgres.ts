import { findTool, runTool } from "./process.ts";
import { leadingVersion, probeServer, ProbeError } from "./network.ts";
import { verifyFailure, type Engine, type EngineEnv, type SourceTarget, type VerifyResult } from "./types.ts";

/** `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → 15. */
export function pgToolMajor(versionLine: string): number | null {
  const m = /\)\s+(\d+)(?:\.(\d+))?/.exec(versionLine) ?? /(\d+)\.\d+/.exec(versionLine);
  return m ? Number(m[1]) : null;
}

/**
 * pg_dump refuses a server newer than itself, so it must be at least the server's major
 * (an older pg_dump would fail every backup with "server version mismatch").
 */
export async function checkPgDump(env: EngineEnv, serverMajor: number, name: "pg_dump" | "pg_dumpall" = "pg_dump") {
  const tool = findTool(name, env.toolPath);
  if (!tool) return { code: "DUMP_TOOL_MISSING" as const, message: `${name} is not on the daemon's PATH (${env.toolPath}); install postgresql-client-${serverMajor} or newer` };
  const run = await runTool([tool, "--version"], { toolPath: env.toolPath, timeoutMs: Math.min(env.timeoutMs, 10_000) });
  const major = run.exitCode === 0 ? pgToolMajor(run.stdout) : null;
  if (major === null) return { code: "DUMP_TOOL_MISSING" as const, message: `${tool} --version did not answer with a version: ${run.stderrTail || run.stdout}`.trim() };
  if (major < serverMajor) {
    return { code: "DUMP_TOOL_TOO_OLD" as const, message: `${tool} is version ${major}, the server is ${serverMajor}: ${name} must be at least the server's major version` };
  }
  return null;
}

export const postgresEngine: Engine = {
  name: "postgres",
  defaultPort: 5432,
  dumpTools: ["pg_dump"],
  async verify(target: SourceTarget, env: EngineEnv): Promise<VerifyResult> {
    if (!target.credentials) return verifyFailure("AUTH_FAILED", "no credentials are set: PUT /data-sources/{id}/credentials first");
    try {
      const probe = await probeServer(target, "SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num", env.timeoutMs, env.outbound);
      const row = probe.rows[0] ?? {};
      const serverVersion = leadingVersion(String(row.version ?? ""));
      const serverMajor = Math.floor(Number(row.num) / 10000);
      const tool = await checkPgDump(env, serverMajor);
      if (tool) return verifyFailure(tool.code, tool.message, { latencyMs: probe.latencyMs, serverVersion });
      return { ok: true, latencyMs: probe.latencyMs, serverVersion };
    } catch (err) {
      if (err instanceof ProbeError) return { ok: false, error: err.verifyError };
      throw err;
    }
  },
};
