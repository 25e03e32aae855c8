import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../config/schema.ts";

/**
 * How PostgreSQL runs `snapdb wal-fetch` from a restored directory's `restore_command`
 * (walDelivery `fetch`): the very snapdb that runs the daemon, pointed at the daemon's config
 * file, data dir and master key. Paths only: nothing secret goes into the command line.
 */
export interface WalFetchInvocation {
  /** The running snapdb: the compiled binary, or Bun and src/main.ts. */
  command: string[];
  /** The config file the daemon read, if any. */
  configFile: string | null;
  dataDir: string;
  masterKeyFile: string;
}

/**
 * This process's snapdb as a command line. In the compiled binary the entry point is in
 * Bun's embedded file system (`/$bunfs/root/snapdb`; modules' import.meta.url keep their
 * build-time paths) and the binary is process.execPath; from source it is Bun and main.ts.
 */
export function selfCommand(): string[] {
  if (Bun.main.startsWith("/$bunfs/") || Bun.main.includes("~BUN")) return [process.execPath];
  return [process.execPath, fileURLToPath(new URL("../main.ts", import.meta.url))];
}

export function walFetchInvocation(config: Pick<Config, "dataDir" | "masterKeyFile">, configFile: string | null): WalFetchInvocation {
  return { command: selfCommand(), configFile, dataDir: config.dataDir, masterKeyFile: config.masterKeyFile };
}

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** A word for /bin/sh: as is when it is plain, else single-quoted (a quote as '\''). */
const shellWord = (word: string) => (SHELL_SAFE.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`);
/** PostgreSQL replaces %f, %p and %r in restore_command: a literal % is %%. */
const literalPercent = (word: string) => word.replace(/%/g, "%%");

/**
 * The restore_command value (before GUC quoting): `snapdb wal-fetch … --source ID [--until
 * SEGMENT] %f %p`. `until` is the last segment the restore planned: later ones are reported
 * missing, so PostgreSQL replays exactly what a copy of the WAL would have held, even when
 * more has been archived since.
 */
export function restoreCommandFor(invocation: WalFetchInvocation, dataSourceId: string, until: string | null): string {
  const args = [...invocation.command, "wal-fetch"];
  if (invocation.configFile) args.push("--config", invocation.configFile);
  args.push("--data-dir", invocation.dataDir);
  if (invocation.masterKeyFile !== join(invocation.dataDir, "master.key")) args.push("--master-key-file", invocation.masterKeyFile);
  args.push("--source", dataSourceId);
  if (until) args.push("--until", until);
  return `${args.map((a) => literalPercent(shellWord(a))).join(" ")} %f %p`;
}
