import { mariadbEngine, mysqlEngine } from "./mysql.ts";
import { postgresEngine } from "./postgres.ts";
import { sqliteEngine } from "./sqlite.ts";
import type { Engine, EngineEnv, EngineName } from "./types.ts";

const ENGINES: Record<EngineName, Engine> = {
  postgres: postgresEngine,
  mysql: mysqlEngine,
  mariadb: mariadbEngine,
  sqlite: sqliteEngine,
};

export function engineFor(name: EngineName): Engine {
  return ENGINES[name];
}

/** The daemon's defaults: its own PATH, 10 s per verify; the outbound policy is the caller's. */
export function defaultEngineEnv(overrides: Partial<EngineEnv> & Pick<EngineEnv, "outbound">): EngineEnv {
  return { toolPath: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", timeoutMs: 10_000, ...overrides };
}
