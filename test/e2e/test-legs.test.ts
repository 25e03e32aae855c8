import { afterAll, expect, test } from "bun:test";
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * `npm test` (scripts/test.sh) runs the store matrix: the whole suite on SQLite, then the API
 * suite on PostgreSQL, both always, failing when either fails; `.ci/run` adds up both JUnit
 * reports. Both scripts run here on a copy of the repo's layout, with stand-ins on PATH for
 * `bun` (records each run and writes the report it was asked for), `npm` and `dpkg-query`.
 */
const root = tempDir("snapdb-test-legs");
afterAll(() => root.cleanup());

const repo = join(root.path, "repo");
const bin = join(root.path, "bin");
const calls = join(root.path, "calls");
for (const dir of [".ci", "scripts", "test/integration", "test/unit", bin]) mkdirSync(join(repo, dir), { recursive: true });
mkdirSync(bin, { recursive: true });
for (const file of [".ci/run", "scripts/test.sh", "scripts/install-test-deps.sh"]) cpSync(join(REPO_ROOT, file), join(repo, file));
for (const name of ["data-sources", "fuzz", "openapi-lint", "store-copy", "cli"]) writeFileSync(join(repo, "test/integration", `${name}.test.ts`), "");

function shim(name: string, body: string) {
  writeFileSync(join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
  chmodSync(join(bin, name), 0o755);
}
shim("dpkg-query", `printf 'install ok installed'`);
// Each run: one line "<store> <args>"; a JUnit report with 10 tests, FAILS_<store> failures, 1 skipped.
shim(
  "bun",
  `echo "$SNAPDB_TEST_STORE $*" >> "${calls}"
store=$SNAPDB_TEST_STORE; var="FAILS_$store"; fails=\${!var:-0}
for a in "$@"; do case "$a" in --reporter-outfile=*) out="\${a#--reporter-outfile=}";; esac; done
[ -n "\${out:-}" ] && printf '<?xml version="1.0"?>\\n<testsuites name="bun test" tests="10" assertions="20" failures="%s" skipped="1" time="1">\\n</testsuites>\\n' "$fails" > "$out"
[ "$fails" = 0 ]`,
);
shim("npm", `[ "$1" = ci ] && exit 0; shift; [ "$1" = -- ] && shift; exec bash scripts/test.sh "$@"`);

function run(argv: string[], env: Record<string, string> = {}) {
  writeFileSync(calls, "");
  const res = Bun.spawnSync(argv, { cwd: repo, env: { PATH: `${bin}:/usr/bin:/bin`, ...env }, stdout: "pipe", stderr: "pipe" });
  // The legs run at the same time: their calls are listed SQLite first, whichever started first.
  const legOrder = (call: string) => (call.startsWith("sqlite") ? 0 : 1);
  const made = readFileSync(calls, "utf8")
    .trim()
    .split("\n")
    .sort((a, b) => legOrder(a) - legOrder(b));
  return { code: res.exitCode, stdout: res.stdout.toString(), stderr: res.stderr.toString(), calls: made };
}

test("npm test: the whole suite on SQLite and test/integration on PostgreSQL without the store-independent files, at once or one after the other", () => {
  for (const env of [{}, { SNAPDB_TEST_SERIAL: "1" }] as Record<string, string>[]) {
    const r = run(["bash", "scripts/test.sh"], env);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual(["sqlite test --timeout 60000", "postgres test --timeout 60000 ./test/integration/data-sources.test.ts ./test/integration/fuzz.test.ts"]);
  }
});

test("at once, the wall-clock-bound fleet test runs in the second process, after the PostgreSQL leg's files; one after the other, in the first", () => {
  const fleet = join(repo, "test/reliability/fleet-three.test.ts");
  mkdirSync(join(repo, "test/reliability"), { recursive: true });
  writeFileSync(fleet, "");
  writeFileSync(join(repo, "test/unit/clock.test.ts"), "");
  try {
    const r = run(["bash", "scripts/test.sh"]);
    expect(r.code).toBe(0);
    expect(r.calls[0]).toStartWith("sqlite test --timeout 60000 ./test/integration/cli.test.ts");
    expect(r.calls[0]).toContain("./test/unit/clock.test.ts");
    expect(r.calls[0]).not.toContain("fleet-three");
    expect(r.calls[1]).toEndWith("./test/integration/fuzz.test.ts ./test/reliability/fleet-three.test.ts");
    const serial = run(["bash", "scripts/test.sh"], { SNAPDB_TEST_SERIAL: "1" });
    expect(serial.calls[0]).toBe("sqlite test --timeout 60000");
    expect(serial.calls[1]).not.toContain("fleet-three");
  } finally {
    rmSync(join(repo, "test/reliability"), { recursive: true, force: true });
    rmSync(join(repo, "test/unit/clock.test.ts"));
  }
});

test("a failing SQLite leg still runs the PostgreSQL leg; either failing fails npm test", () => {
  const first = run(["bash", "scripts/test.sh"], { FAILS_sqlite: "2" });
  expect(first.calls).toHaveLength(2);
  expect(first.code).not.toBe(0);
  const second = run(["bash", "scripts/test.sh"], { FAILS_postgres: "1" });
  expect(second.calls).toHaveLength(2);
  expect(second.code).not.toBe(0);
});

test("a report file per leg; paths given run on both legs; SNAPDB_TEST_STORES picks one", () => {
  const r = run(["bash", "scripts/test.sh", "--reporter=junit", "--reporter-outfile=out/j.xml", "--timeout", "5000"]);
  expect(r.calls[0]).toBe("sqlite test --timeout 60000 --reporter=junit --reporter-outfile=out/j.xml --timeout 5000");
  expect(r.calls[1]).toStartWith("postgres test --timeout 60000 --reporter=junit --reporter-outfile=out/j-postgres.xml --timeout 5000 ./test/integration/");
  const spaced = run(["bash", "scripts/test.sh", "--reporter-outfile", "j.xml"]);
  expect(spaced.calls[1]).toStartWith("postgres test --timeout 60000 --reporter-outfile j-postgres.xml ./test/integration/");
  expect(run(["bash", "scripts/test.sh", "test/unit/x.test.ts"]).calls).toEqual(["sqlite test --timeout 60000 test/unit/x.test.ts", "postgres test --timeout 60000 test/unit/x.test.ts"]);
  expect(run(["bash", "scripts/test.sh"], { SNAPDB_TEST_STORES: "postgres" }).calls).toHaveLength(1);
});

test(".ci/run adds up both legs' reports in its one summary line", () => {
  const ok = run(["bash", ".ci/run"]);
  expect(ok.code).toBe(0);
  expect(ok.stdout.trim().split("\n").at(-1)).toBe("tests: 18 passed, 0 failed");
  const failing = run(["bash", ".ci/run"], { FAILS_postgres: "3" });
  expect(failing.code).not.toBe(0);
  expect(failing.stdout.trim().split("\n").at(-1)).toBe("tests: 15 passed, 3 failed");
});
