import { readKeyFile } from "../crypto/key-files.ts";
import { orgIdentity } from "../crypto/org-keys.ts";
import { SecretBox } from "../crypto/secrets.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, UsageError, type Command } from "./command.ts";
import { loadFromArgs, withStoreForReading } from "./runtime.ts";

export const keyCommand: Command = {
  name: "key",
  summary: "key export: print an org's age identity, to decrypt its backups by hand",
  usage: `snapdb key export --org ORG [flags]

Prints the organisation's age identity (AGE-SECRET-KEY-1…) on stdout, so that a backup
can be restored without snapdb:
  sudo -u snapdb snapdb key export --org acme --config /etc/snapdb/snapdb.toml > key.txt
  age -d -i key.txt FILE.dump.zst.age | zstd -d | pg_restore -d DB
Anyone holding it can decrypt every backup of the org: keep it like a password, and
delete key.txt afterwards. An org gets its identity with its first encrypted backup.

  --org ORG   the organisation (the org_id claim of its tokens)

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, org: { type: "string" } },
  positionals: true,
  completes: ["export"],
  async run(values, positionals) {
    const [sub, ...extra] = positionals;
    if (sub !== "export") throw new UsageError(sub ? `unknown subcommand "key ${sub}"; known: key export` : "missing subcommand: key export");
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const org = values.org;
    if (typeof org !== "string" || !org) throw new UsageError("--org is required");
    const config = loadFromArgs(values);
    // Read, never generate: a fresh master key would open nothing.
    let master: Uint8Array;
    try {
      master = readKeyFile(config.masterKeyFile);
    } catch (err) {
      process.stderr.write(`snapdb key export: cannot read the master key ${config.masterKeyFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run as the daemon's user\n`);
      return 1;
    }
    // Works beside a running daemon (read only); alone, it holds the data dir while it reads.
    return withStoreForReading(config, "key", async (store) => {
      const identity = await orgIdentity(store.db, new SecretBox(master), org);
      if (!identity) {
        process.stderr.write(`snapdb key export: org "${org}" has no key yet (it is created with the org's first encrypted backup)\n`);
        return 1;
      }
      process.stdout.write(`${identity}\n`);
      process.stderr.write(`snapdb: this is org "${org}"'s private key: it decrypts all of its backups; keep it secret\n`);
      return 0;
    });
  },
};
