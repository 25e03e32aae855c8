import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from "./command.ts";
import { loadFromArgs, openMigratedStore, storeFile } from "./runtime.ts";

export const migrateCommand: Command = {
  name: "migrate",
  summary: "apply the store's schema migrations and exit (serve does this too)",
  usage: `snapdb migrate [flags]

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS },
  async run(values) {
    const config = loadFromArgs(values);
    const { store, migration } = openMigratedStore(config);
    store.close();
    const what = migration.applied.length ? `applied ${migration.applied.join(", ")}` : "already up to date";
    process.stdout.write(`${storeFile(config)}: schema version ${migration.to} (${what})\n`);
    return 0;
  },
};
