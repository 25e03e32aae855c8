import { SQL } from "bun";
import type { Config } from "../config/schema.ts";
import type { Store } from "../db/client.ts";
import { migratePg } from "../db/migrate-pg.ts";
import { maskUrl as maskUrlWith } from "../lib/mask-url.ts";
import { redactSecrets } from "../lib/redact.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, UsageError, type Command } from "./command.ts";
import { copyToPostgres, reasonOf, refuseOccupiedTarget, TargetNotEmptyError } from "./copy-to-postgres.ts";
import { DataDirLockedError, StoreInUseError } from "./data-dir-lock.ts";
import { loadFromArgs, openMigratedStore, storeFile, withDataDirLock } from "./runtime.ts";

const MASK = "****";

/** The URL as it may be printed: its password (user-info or `?password=`) replaced by ****. */
export const maskUrl = (url: string): string => maskUrlWith(url, MASK);

/** The URL's secrets, as written and decoded: every message printed is scrubbed of them. */
function secretsOf(url: string): string[] {
  const found = new Set<string>();
  try {
    const u = new URL(url);
    const raw = [u.password, ...[...u.searchParams.entries()].filter(([k]) => /pass/i.test(k)).map(([, v]) => v)];
    for (const s of raw) {
      if (!s) continue;
      found.add(s);
      try {
        found.add(decodeURIComponent(s));
      } catch {}
      found.add(encodeURIComponent(s));
    }
  } catch {}
  // Longest first, so a secret containing another one is replaced whole.
  return [...found].filter(Boolean).sort((a, b) => b.length - a.length);
}

export function scrub(text: string, url: string): string {
  return redactSecrets(text.replaceAll(url, maskUrl(url)), secretsOf(url), MASK);
}

const REMINDER = `Every node of the fleet must use the same master key file as this data dir (master.key):
the copied secrets stay sealed under it. Give every node the same JWT verification config too
(auth.jwtSecret / jwtSecretFile, publicKeyFile or jwksUrl), or tokens minted for one node are refused by the others.`;

export const storeCopyCommand: Command = {
  name: "store",
  summary: "store copy --to postgres://…: copy the embedded store into PostgreSQL (fleet mode)",
  usage: `snapdb store copy --to postgres://USER:PASSWORD@HOST:5432/DB [flags]

Copies the embedded store (DATA_DIR/snapdb.db) into an EMPTY PostgreSQL database, to move a
single daemon into a fleet (store.url = postgres://…). Every table, same ids, same values, in one
transaction: it either all lands or nothing does; the row counts are checked per table before
the commit. The embedded store is only read and stays as it is.

  --to URL   the PostgreSQL store (postgres:// or postgresql://); default: the configured
             store.url (SNAPDB_STORE_URL), which keeps the password off the command line

Refused while a daemon runs on the data dir (stop it first: systemctl stop snapdb), and
refused when the target already holds snapdb rows (start no daemon on it before the copy).
The target's schema is created or brought up to date first. Secrets are copied sealed:
every node needs this data dir's master.key and the same JWT signing secret or public key.

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, to: { type: "string" } },
  positionals: true,
  completes: ["copy"],
  async run(values, positionals) {
    const [sub, ...extra] = positionals;
    if (sub !== "copy") throw new UsageError(sub ? `unknown subcommand "store ${sub}"; known: store copy` : "missing subcommand: store copy");
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const config = loadFromArgs(values);
    const url = typeof values.to === "string" && values.to ? values.to : config.store.url;
    if (!url) throw new UsageError("--to postgres://… is required (or set store.url)");
    if (!/^postgres(ql)?:\/\/./.test(url)) throw new UsageError(`--to must be a postgres:// URL, not ${maskUrl(url)}`);
    try {
      // A daemon running on the data dir would keep writing rows the copy misses.
      return await withDataDirLock(config, "store-copy", () => copyLocked(config, url));
    } catch (err) {
      if (err instanceof DataDirLockedError || err instanceof StoreInUseError) throw err;
      process.stderr.write(`snapdb store copy: ${scrub(reasonOf(err), url)}\n`);
      if (err instanceof TargetNotEmptyError) {
        process.stderr.write("Nothing was written. Copy into an empty database (CREATE DATABASE …), and start no daemon on it before the copy.\n");
      } else {
        process.stderr.write("No row was written to the target; the embedded store is unchanged.\n");
      }
      return 1;
    }
  },
};

async function copyLocked(config: Config, url: string): Promise<number> {
  const target = maskUrl(url);
  const client = new SQL({ url, max: 2 });
  let store: Store | null = null;
  try {
    // The embedded file whatever store.url says: that is what is copied.
    store = (await openMigratedStore({ ...config, store: { url: "" } })).store;
    // Checked before migrating too (and again inside the copy's transaction), so a non-empty
    // target at an older schema is not upgraded either.
    try {
      await refuseOccupiedTarget(client);
    } catch (err) {
      if (err instanceof TargetNotEmptyError) throw err;
      throw new Error(`cannot read ${target}: ${reasonOf(err)}`);
    }
    const migration = await migratePg(client);
    process.stderr.write(`copying ${storeFile(config)} → ${target} (schema version ${migration.to}), in one transaction committed at the end:\n`);
    const copied = await copyToPostgres(store, client, { onTable: (name, rows) => process.stderr.write(`  ${name}: ${rows} rows\n`) });
    const width = Math.max(...copied.map((t) => t.name.length));
    const total = copied.reduce((n, t) => n + t.rows, 0);
    process.stdout.write(
      `copied ${storeFile(config)} into ${target}; row counts match:\n` +
        copied.map((t) => `  ${`${t.name}:`.padEnd(width + 1)} ${t.rows}`).join("\n") +
        `\n  total: ${total} rows in ${copied.length} tables\n\n${REMINDER}\n` +
        `Then set store.url on every node and start them; keep ${storeFile(config)} until the fleet runs.\n`,
    );
    return 0;
  } finally {
    await client.close();
    store?.close();
  }
}
