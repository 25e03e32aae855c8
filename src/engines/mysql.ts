import { findTool, runTool } from "./process.ts";
import { leadingVersion, probeServer, ProbeError } from "./network.ts";
import { verifyFailure, type Engine, type EngineEnv, type EngineName, type SourceTarget, type VerifyResult } from "./types.ts";

/** The first of `tools` that is on the PATH and answers `--version`. */
async function checkDumpTool(tools: readonly string[], env: EngineEnv) {
  for (const name of tools) {
    const tool = findTool(name, env.toolPath);
    if (!tool) continue;
    const run = await runTool([tool, "--version"], { toolPath: env.toolPath, timeoutMs: Math.min(env.timeoutMs, 10_000) });
    if (run.exitCode === 0) return null;
    return { code: "DUMP_TOOL_MISSING" as const, message: `${tool} --version failed: ${run.stderrTail}`.trim() };
  }
  return { code: "DUMP_TOOL_MISSING" as const, message: `${tools.join(" or ")} is not on the daemon's PATH (${env.toolPath})` };
}

/**
 * MySQL and MariaDB speak the same protocol (Bun's SQL `mysql` adapter covers both); they
 * differ in the dump tool: MariaDB ships `mariadb-dump` (older releases only `mysqldump`).
 */
function mysqlFamily(name: Extract<EngineName, "mysql" | "mariadb">, dumpTools: readonly string[]): Engine {
  return {
    name,
    defaultPort: 3306,
    dumpTools,
    async verify(target: SourceTarget, env: EngineEnv): Promise<VerifyResult> {
      if (!target.credentials) return verifyFailure("AUTH_FAILED", "no credentials are set: PUT /data-sources/{id}/credentials first");
      try {
        const probe = await probeServer(target, "SELECT VERSION() AS version", env.timeoutMs, env.outbound);
        const serverVersion = leadingVersion(String(probe.rows[0]?.version ?? ""));
        const tool = await checkDumpTool(dumpTools, env);
        if (tool) return verifyFailure(tool.code, tool.message, { latencyMs: probe.latencyMs, serverVersion });
        return { ok: true, latencyMs: probe.latencyMs, serverVersion };
      } catch (err) {
        if (err instanceof ProbeError) return { ok: false, error: err.verifyError };
        throw err;
      }
    },
  };
}

export const mysqlEngine = mysqlFamily("mysql", ["mysqldump"]);
export const mariadbEngine = mysqlFamily("mariadb", ["mariadb-dump", "mysqldump"]);
