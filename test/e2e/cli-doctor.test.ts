/**
 * The CLI a user meets: `snapdb --help` lists every command and each answers --help;
 * `snapdb doctor` against a real running daemon and its real data dir; `snapdb ready`.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureOrgRecipient } from "../../src/crypto/org-keys.ts";
import { readKeyFile } from "../../src/crypto/key-files.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { openStore } from "../../src/db/client.ts";
import { freePort, startDaemon, type Daemon } from "../helpers/daemon.ts";

let daemon: Daemon;

beforeAll(async () => {
  daemon = await startDaemon();
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
}, 30_000);

test("--help lists every command, and every command answers --help", async () => {
  const help = await daemon.run(["--help"]);
  expect(help.code).toBe(0);
  const names = [...help.stdout.matchAll(/^ {2}([a-z-]+) {2,}\S/gm)].map((m) => m[1]!);
  expect(names).toEqual(expect.arrayContaining(["serve", "token", "migrate", "key", "doctor", "ready", "version"]));
  const helps = await Promise.all(names.map(async (name) => ({ name, r: await daemon.run([name, "--help"]) })));
  for (const { name, r } of helps) {
    expect({ name, code: r.code }).toEqual({ name, code: 0 });
    expect(r.stdout).toStartWith(`snapdb ${name}`);
  }
}, 60_000);

test("doctor: every check passes against a running daemon and its data dir", async () => {
  const r = await daemon.run(["doctor", "--listen", `127.0.0.1:${daemon.port}`]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const line = (name: string) => r.stdout.split("\n").find((l) => l.slice(6).startsWith(`${name} `)) ?? `(no ${name} line)`;
  expect(line("config")).toStartWith("ok");
  expect(line("config")).toContain(daemon.configFile);
  expect(line("data dir")).toStartWith("ok");
  expect(line("store")).toMatch(/^ok .*schema version (\d+), this binary's is \1$/);
  expect(line("master key")).toStartWith("ok");
  expect(line("master key")).toContain("mode 0600");
  expect(line("jwt secret")).toStartWith("ok");
  expect(line("listen")).toContain("answers");
  expect(line("pg_dump")).toMatch(/^ok .*PostgreSQL\) \d+/);
  expect(line("mariadb-dump|mysqldump")).toMatch(/^ok .*Distrib/);
  expect(line("zstd")).toMatch(/^ok .*v\d+\.\d+/);
  expect(r.stdout).toMatch(/^0 failed, \d+ warnings, \d+ ok$/m);
}, 60_000);

test("doctor fails, and says what to do, on a loose key file, a bad config and a taken port", async () => {
  const key = join(daemon.dataDir, "master.key");
  chmodSync(key, 0o644);
  try {
    const loose = await daemon.run(["doctor", "--listen", `127.0.0.1:${daemon.port}`]);
    expect(loose.code).toBe(1);
    expect(loose.stdout).toContain(`FAIL  master key`);
    expect(loose.stdout).toContain(`fix: chmod 600 ${key}`);
  } finally {
    chmodSync(key, 0o600);
  }

  const badConfig = join(daemon.dataDir, "bad.toml");
  writeFileSync(badConfig, 'listen = "nowhere"\n');
  const bad = await daemon.run(["doctor", "--config", badConfig]);
  expect(bad.code).toBe(1);
  expect(bad.stdout).toMatch(/^FAIL {2}config .*listen/m);
  expect(bad.stdout).toContain("pg_dump"); // the tool checks still run

  // A port held by something that is not snapdb.
  const squatter = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("not snapdb", { status: 418 }) });
  try {
    const taken = await daemon.run(["doctor", "--listen", `127.0.0.1:${squatter.port}`]);
    expect(taken.code).toBe(1);
    expect(taken.stdout).toMatch(/^FAIL {2}listen .*not snapdb .*HTTP 418.*fix: stop it/m);
  } finally {
    squatter.stop(true);
  }
}, 60_000);

test("ready: 0 once the daemon answers /readyz, 1 after --timeout when nothing does", async () => {
  const up = await daemon.run(["ready", "--listen", `127.0.0.1:${daemon.port}`, "--timeout", "5"]);
  expect(up.code).toBe(0);
  expect(up.stdout).toContain("ready");
  const started = Date.now();
  const down = await daemon.run(["ready", "--listen", `127.0.0.1:${await freePort()}`, "--timeout", "1"]);
  expect(down.code).toBe(1);
  expect(down.stderr).toContain("did not answer ready within 1s");
  expect(Date.now() - started).toBeLessThan(10_000);
}, 30_000);

test("key export prints the org's age identity, which decrypts what its recipient encrypted", async () => {
  const store = openStore(join(daemon.dataDir, "snapdb.db"));
  let recipient: string;
  try {
    recipient = await ensureOrgRecipient(store.db, new SecretBox(readKeyFile(join(daemon.dataDir, "master.key"))), "org_keys");
  } finally {
    store.sqlite.close();
  }
  const exported = await daemon.run(["key", "export", "--org", "org_keys"]);
  expect(exported.code).toBe(0);
  expect(exported.stdout).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]+\n$/);
  expect(exported.stderr).toContain("keep it secret");

  const keyFile = join(daemon.dataDir, "exported-key.txt");
  writeFileSync(keyFile, exported.stdout, { mode: 0o600 });
  const enc = Bun.spawn(["age", "-r", recipient], { stdin: new TextEncoder().encode("a backup"), stdout: "pipe" });
  const ciphertext = new Uint8Array(await new Response(enc.stdout).arrayBuffer());
  expect(await enc.exited).toBe(0);
  const dec = Bun.spawn(["age", "-d", "-i", keyFile], { stdin: ciphertext, stdout: "pipe", stderr: "pipe" });
  expect(await new Response(dec.stdout).text()).toBe("a backup");
  expect(await dec.exited).toBe(0);

  const none = await daemon.run(["key", "export", "--org", "org_without_backups"]);
  expect(none.code).toBe(1);
  expect(none.stdout).toBe("");
  expect(none.stderr).toContain("has no key yet");
  expect((await daemon.run(["key", "import", "--org", "x"])).code).toBe(2);
  expect((await daemon.run(["key", "export"])).stderr).toContain("--org is required");
}, 30_000);
