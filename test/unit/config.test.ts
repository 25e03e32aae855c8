import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { MASK, printableConfig } from "../../src/config/print.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-config");
afterAll(() => dir.cleanup());
const NO_FILE = { defaultConfigFile: join(dir.path, "absent.toml") };

function writeToml(name: string, text: string): string {
  const file = join(dir.path, name);
  writeFileSync(file, text);
  return file;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  test("embedded defaults with nothing configured", () => {
    const { config, file } = loadConfig({ env: {}, ...NO_FILE });
    expect(file).toBeNull();
    expect(config.listen).toBe("127.0.0.1:8484");
    expect(config.dataDir).toBe(join(process.cwd(), "data"));
    expect(config.masterKeyFile).toBe(join(process.cwd(), "data", "master.key"));
    expect(config.auth.audience).toBe("snapdb");
    expect(config.auth.orgClaim).toBe("org_id");
    expect(config.managedStorage).toEqual({ type: "local", path: join(process.cwd(), "data", "managed") });
    expect(config.runner.maxConcurrent).toBe(2);
    expect(config.scheduler.catchUp).toBe("one");
  });

  test("file < env < flags, and paths derive from the chosen data dir", () => {
    const file = writeToml("layers.toml", `listen = "127.0.0.1:1111"\ndataDir = "${dir.path}/from-file"\n[auth]\naudience = "file-aud"\n[runner]\nmaxConcurrent = 5\n`);
    const { config } = loadConfig({
      flags: { "--config": file, "--listen": "127.0.0.1:3333" },
      env: { SNAPDB_LISTEN: "127.0.0.1:2222", SNAPDB_JWT_AUDIENCE: "env-aud", SNAPDB_DATA_DIR: `${dir.path}/from-env` },
    });
    expect(config.listen).toBe("127.0.0.1:3333");
    expect(config.auth.audience).toBe("env-aud");
    expect(config.runner.maxConcurrent).toBe(5);
    expect(config.dataDir).toBe(`${dir.path}/from-env`);
    expect(config.auth.jwtSecretFile).toBe(`${dir.path}/from-env/jwt-secret`);
  });

  test("SNAPDB_CONFIG names the file; --config wins over it", () => {
    const a = writeToml("a.toml", `listen = "127.0.0.1:4001"\n`);
    const b = writeToml("b.toml", `listen = "127.0.0.1:4002"\n`);
    expect(loadConfig({ env: { SNAPDB_CONFIG: a } }).config.listen).toBe("127.0.0.1:4001");
    expect(loadConfig({ env: { SNAPDB_CONFIG: a }, flags: { "--config": b } }).config.listen).toBe("127.0.0.1:4002");
  });

  test("the default file is read when it exists", () => {
    const file = writeToml("default.toml", `listen = "127.0.0.1:4003"\n`);
    const loaded = loadConfig({ env: {}, defaultConfigFile: file });
    expect(loaded.file).toBe(file);
    expect(loaded.config.listen).toBe("127.0.0.1:4003");
  });

  test("every problem is reported with its path and origin", () => {
    const file = writeToml("bad.toml", `listen = 8484\n[runner]\nmaxConcurent = 3\n[scheduler]\ncatchUp = "all"\n[managedStorage]\ntype = "s3"\n`);
    const problems = problemsOf(() => loadConfig({ flags: { "--config": file }, env: { SNAPDB_RUNNER_MAX_CONCURRENT: "lots" } }));
    const text = problems.join("\n");
    expect(text).toContain(`listen (from file ${file})`);
    expect(text).toContain(`runner.maxConcurent (from file ${file}): unknown key`);
    expect(text).toContain("runner.maxConcurrent (from env SNAPDB_RUNNER_MAX_CONCURRENT)");
    expect(text).toContain("scheduler.catchUp");
    expect(text).toContain("managedStorage.bucket: is required");
    expect(text).toContain("managedStorage.region: is required");
    expect(problems.length).toBeGreaterThanOrEqual(6);
  });

  test("semantic checks: listen address, key sources, absolute roots", () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {
          SNAPDB_LISTEN: "localhost",
          SNAPDB_JWT_PUBLIC_KEY_FILE: join(dir.path, "missing.pem"),
          SNAPDB_JWT_JWKS_URL: "ftp://x",
          SNAPDB_ALLOWED_LOCAL_ROOTS: "relative/dir",
          SNAPDB_ALLOWED_SQLITE_ROOTS: "/srv/sqlite,../apps",
        },
        ...NO_FILE,
      }),
    );
    const text = problems.join("\n");
    expect(text).toContain("listen (from env SNAPDB_LISTEN): must be HOST:PORT");
    expect(text).toContain("set either auth.publicKeyFile or auth.jwksUrl");
    expect(text).toContain("auth.jwksUrl (from env SNAPDB_JWT_JWKS_URL): must be an http(s) URL");
    expect(text).toContain("does not exist");
    expect(text).toContain("storage.allowedLocalRoots.0 (from env SNAPDB_ALLOWED_LOCAL_ROOTS): must be an absolute path");
    expect(text).toContain("sources.allowedSqliteRoots.1 (from env SNAPDB_ALLOWED_SQLITE_ROOTS): must be an absolute path");
    expect(text).not.toContain("sources.allowedSqliteRoots.0");
  });

  test("__proto__, constructor and prototype keys are refused as unknown, never merged", () => {
    const file = writeToml(
      "proto.toml",
      `[__proto__]\npolluted = true\n[auth.__proto__]\npolluted = true\nmaxTokenLifetimeSeconds = 3153600000\n[runner.constructor]\nprototype = 1\n[storage]\nprototype = ["/"]\n`,
    );
    const problems = problemsOf(() => loadConfig({ flags: { "--config": file }, env: {} }));
    const text = problems.join("\n");
    expect(text).toContain(`__proto__ (from file ${file}): unknown key`);
    expect(text).toContain(`auth.__proto__ (from file ${file}): unknown key`);
    expect(text).toContain(`runner.constructor (from file ${file}): unknown key`);
    expect(text).toContain(`storage.prototype (from file ${file}): unknown key`);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
  });

  test("storage.stsEndpoint is an http(s) URL; storage.allowedRoleArns are ARN globs", () => {
    const text = problemsOf(() => loadConfig({ env: { SNAPDB_STS_ENDPOINT: "sts.example.com", SNAPDB_ALLOWED_ROLE_ARNS: "arn:aws:iam::123456789012:role/*,*" }, ...NO_FILE })).join("\n");
    expect(text).toContain("storage.stsEndpoint (from env SNAPDB_STS_ENDPOINT): must be an http(s) URL");
    expect(text).toContain("storage.allowedRoleArns.1 (from env SNAPDB_ALLOWED_ROLE_ARNS): must be a role ARN glob");
    expect(text).not.toContain("storage.allowedRoleArns.0");
    const { config } = loadConfig({ env: { SNAPDB_STS_ENDPOINT: "http://127.0.0.1:9000" }, ...NO_FILE });
    expect(config.storage.stsEndpoint).toBe("http://127.0.0.1:9000");
  });

  test("a short HS256 secret is refused", () => {
    const problems = problemsOf(() => loadConfig({ env: { SNAPDB_JWT_SECRET: "short" }, ...NO_FILE }));
    expect(problems.join("\n")).toContain("auth.jwtSecret (from env SNAPDB_JWT_SECRET): must be at least 32 characters");
  });

  test("IPv6 listen addresses are accepted", () => {
    expect(loadConfig({ env: { SNAPDB_LISTEN: "[::1]:8484" }, ...NO_FILE }).config.listen).toBe("[::1]:8484");
  });

  test("broken TOML names the file and line", () => {
    const file = writeToml("broken.toml", `listen = "a"\n[runner\n`);
    expect(problemsOf(() => loadConfig({ flags: { "--config": file } }))[0]).toMatch(/broken\.toml: not valid TOML at line 2/);
  });

  test("a named config file that is missing is an error, not silently skipped", () => {
    expect(problemsOf(() => loadConfig({ flags: { "--config": join(dir.path, "nope.toml") } }))[0]).toContain("cannot be read");
  });

  test("--print-config masks secrets", () => {
    const secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
    const file = writeToml("s3.toml", `[managedStorage]\ntype = "s3"\nregion = "eu-west-1"\nbucket = "b"\naccessKeyId = "AKIDEXAMPLE"\nsecretAccessKey = "wJalrXUtnFEMI"\n`);
    const { config } = loadConfig({ flags: { "--config": file }, env: { SNAPDB_JWT_SECRET: secret } });
    const text = printableConfig(config);
    expect(text).not.toContain(secret);
    expect(text).not.toContain("wJalrXUtnFEMI");
    expect(text).toContain(`jwtSecret = "${MASK}"`);
    expect(text).toContain(`secretAccessKey = "${MASK}"`);
    expect(text).toContain(`accessKeyId = "AKIDEXAMPLE"`);
  });
});
