#!/usr/bin/env bun
import { ConfigError } from "./config/load.ts";
import { SchemaTooNewError } from "./db/migrate.ts";
import { ExitError, UsageError, parseCommandArgs } from "./cli/command.ts";
import { DataDirLockedError, StoreInUseError } from "./cli/data-dir-lock.ts";
import { COMMANDS } from "./cli/registry.ts";

async function help(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map((c) => c.load()));
  return `snapdb: database backups, one binary.

Usage: snapdb <command> [flags]

Commands:
${commands.map((c) => `  ${c.name.padEnd(18)} ${c.summary}`).join("\n")}

Run 'snapdb <command> --help' for a command's flags.
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(await help());
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === (name === "--version" ? "version" : name));
  if (!entry) {
    process.stderr.write(`snapdb: unknown command "${name}"\n\n${await help()}`);
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

process.exitCode = await main(process.argv.slice(2));
