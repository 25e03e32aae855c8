import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { COMMANDS } from "../../src/cli/registry.ts";
import { LATEST_SCHEMA_VERSION } from "../../src/db/migrate.ts";
import { tempDir } from "../helpers/tmp.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const dir = tempDir("snapdb-cli");
afterAll(() => dir.cleanup());

function snapdb(args: string[], env: Record<string, string> = {}) {
  const { SNAPDB_CONFIG: _c, SNAPDB_JWT_SECRET: _s, ...base } = process.env;
  const r = Bun.spawnSync([process.execPath, MAIN, ...args], { cwd: dir.path, env: { ...base, SNAPDB_DATA_DIR: join(dir.path, "data"), ...env } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("snapdb CLI", () => {
  test("token prints only a token with the asked claims", () => {
    const r = snapdb(["token", "--org", "acme", "--sub", "me", "--scope", "backup.read audit.read", "--ttl", "15m"]);
    expect(r.code).toBe(0);
    expect(r.out.trim().split("\n").length).toBe(1);
    const claims = decodeJwt(r.out.trim());
    expect(claims).toMatchObject({ org_id: "acme", sub: "me", aud: "snapdb", scope: "backup.read audit.read" });
    expect(claims.exp! - claims.iat!).toBe(900);
  });

  test("token refuses bad input with exit code 2 and says why", () => {
    expect(snapdb(["token", "--sub", "me"])).toMatchObject({ code: 2, err: expect.stringContaining("--org is required") });
    expect(snapdb(["token", "--org", "a", "--sub", "b", "--scope", "root"])).toMatchObject({ code: 2, err: expect.stringContaining("unknown scope root") });
    expect(snapdb(["token", "--org", "a", "--sub", "b", "--ttl", "forever"])).toMatchObject({ code: 2, err: expect.stringContaining("--ttl") });
    expect(snapdb(["token", "--org", "a", "--sub", "b", "--bogus"]).code).toBe(2);
  });

  test("serve --print-config shows the effective config with secrets masked", () => {
    const secret = "a-very-long-shared-secret-for-hs256-signing";
    const r = snapdb(["serve", "--print-config", "--listen", "127.0.0.1:9999"], { SNAPDB_JWT_SECRET: secret });
    expect(r.code).toBe(0);
    expect(r.out).toContain('listen = "127.0.0.1:9999"');
    expect(r.out).toContain('jwtSecret = "********"');
    expect(r.out).not.toContain(secret);
  });

  test("serve --print-config shows the store URL with its password masked (user-info and query)", () => {
    const password = "store-pw-x9";
    const r = snapdb(["serve", "--print-config"], { SNAPDB_STORE_URL: `postgres://snap:${password}@db.example:5432/snapdb?sslmode=require&password=${password}` });
    expect(r.code).toBe(0);
    expect(r.out).toContain("postgres://snap:********@db.example:5432/snapdb?sslmode=require&password=********");
    expect(r.out).not.toContain(password);
  });

  test("an invalid config stops with every problem and exit code 2", () => {
    const r = snapdb(["serve"], { SNAPDB_LISTEN: "nowhere", SNAPDB_RUNNER_MAX_CONCURRENT: "0" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("invalid configuration");
    expect(r.err).toContain("listen (from env SNAPDB_LISTEN)");
    expect(r.err).toContain("runner.maxConcurrent (from env SNAPDB_RUNNER_MAX_CONCURRENT)");
  });

  test("migrate applies once, then reports up to date; a newer store is refused", () => {
    const first = snapdb(["migrate"]);
    expect(first.code).toBe(0);
    expect(first.out).toContain(`schema version ${LATEST_SCHEMA_VERSION} (applied`);
    expect(snapdb(["migrate"]).out).toContain("already up to date");
    const db = new Database(join(dir.path, "data", "snapdb.db"));
    db.run(`PRAGMA user_version = ${LATEST_SCHEMA_VERSION + 5}`);
    db.close();
    const refused = snapdb(["serve"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("newer than this snapdb binary knows");
  });

  test("snapdb --help lists every command with the summary it gives itself", async () => {
    const r = snapdb(["--help"]);
    expect(r.code).toBe(0);
    for (const entry of COMMANDS) {
      const command = await entry.load();
      expect({ name: entry.name, summary: entry.summary }).toEqual({ name: command.name, summary: command.summary });
      expect(r.out).toContain(`  ${command.name.padEnd(18)} ${command.summary}\n`);
    }
  });

  test("every command has --help", () => {
    for (const command of ["serve", "token", "migrate", "store", "version"]) {
      const r = snapdb([command, "--help"]);
      expect({ command, code: r.code }).toEqual({ command, code: 0 });
      expect(r.out).toContain(`snapdb ${command}`);
    }
  });
});
