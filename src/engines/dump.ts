import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AGE_PROBE_PREFIX } from "./age-tool.ts";
import { PIPE_DIR_PREFIX } from "./os-pipe.ts";
import { addressOf } from "./network.ts";
import { pgConninfo } from "./pg-conninfo.ts";
import { findTool } from "./process.ts";
import { toolOutput, ToolFailedError } from "./tool-stream.ts";
import { engineFor } from "./registry.ts";
import type { EngineEnv, EngineName, SourceTarget } from "./types.ts";

/** What a dump produces: pg's custom format, SQL text, or a SQLite database file. */
export type DumpFormat = "pg_custom" | "sql" | "sqlite";

/** The first layer of a backup file's extension, e.g. `dump` in `.dump.zst.age`. */
export const DUMP_EXT: Record<DumpFormat, string> = { pg_custom: "dump", sql: "sql", sqlite: "sqlite" };

export const DUMP_FORMAT: Record<EngineName, DumpFormat> = {
  postgres: "pg_custom",
  mysql: "sql",
  mariadb: "sql",
  sqlite: "sqlite",
};

export class DumpSetupError extends Error {
  constructor(
    readonly code: "DUMP_TOOL_MISSING" | "AUTH_FAILED" | "DUMP_FAILED",
    message: string,
  ) {
    super(message);
    this.name = "DumpSetupError";
  }
}

export interface DumpEnv extends Pick<EngineEnv, "toolPath"> {
  /** Where SQLite snapshots are written before they are streamed (the data dir's tmp/). */
  scratchDir: string;
  /** PostgreSQL: dump from this exported snapshot (`--snapshot`), the one a fingerprint was counted in. */
  pgSnapshot?: string;
  /** SQLite: called with the finished snapshot file before it is streamed (a fingerprint counts its rows). */
  onSqliteSnapshot?: (path: string) => Promise<void>;
}

function firstTool(names: readonly string[], toolPath: string): string {
  for (const name of names) {
    const found = findTool(name, toolPath);
    if (found) return found;
  }
  throw new DumpSetupError("DUMP_TOOL_MISSING", `none of ${names.join(", ")} is on the daemon's PATH`);
}

function needCredentials(target: SourceTarget) {
  if (!target.credentials) throw new DumpSetupError("AUTH_FAILED", "the data source has no credentials");
  return target.credentials;
}

/** A dump tool's command line and its secret variables (passwords go there, never in argv). */
export interface DumpCommand {
  argv: string[];
  secretEnv: Record<string, string>;
}

/**
 * pg_dump in custom format without its own compression (ours follows), password via env;
 * where to connect is one conninfo string of quoted values (pg-conninfo.ts), to the checked
 * address of a pinned target.
 */
function pgDumpCommand(target: SourceTarget, env: DumpEnv): DumpCommand {
  const creds = needCredentials(target);
  const tool = firstTool(engineFor("postgres").dumpTools, env.toolPath);
  const argv = [tool, "--format=custom", "--compress=0", "--no-password", `--port=${target.port ?? 5432}`, `--dbname=${pgConninfo(target, target.database ?? "")}`];
  if (env.pgSnapshot) argv.push(`--snapshot=${env.pgSnapshot}`);
  const secretEnv: Record<string, string> = { PGPASSWORD: creds.password, PGCONNECT_TIMEOUT: "15" };
  if (target.options.sslMode) secretEnv.PGSSLMODE = target.options.sslMode;
  return { argv, secretEnv };
}

/** mysqldump / mariadb-dump: one consistent transaction, with routines, triggers and events. */
function mysqlDumpCommand(name: "mysql" | "mariadb", target: SourceTarget, env: DumpEnv): DumpCommand {
  const creds = needCredentials(target);
  const tool = firstTool(engineFor(name).dumpTools, env.toolPath);
  const argv = [
    tool,
    "--single-transaction",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--quick",
    "--default-character-set=utf8mb4",
    "--protocol=TCP",
    // The checked address, not the name: DNS is not asked again (see network.ts pinTarget).
    `--host=${addressOf(target)}`,
    `--port=${target.port ?? 3306}`,
    // `--opt=value` forms: a value starting with `-` stays a value.
    `--user=${creds.username}`,
  ];
  const ssl = target.options.sslMode;
  if (ssl && ssl !== "disable" && ssl !== "prefer") argv.push(name === "mysql" ? "--ssl-mode=REQUIRED" : "--ssl");
  // The database as a plain argument (not --databases): no CREATE DATABASE/USE in the dump,
  // so it restores into any database name. After `--`, a name starting with `-` is a name.
  argv.push("--", target.database!);
  return { argv, secretEnv: { MYSQL_PWD: creds.password } };
}

const SNAPSHOT_PREFIX = "sqlite-snapshot-";

