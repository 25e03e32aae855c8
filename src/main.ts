#!/usr/bin/env bun
import { ConfigError } from "./config/load.ts";
import { SchemaTooNewError } from "./db/migrate.ts";
import { UsageError, parseCommandArgs, type Command } from "./cli/command.ts";
import { doctorCommand } from "./cli/doctor.ts";
import { keyCommand } from "./cli/key.ts";
import { migrateCommand } from "./cli/migrate.ts";
import { readyCommand } from "./cli/ready.ts";
import { rotateMasterKeyCommand } from "./cli/rotate-master-key.ts";
import { serveCommand } from "./cli/serve.ts";
import { tokenCommand } from "./cli/token.ts";
import { versionCommand } from "./cli/version.ts";

const COMMANDS: Command[] = [serveCommand, tokenCommand, migrateCommand, keyCommand, doctorCommand, readyCommand, rotateMasterKeyCommand, versionCommand];

const HELP = `snapdb: database backups, one binary.

Usage: snapdb <command> [flags]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}

Run 'snapdb <command> --help' for a command's flags.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  if (name === "--version") return versionCommand.run({}, []);
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`snapdb: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
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
    if (err instanceof ConfigError || err instanceof SchemaTooNewError) {
      process.stderr.write(`snapdb: ${err.message}\n`);
      return err instanceof ConfigError ? 2 : 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
