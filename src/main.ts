#!/usr/bin/env bun
import { ConfigError } from "./config/load.ts";
import { SchemaTooNewError } from "./db/migrate.ts";
import { ExitError, UsageError, parseCommandArgs } from "./cli/command.ts";
import { DataDirLockedError, StoreInUseError } from "./cli/data-dir-lock.ts";
import { COMMANDS } from "./cli/registry.ts";

/** From the registry alone: loading every command would load the daemon (~50 ms) to print a list. */
function help(): string {
  return `snapdb: database backups, one binary.

Usage: snapdb <command> [flags]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(18)} ${c.summary}`).join("\n")}

Run 'snapdb <command> --help' for a command's flags.
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help());
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === (name === "--version" ? "version" : name));
  if (!entry) {
    process.stderr.write(`snapdb: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  const command = await entry.load();
  try {
    const { values, positionals } = parseCommandArgs(command, rest);
    if (values.help) {
      process.stdout.write(`${command.usage}\n`);
      return 0;
    }
    if (positionals.length && !command.positionals) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return await command.run(values, positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`snapdb ${command.name}: ${err.message}\nRun 'snapdb ${command.name} --help'.\n`);
      return 2;
    }
    if (err instanceof DataDirLockedError || err instanceof StoreInUseError) {
      // serve: a second daemon would fail the first one's running jobs as interrupted.
      const hint = command.name === "serve" ? "" : "\nStop the daemon first (e.g. systemctl stop snapdb), then run the command again.";
      process.stderr.write(`snapdb ${command.name}: ${err.message}${hint}\n`);
      return 1;
    }
    if (err instanceof ExitError) {
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ConfigError || err instanceof SchemaTooNewError) {
      process.stderr.write(`snapdb: ${err.message}\n`);
      return err instanceof ConfigError ? 2 : 1;
    }
    throw err;
  }
}

// Not a top-level await: the binary is compiled to bytecode (scripts/build.ts), which Bun does
// not do for a module with top-level await, and bytecode starts every command ~60 ms sooner.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
