import { checkFleet } from "./doctor-fleet.ts";
import { ConfigError, loadConfig } from "../config/load.ts";
import { VERSION } from "../version.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, configFlags, type Command } from "./command.ts";
import { checkDataDir, checkJwt, checkListen, checkManagedStorage, checkMasterKey, checkStore, checkTools, type CheckResult } from "./doctor-checks.ts";

const LABEL: Record<CheckResult["status"], string> = { ok: "ok  ", warn: "warn", fail: "FAIL" };

function line(r: CheckResult): string {
  return `${LABEL[r.status]}  ${r.name.padEnd(22)} ${r.detail}${r.fix ? ` -> fix: ${r.fix}` : ""}\n`;
}

export const doctorCommand: Command = {
  name: "doctor",
  summary: "check config, data dir, store, keys, dump tools, listen address, storage",
  usage: `snapdb doctor [flags]

Checks what the daemon needs and prints one line per check: ok, warn or FAIL, and
what to do about it. Changes nothing. Exits 0 when nothing failed, 1 otherwise.
Run it as the daemon's user with the daemon's config, e.g.
  sudo -u snapdb snapdb doctor --config /etc/snapdb/snapdb.toml

Checks: the config loads (and which file was read), the data dir is writable, the
store's schema version against this binary's, the master key and JWT secret files
(present, mode 0600), the dump/restore tools on PATH and their versions, the listen
address is free or a snapdb daemon answers /readyz there, the managed storage.
With a PostgreSQL store (fleet mode): the store answers and its schema version, the
nodes up and down, and that every node up holds this host's master key, runs this
version and has a clock within a second of the others.

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS },
  async run(values) {
    const results: CheckResult[] = [];
    const print = (r: CheckResult) => {
      results.push(r);
      process.stdout.write(line(r));
    };
    process.stdout.write(`snapdb ${VERSION} doctor\n`);
    let loaded: ReturnType<typeof loadConfig> | null = null;
    try {
      loaded = loadConfig({ flags: configFlags(values), env: process.env });
      const from = loaded.file ? `file ${loaded.file}` : "no config file (defaults, SNAPDB_* env and flags)";
      print({ name: "config", status: "ok", detail: `loaded from ${from}` });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      print({ name: "config", status: "fail", detail: err.problems.join("; "), fix: "correct the config (snapdb serve --print-config shows the effective one)" });
    }
    if (loaded) {
      const { config } = loaded;
      print(checkDataDir(config));
      // A fleet's store is PostgreSQL: it and the nodes sharing it are checked instead of a file.
      if (config.store.url) for (const r of await checkFleet(config)) print(r);
      else print(checkStore(config));
      print(checkMasterKey(config));
      print(await checkJwt(config));
      print(await checkListen(config));
      print(await checkManagedStorage(config));
    }
    for (const r of await checkTools()) print(r);
    const count = (s: CheckResult["status"]) => results.filter((r) => r.status === s).length;
    process.stdout.write(`${count("fail")} failed, ${count("warn")} warnings, ${count("ok")} ok\n`);
    return count("fail") ? 1 : 0;
  },
};
