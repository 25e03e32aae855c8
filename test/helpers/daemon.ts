/**
 * The real daemon as a child process: `bun src/main.ts serve` (or the compiled dist/snapdb)
 * on a free loopback port in a temp data dir. For end-to-end tests that must see what a user
 * sees: the real listener, signals, logs, the CLI.
 */
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MATRIX_NODE_LABELS, storeUrlFor, testStore } from "./store-matrix.ts";
import { tempDir } from "./tmp.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
export const COMPILED_BINARY = join(REPO_ROOT, "dist/snapdb");

export interface DaemonOptions {
  /** "source" (default): bun src/main.ts; "compiled": dist/snapdb (built if stale); or a path. */
  binary?: "source" | "compiled" | string;
  /** Extra SNAPDB_* (or PATH, …) environment for the daemon and its CLI calls. */
  env?: Record<string, string>;
  /** Extra `serve` flags. */
  args?: string[];
  /** Use this data dir (kept on stop) instead of a fresh temp one (removed on stop). */
  dataDir?: string;
  readyTimeoutMs?: number;
  /** The config file's TOML (default: empty), for settings a process without the daemon's environment must see too. */
  config?: string;
}

export interface Daemon {
  baseUrl: string;
  port: number;
  dataDir: string;
  /** The (empty) config file every command gets, so /etc/snapdb/snapdb.toml is never picked up. */
  configFile: string;
  /** The argv prefix that runs the CLI this daemon runs (for `snapdb token`, `doctor`, …). */
  cli: string[];
  pid: number;
  /** stdout + stderr so far (JSON log lines). */
  logs(): string;
  /** Runs a CLI command against this daemon's config and data dir. */
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Mints a token with `snapdb token`, as a user would. */
  token(org: string, opts?: { sub?: string; scopes?: string[]; ttl?: string }): Promise<string>;
  /** Signals the daemon and waits for it to exit (SIGKILL after timeoutMs); returns its exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/snapdb when it is missing or older than src/, migrations/ or package.json. */
export async function ensureCompiledBinary(): Promise<string> {
  const sources = Math.max(newestMtime(join(REPO_ROOT, "src")), newestMtime(join(REPO_ROOT, "migrations")), statSync(join(REPO_ROOT, "package.json")).mtimeMs);
  if (existsSync(COMPILED_BINARY) && statSync(COMPILED_BINARY).mtimeMs >= sources) return COMPILED_BINARY;
  // flock: several test files (or helpers) may want the binary at once.
  const build = Bun.spawn(["flock", "/tmp/snapdb-build.lock", process.execPath, "scripts/build.ts"], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(build.stdout).text(), new Response(build.stderr).text()]);
  if ((await build.exited) !== 0) throw new Error(`npm run build failed:\n${out}\n${err}`);
  return COMPILED_BINARY;
}

export async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

async function cliPrefix(binary: DaemonOptions["binary"]): Promise<string[]> {
  if (!binary || binary === "source") return [process.execPath, join(REPO_ROOT, "src/main.ts")];
  if (binary === "compiled") return [await ensureCompiledBinary()];
  return [binary];
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const cli = await cliPrefix(opts.binary);
  const dir = opts.dataDir ? null : tempDir("snapdb-daemon");
  const dataDir = opts.dataDir ?? dir!.path;
  const configFile = join(dataDir, "snapdb.toml");
  writeFileSync(configFile, opts.config ?? "# empty: defaults, env and flags only\n");
  // The store matrix: on its PostgreSQL leg the daemon's store is a PostgreSQL database, the same
  // one again when a test restarts a daemon on this data dir (an explicit SNAPDB_STORE_URL wins).
  const storeUrl = opts.env && "SNAPDB_STORE_URL" in opts.env ? null : await storeUrlFor(dataDir);
  // On the PostgreSQL leg every daemon carries the harness's label (a SQLite-store one too): the
  // SQLite sources tests create there are pinned to it.
  const matrix = { ...(testStore() === "postgres" ? { SNAPDB_NODE_LABELS: MATRIX_NODE_LABELS } : {}), ...(storeUrl ? { SNAPDB_STORE_URL: storeUrl } : {}) };
  const env = { ...process.env, ...matrix, ...opts.env, SNAPDB_CONFIG: configFile, SNAPDB_DATA_DIR: dataDir } as Record<string, string>;
  const common = ["--config", configFile, "--data-dir", dataDir];

  let output = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
  };
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const proc = Bun.spawn([...cli, "serve", ...common, "--listen", `127.0.0.1:${port}`, ...(opts.args ?? [])], {
      cwd: REPO_ROOT,
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    void drain(proc.stdout);
    void drain(proc.stderr);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    let ready = false;
    while (Date.now() < deadline && proc.exitCode === null) {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
      if (res?.status === 200) {
        ready = true;
        break;
      }
      await Bun.sleep(50);
    }
    if (!ready) {
      proc.kill("SIGKILL");
      await proc.exited;
      // Another process took the port between freePort() and the daemon's bind: try another.
      if (attempt < 3 && /EADDRINUSE|address already in use/i.test(output)) continue;
      dir?.cleanup();
      throw new Error(`the daemon did not become ready at ${baseUrl}; its output:\n${output}`);
    }

    const run: Daemon["run"] = async (args) => {
      const child = Bun.spawn([...cli, ...args], { cwd: REPO_ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
      return { code: await child.exited, stdout, stderr };
    };
    return {
      baseUrl,
      port,
      dataDir,
      configFile,
      cli,
      pid: proc.pid,
      logs: () => output,
      run,
      async token(org, t = {}) {
        const scopes = (t.scopes ?? []).flatMap((s) => ["--scope", s]);
        const r = await run(["token", ...common, "--org", org, "--sub", t.sub ?? "e2e", "--ttl", t.ttl ?? "1h", ...scopes]);
        if (r.code !== 0) throw new Error(`snapdb token failed (${r.code}): ${r.stderr}`);
        return r.stdout.trim();
      },
      async stop(signal = "SIGTERM", timeoutMs = 15_000) {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
        const code = await proc.exited;
        clearTimeout(timer);
        dir?.cleanup();
        return code;
      },
    };
  }
}
