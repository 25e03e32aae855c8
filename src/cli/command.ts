import { parseArgs, type ParseArgsConfig } from "node:util";

/** One CLI command: its flags (node:util parseArgs), its help, and what it does. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  /** Takes positional words (a subcommand, as in `snapdb key export`); others refuse them. */
  positionals?: boolean;
  /** Words shell completion offers as the first positional (`show`, `export`, `bash`). */
  completes?: string[];
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number>;
}

/** Flags every command that reads the config accepts. */
export const CONFIG_OPTIONS = {
  config: { type: "string" },
  "data-dir": { type: "string" },
  "master-key-file": { type: "string" },
  listen: { type: "string" },
  "log-level": { type: "string" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

export const CONFIG_HELP = `Config (file < SNAPDB_* env < flags):
  --config FILE           TOML config (default /etc/snapdb/snapdb.toml when it exists; env SNAPDB_CONFIG)
  --data-dir DIR          data directory (default ./data; env SNAPDB_DATA_DIR)
  --listen HOST:PORT      address to serve on (default 127.0.0.1:8484; env SNAPDB_LISTEN)
  --master-key-file FILE  master key (default DATA_DIR/master.key; env SNAPDB_MASTER_KEY_FILE)
  --log-level LEVEL       debug | info | warn | error`;

/** The config-affecting flags in the shape loadConfig takes. */
export function configFlags(values: Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.keys(CONFIG_OPTIONS)) {
    const v = values[name];
    if (typeof v === "string") out[`--${name}`] = v;
  }
  return out;
}

export class UsageError extends Error {}

/** A command that failed for a reason the user can read: `message` goes to stderr as is. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function parseCommandArgs(command: Command, argv: string[]) {
  try {
    return parseArgs({ args: argv, options: { ...command.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
