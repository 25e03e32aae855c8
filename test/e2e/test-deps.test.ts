import { afterAll, expect, test } from "bun:test";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
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

function run(uid: number, withSudo: boolean) {
  const log = join(bin.path, `calls-${uid}-${withSudo}`);
  writeFileSync(log, "");
  shim("dpkg-query", `case "$*" in *age*|*jq*) exit 1;; *) printf 'install ok installed';; esac`);
  shim("apt-get", `echo "apt-get $*" >> "$CALLS"`);
  shim("id", `echo ${uid}`);
  if (withSudo) shim("sudo", `echo "sudo $1" >> "$CALLS"; exec "$@"`);
  else Bun.spawnSync(["rm", "-f", join(bin.path, "sudo")]);
  const res = Bun.spawnSync(["/bin/bash", join(REPO_ROOT, "scripts/install-test-deps.sh")], {
    env: { PATH: `${bin.path}:/usr/bin:/bin`, CALLS: log },
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
  if (Bun.which("sudo", { PATH: "/usr/bin:/bin" })) return; // a real sudo would be found after our PATH
  const r = run(1000, false);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("missing Debian packages: age jq");
  expect(r.calls).toBe("");
});

test("npm test runs the installer before the suite", () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
  expect(pkg.scripts.test).toBe("bash scripts/test.sh");
  const script = readFileSync(join(REPO_ROOT, "scripts/test.sh"), "utf8");
  const install = script.indexOf("\nbash scripts/install-test-deps.sh");
  expect(install).toBeGreaterThan(0);
  expect(script.indexOf(" bun test --timeout")).toBeGreaterThan(install);
});
