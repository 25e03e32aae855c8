import { afterAll, expect, test } from "bun:test";
import { chmodSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * `npm test` on a fresh machine installs what the suite needs. The script's decisions are
 * tested with stand-ins for the system's package tools on PATH (dpkg-query says two packages
 * are missing, apt-get and sudo record their calls, id says who we are): nothing is installed.
 */
const bin = tempDir("snapdb-test-deps");
afterAll(() => bin.cleanup());

function shim(name: string, body: string) {
  const path = join(bin.path, name);
  writeFileSync(path, `#!/usr/bin/env bash\n${body}\n`);
  chmodSync(path, 0o755);
}

/** A directory with just the system tools the script needs besides the stand-ins: no Chromium, no sudo. */
const sys = tempDir("snapdb-test-deps-sys");
afterAll(() => sys.cleanup());
for (const tool of ["bash", "grep", "env"]) symlinkSync(Bun.which(tool)!, join(sys.path, tool));

interface RunOptions {
  /** The machine's /etc/os-release ID (default debian). */
  os?: string;
  /** Packages dpkg-query says are missing, as a shell `case` pattern. */
  missing?: string;
  env?: Record<string, string>;
}

function run(uid: number, withSudo: boolean, opts: RunOptions = {}) {
  const log = join(bin.path, `calls-${uid}-${withSudo}`);
  writeFileSync(log, "");
  const osRelease = join(bin.path, "os-release");
  writeFileSync(osRelease, `PRETTY_NAME="test"\nID=${opts.os ?? "debian"}\n`);
  shim("dpkg-query", `case "$*" in ${opts.missing ?? "*age*|*jq*"}) exit 1;; *) printf 'install ok installed';; esac`);
  shim("apt-get", `echo "apt-get $*" >> "$CALLS"`);
  shim("id", `echo ${uid}`);
  if (withSudo) shim("sudo", `echo "sudo $1" >> "$CALLS"; exec "$@"`);
  else rmSync(join(bin.path, "sudo"), { force: true });
  const res = Bun.spawnSync(["/bin/bash", join(REPO_ROOT, "scripts/install-test-deps.sh")], {
    env: { PATH: `${bin.path}:${sys.path}`, CALLS: log, SNAPDB_OS_RELEASE: osRelease, ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: res.exitCode, stderr: res.stderr.toString(), calls: readFileSync(log, "utf8") };
}

test("as root: says what is missing and installs exactly that", () => {
  const r = run(0, false);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("installing the Debian packages the tests need: age jq");
  expect(r.calls).toContain("apt-get update -qq");
  expect(r.calls).toMatch(/apt-get install -y -qq --no-install-recommends age jq\n/);
  expect(r.calls).not.toContain("sudo");
});

test("not root, with sudo: installs through sudo", () => {
  const r = run(1000, true);
  expect(r.code).toBe(0);
  expect(r.calls).toContain("sudo env");
  expect(r.calls).toMatch(/apt-get install .* age jq\n/);
});

test("not root, no sudo: refuses with the command to run", () => {
  const r = run(1000, false);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("missing Debian packages: age jq");
  expect(r.calls).toBe("");
});

test("Chromium's package is the distribution's: chromium on Debian, chromium-browser on Ubuntu", () => {
  const missing = "*age*|*chromium*";
  expect(run(0, false, { missing }).calls).toMatch(/apt-get install -y -qq --no-install-recommends chromium age\n/);
  expect(run(0, false, { missing, os: "ubuntu" }).calls).toMatch(/apt-get install -y -qq --no-install-recommends chromium-browser age\n/);
});

test("a Chromium named by SNAPDB_TEST_CHROMIUM, or one on PATH, is not installed again", () => {
  const missing = "*age*|*chromium*";
  expect(run(0, false, { missing, os: "ubuntu", env: { SNAPDB_TEST_CHROMIUM: "/opt/chrome/chrome" } }).calls).toMatch(/apt-get install -y -qq --no-install-recommends age\n/);
  shim("chromium-browser", "exit 0");
  try {
    expect(run(0, false, { missing, os: "ubuntu" }).calls).toMatch(/apt-get install -y -qq --no-install-recommends age\n/);
  } finally {
    rmSync(join(bin.path, "chromium-browser"));
  }
});

test("npm test runs the installer before the suite", () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
  expect(pkg.scripts.test).toBe("bash scripts/test.sh");
  const script = readFileSync(join(REPO_ROOT, "scripts/test.sh"), "utf8");
  const install = script.indexOf("\nbash scripts/install-test-deps.sh");
  expect(install).toBeGreaterThan(0);
  expect(script.indexOf(" bun test --timeout")).toBeGreaterThan(install);
});
