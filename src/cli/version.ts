import { LATEST_SCHEMA_VERSION } from "../db/migrate.ts";
import { VERSION } from "../version.ts";
import type { Command } from "./command.ts";

export const versionCommand: Command = {
  name: "version",
  summary: "print the version",
  usage: "snapdb version",
  options: {},
  async run() {
    process.stdout.write(`snapdb ${VERSION} (schema ${LATEST_SCHEMA_VERSION}, bun ${Bun.version})\n`);
    return 0;
  },
};
