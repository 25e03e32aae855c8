import { maskStoreUrl } from "../db/pg-store.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, type Command } from "./command.ts";
import { loadFromArgs, openMigratedStore, storeFile, withDataDirLock } from "./runtime.ts";

export const migrateCommand: Command = {
  name: "migrate",
  summary: "apply the store's schema migrations and exit (serve does this too)",
  usage: `snapdb migrate [flags]

Refused while a daemon runs on the data dir: stop it first.

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS },
  async run(values) {
    const config = loadFromArgs(values);
    // Never under a running daemon: it would run on a schema it does not know.
    const migration = await withDataDirLock(config, "migrate", async () => {
      const { store, migration } = await openMigratedStore(config);
      store.close();
      await store.closed;
      return migration;
    });
    const what = migration.applied.length ? `applied ${migration.applied.join(", ")}` : "already up to date";
    const where = config.store.url ? maskStoreUrl(config.store.url) : storeFile(config);
    process.stdout.write(`${where}: schema version ${migration.to} (${what})\n`);
    return 0;
  },
};
