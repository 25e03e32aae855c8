import { afterAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { restoreCommandFor } from "../../src/runner/wal-fetch-command.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-restore-command");
afterAll(() => dir.cleanup());

/** What PostgreSQL does to restore_command before /bin/sh runs it: %f, %p, %r and %% replaced. */
const substitute = (command: string, f: string, p: string) => command.replace(/%([fpr%])/g, (_, c: string) => (c === "f" ? f : c === "p" ? p : c === "r" ? "000000010000000000000001" : "%"));

test("restore_command survives PostgreSQL's % substitution and the shell with any path", () => {
  // A directory with a space, a quote and a percent sign, holding a stand-in for snapdb that prints its argv.
  const odd = join(dir.path, "it's 100% snap db");
  mkdirSync(odd);
  const exe = join(odd, "show args");
  writeFileSync(exe, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });
  const config = join(odd, "snap'db %f.toml");
  const command = restoreCommandFor({ command: [exe], configFile: config, dataDir: odd, masterKeyFile: join(dir.path, "keys", "master.key") }, "ds_1", "000000010000000000000009");
  const run = Bun.spawnSync(["sh", "-c", substitute(command, "000000010000000000000003", "pg_wal/RECOVERYXLOG")]);
  expect(run.exitCode).toBe(0);
  expect(run.stdout.toString().split("\n").slice(0, -1)).toEqual([
    "wal-fetch",
    "--config",
    config,
    "--data-dir",
    odd,
    "--master-key-file",
    join(dir.path, "keys", "master.key"),
    "--source",
    "ds_1",
    "--until",
    "000000010000000000000009",
    "000000010000000000000003",
    "pg_wal/RECOVERYXLOG",
  ]);
});

test("plain paths stay readable; the default master key is not repeated", () => {
  expect(restoreCommandFor({ command: ["/usr/local/bin/snapdb"], configFile: "/etc/snapdb/snapdb.toml", dataDir: "/var/lib/snapdb", masterKeyFile: "/var/lib/snapdb/master.key" }, "ds_1", null)).toBe(
    "/usr/local/bin/snapdb wal-fetch --config /etc/snapdb/snapdb.toml --data-dir /var/lib/snapdb --source ds_1 %f %p",
  );
});