/**
 * Removes what a killed daemon left in the scratch dir: SQLite snapshots (each a whole,
 * unencrypted copy of a user's database that nothing else would ever delete), the
 * private directories of OS pipes (a FIFO each) and of age probes. Call it at start, before the runner takes
 * jobs (nothing can be in use then). Returns the number of snapshots removed.
 */
export function removeStaleScratch(scratchDir: string): number {
  if (!existsSync(scratchDir)) return 0;
  let removed = 0;
  for (const name of readdirSync(scratchDir)) {
    if (name.startsWith(PIPE_DIR_PREFIX) || name.startsWith(AGE_PROBE_PREFIX)) rmSync(join(scratchDir, name), { recursive: true, force: true });
    if (!name.startsWith(SNAPSHOT_PREFIX)) continue;
    rmSync(join(scratchDir, name), { force: true });
    removed++;
  }
  return removed;
}

/**
 * Where the snapshot worker is. From source, beside this file. In the compiled binary the
 * worker is a second entrypoint of the build (scripts/build.ts), stored under the entrypoints'
 * common root (src/) and found by that relative name, not by this module's URL (which points
 * at the bundled main file's directory, where no worker file is).
 */
export function snapshotWorkerSpecifier(moduleUrl = import.meta.url): string {
  return moduleUrl.startsWith("file:///$bunfs/") ? "./engines/sqlite-snapshot-worker.ts" : new URL("./sqlite-snapshot-worker.ts", moduleUrl).href;
}

/** A consistent snapshot via VACUUM INTO in a worker, streamed, then removed. */
function sqliteDump(target: SourceTarget, env: DumpEnv, signal: AbortSignal): ReadableStream<Uint8Array> {
  mkdirSync(env.scratchDir, { recursive: true, mode: 0o700 });
  // Real: a fingerprint counts it with SQLite's NOFOLLOW, which refuses any symlink on the way.
  const snapshot = join(realpathSync(env.scratchDir), `${SNAPSHOT_PREFIX}${crypto.randomUUID()}.db`);
  const cleanup = () => rmSync(snapshot, { force: true });
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const made = new Promise<void>((resolve, reject) => {
    const worker = new Worker(snapshotWorkerSpecifier());
    const stop = () => {
      worker.terminate();
      reject(new ToolFailedError("DUMP_FAILED", "sqlite snapshot", null, "canceled"));
    };
    signal.addEventListener("abort", stop, { once: true });
    worker.onmessage = (e: MessageEvent<{ ok: boolean; message?: string }>) => {
      signal.removeEventListener("abort", stop);
      worker.terminate();
      if (e.data.ok) resolve();
      else reject(new ToolFailedError("DUMP_FAILED", "sqlite snapshot", null, e.data.message ?? "failed"));
    };
    worker.onerror = (e) => {
      signal.removeEventListener("abort", stop);
      worker.terminate();
      reject(new ToolFailedError("DUMP_FAILED", "sqlite snapshot", null, e.message));
    };
    worker.postMessage({ src: target.path, dst: snapshot });
  });
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (!reader) {
            await made;
            await env.onSqliteSnapshot?.(snapshot);
            reader = Bun.file(snapshot).stream().getReader() as unknown as ReadableStreamDefaultReader<Uint8Array>;
          }
          if (signal.aborted) throw new ToolFailedError("DUMP_FAILED", "sqlite snapshot", null, "canceled");
          const { done, value } = await reader!.read();
          if (done) {
            cleanup();
            controller.close();
          } else controller.enqueue(value);
        } catch (err) {
          cleanup();
          controller.error(err);
        }
      },
      async cancel() {
        await reader?.cancel().catch(() => {});
        cleanup();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * The dump tool to run for a data source; null for SQLite (a snapshot in-process, no tool).
 * A network target must be pinned (network.ts pinTarget): the tool connects to its address.
 */
export function dumpCommand(target: SourceTarget, env: DumpEnv): DumpCommand | null {
  switch (target.engine) {
    case "postgres":
      return pgDumpCommand(target, env);
    case "mysql":
    case "mariadb":
      return mysqlDumpCommand(target.engine, target, env);
    case "sqlite":
      return null;
  }
}

/**
 * Starts the dump of a data source. The stream ends only if the dump succeeded; it errors
 * with ToolFailedError (and the tool's stderr tail) otherwise, and aborting kills the tool.
 */
export function startDump(target: SourceTarget, env: DumpEnv, signal: AbortSignal): ReadableStream<Uint8Array> {
  const command = dumpCommand(target, env);
  if (!command) return sqliteDump(target, env, signal);
  return toolOutput(command.argv, { toolPath: env.toolPath, secretEnv: command.secretEnv, signal });
}
