/**
 * Where the suite finds the system programs it drives directly, from what is installed rather
 * than from one distribution's layout: Debian and Ubuntu put PostgreSQL's server programs in
 * /usr/lib/postgresql/<major>/bin (not on PATH), and name the Chromium binary differently.
 * An override in the environment comes first; a missing program is an error that says how to
 * get it, never a silent skip.
 */
import { accessSync, constants, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface ToolLookup {
  env?: Record<string, string | undefined>;
  /** PATH to search (default: the process's). */
  path?: string;
  /** Where the distribution keeps PostgreSQL's versions (default /usr/lib/postgresql). */
  pgRoot?: string;
}

const INSTALL_HINT = "run scripts/install-test-deps.sh";

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const hasInitdb = (dir: string) => isExecutable(join(dir, "initdb"));

/**
 * PostgreSQL's server programs (initdb, postgres, pg_ctl, …): SNAPDB_TEST_PG_BIN, else what
 * `pg_config --bindir` says when initdb is there (libpq-dev's pg_config may name a version
 * whose server is not installed), else the newest /usr/lib/postgresql/<major>/bin.
 */
export function findPgBinDir(look: ToolLookup = {}): string {
  const env = look.env ?? process.env;
  const override = env.SNAPDB_TEST_PG_BIN;
  if (override) {
    if (!hasInitdb(override)) throw new Error(`SNAPDB_TEST_PG_BIN=${override} has no initdb`);
    return override;
  }
  const pgConfig = Bun.which("pg_config", { PATH: look.path ?? env.PATH ?? "" });
  if (pgConfig) {
    const res = Bun.spawnSync([pgConfig, "--bindir"], { stdout: "pipe", stderr: "ignore" });
    const dir = res.exitCode === 0 ? res.stdout.toString().trim() : "";
    if (dir && hasInitdb(dir)) return dir;
  }
  const root = look.pgRoot ?? "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && hasInitdb(join(root, v, "bin")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0]) return join(root, versions[0], "bin");
  throw new Error(`no PostgreSQL server programs (initdb) found under ${root} or by pg_config: ${INSTALL_HINT} (package postgresql), or set SNAPDB_TEST_PG_BIN`);
}

/** The Chromium the browser tests drive: SNAPDB_TEST_CHROMIUM, else `chromium` (Debian), else `chromium-browser` (Ubuntu) on PATH. */
export function findChromium(look: ToolLookup = {}): string {
  const env = look.env ?? process.env;
  const override = env.SNAPDB_TEST_CHROMIUM;
  if (override) {
    if (!isExecutable(override)) throw new Error(`SNAPDB_TEST_CHROMIUM=${override} is not an executable file`);
    return override;
  }
  const PATH = look.path ?? env.PATH ?? "";
  const found = Bun.which("chromium", { PATH }) ?? Bun.which("chromium-browser", { PATH });
  if (found) return found;
  throw new Error(`no chromium or chromium-browser on PATH: ${INSTALL_HINT} (Debian package chromium), or set SNAPDB_TEST_CHROMIUM`);
}

let pgBin: string | undefined;
/** findPgBinDir() for this process, looked up once. */
export const pgBinDir = (): string => (pgBin ??= findPgBinDir());

/** libfaketime's preload library, in the distribution's multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu, …). */
export function findFaketimeLib(look: { libRoot?: string } = {}): string {
  const root = look.libRoot ?? "/usr/lib";
  const arches = existsSync(root) ? readdirSync(root).filter((d) => d.endsWith("-linux-gnu")) : [];
  for (const dir of [...arches, ""]) {
    const lib = join(root, dir, "faketime", "libfaketime.so.1");
    if (existsSync(lib)) return lib;
  }
  throw new Error(`no libfaketime.so.1 under ${root}: ${INSTALL_HINT} (package faketime)`);
}
