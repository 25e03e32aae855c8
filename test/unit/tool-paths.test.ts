import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findChromium, findFaketimeLib, findPgBinDir } from "../helpers/tool-paths.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * How the suite finds PostgreSQL's server programs, Chromium and libfaketime on a machine it
 * did not choose: over a fake /usr/lib/postgresql, fake PATH directories and stand-in
 * programs, so each rule of the order is seen winning and being passed over.
 */
const dir = tempDir("snapdb-tool-paths");
afterAll(() => dir.cleanup());

function executable(path: string, body = "exit 0"): string {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A /usr/lib/postgresql with the given versions' bin dirs, each with initdb unless `bare`. */
function pgRoot(name: string, versions: string[], bare: string[] = []): string {
  const root = join(dir.path, name);
  for (const v of versions) {
    mkdirSync(join(root, v, "bin"), { recursive: true });
    if (!bare.includes(v)) executable(join(root, v, "bin", "initdb"));
  }
  return root;
}

/** A PATH directory whose pg_config says `bindir`. */
function pgConfigSaying(name: string, bindir: string): string {
  const path = join(dir.path, name);
  executable(join(path, "pg_config"), `echo ${bindir}`);
  return path;
}

describe("PostgreSQL's bin directory", () => {
  const root = pgRoot("pg-many", ["9.6", "13", "16", "15"], ["16"]);

  test("SNAPDB_TEST_PG_BIN first, even over pg_config", () => {
    const path = pgConfigSaying("cfg-13", join(root, "13", "bin"));
    expect(findPgBinDir({ env: { SNAPDB_TEST_PG_BIN: join(root, "9.6", "bin") }, path, pgRoot: root })).toBe(join(root, "9.6", "bin"));
  });

  test("an override without initdb is an error, not a fallback", () => {
    expect(() => findPgBinDir({ env: { SNAPDB_TEST_PG_BIN: join(root, "16", "bin") }, path: join(dir.path, "empty"), pgRoot: root })).toThrow(/SNAPDB_TEST_PG_BIN=.* has no initdb/);
  });

  test("then pg_config --bindir, when initdb is there", () => {
    const path = pgConfigSaying("cfg-13b", join(root, "13", "bin"));
    expect(findPgBinDir({ env: {}, path, pgRoot: root })).toBe(join(root, "13", "bin"));
  });

  test("pg_config naming a version without its server (libpq-dev alone): the newest installed server", () => {
    const path = pgConfigSaying("cfg-16", join(root, "16", "bin"));
    // 16 has no initdb; 15 is the newest that does, compared as numbers (9.6 < 13 < 15).
    expect(findPgBinDir({ env: {}, path, pgRoot: root })).toBe(join(root, "15", "bin"));
  });

  test("no pg_config on PATH: the newest installed server", () => {
    expect(findPgBinDir({ env: {}, path: join(dir.path, "empty"), pgRoot: pgRoot("pg-two", ["14", "9.6"]) })).toBe(join(dir.path, "pg-two", "14", "bin"));
  });

  test("nothing installed: an error that says how to install it", () => {
    expect(() => findPgBinDir({ env: {}, path: join(dir.path, "empty"), pgRoot: join(dir.path, "nowhere") })).toThrow(/install-test-deps\.sh \(package postgresql\)/);
  });
});

describe("Chromium", () => {
  const debian = join(dir.path, "debian-bin");
  const ubuntu = join(dir.path, "ubuntu-bin");
  executable(join(debian, "chromium"));
  executable(join(ubuntu, "chromium-browser"));

  test("SNAPDB_TEST_CHROMIUM first", () => {
    const own = executable(join(dir.path, "own", "chrome"));
    expect(findChromium({ env: { SNAPDB_TEST_CHROMIUM: own }, path: debian })).toBe(own);
  });

  test("an override that is no executable is an error", () => {
    expect(() => findChromium({ env: { SNAPDB_TEST_CHROMIUM: join(dir.path, "missing") }, path: debian })).toThrow(/SNAPDB_TEST_CHROMIUM=/);
  });

  test("then chromium (Debian) before chromium-browser (Ubuntu), whatever the PATH order", () => {
    expect(findChromium({ env: {}, path: `${ubuntu}:${debian}` })).toBe(join(debian, "chromium"));
    expect(findChromium({ env: {}, path: ubuntu })).toBe(join(ubuntu, "chromium-browser"));
  });

  test("none: an error that says how to get one", () => {
    expect(() => findChromium({ env: {}, path: join(dir.path, "empty") })).toThrow(/install-test-deps\.sh.*SNAPDB_TEST_CHROMIUM/);
  });
});

describe("libfaketime", () => {
  test("found in the multiarch directory, whichever the architecture", () => {
    const root = join(dir.path, "usr-lib");
    const lib = join(root, "aarch64-linux-gnu", "faketime", "libfaketime.so.1");
    executable(lib);
    expect(findFaketimeLib({ libRoot: root })).toBe(lib);
    expect(() => findFaketimeLib({ libRoot: join(dir.path, "nowhere") })).toThrow(/package faketime/);
  });
});

test("on this machine: each is found and usable", () => {
  const bin = findPgBinDir();
  expect(Bun.spawnSync([join(bin, "initdb"), "--version"]).stdout.toString()).toMatch(/initdb \(PostgreSQL\) \d+/);
  expect(Bun.spawnSync([findChromium(), "--version"]).stdout.toString()).toMatch(/Chrom/);
  expect(findFaketimeLib()).toMatch(/libfaketime\.so\.1$/);
});
