import { describe, expect, test } from "bun:test";
import { classifyConnectError, leadingVersion } from "../../src/engines/network.ts";
import { pgToolMajor } from "../../src/engines/postgres.ts";
import { childEnv, runTool, StderrTail } from "../../src/engines/process.ts";
import type { SourceTarget } from "../../src/engines/types.ts";

const target = (extra: Partial<SourceTarget> = {}): SourceTarget => ({
  engine: "postgres",
  host: "db",
  port: 5432,
  database: "app",
  path: null,
  options: {},
  credentials: { username: "u", password: "hunter2-secret" },
  ...extra,
});

describe("engines: error classification", () => {
  test("server codes and client codes map to the API's verify codes", () => {
    const c = (err: object, t = target()) => classifyConnectError(err, t).code;
    expect(c({ code: "ERR_POSTGRES_SERVER_ERROR", errno: "28P01" })).toBe("AUTH_FAILED");
    expect(c({ code: "ERR_POSTGRES_SERVER_ERROR", errno: "3D000" })).toBe("DATABASE_NOT_FOUND");
    expect(c({ code: "ERR_POSTGRES_CONNECTION_REFUSED" })).toBe("CONNECTION_REFUSED");
    expect(c({ code: "ERR_POSTGRES_CONNECTION_TIMEOUT" })).toBe("TIMEOUT");
    expect(c({ code: "ERR_POSTGRES_TLS_NOT_AVAILABLE" })).toBe("TLS_ERROR");
    expect(c({ code: "ERR_MYSQL_SERVER_ERROR", errno: 1045 })).toBe("AUTH_FAILED");
    expect(c({ code: "ERR_MYSQL_SERVER_ERROR", errno: 1049 })).toBe("DATABASE_NOT_FOUND");
    expect(c({ code: "ERR_MYSQL_AUTHENTICATION_FAILED" }, target({ options: { sslMode: "require" } }))).toBe("TLS_ERROR");
    expect(c({ code: "ERR_MYSQL_AUTHENTICATION_FAILED" })).toBe("AUTH_FAILED");
    expect(c({ code: "SOMETHING_ELSE", message: "getaddrinfo ENOTFOUND" })).toBe("CONNECTION_REFUSED");
  });

  test("a password echoed by a driver never reaches the message", () => {
    const e = classifyConnectError({ code: "X", message: "bad login hunter2-secret for u" }, target());
    expect(e.message).not.toContain("hunter2-secret");
  });

  test("a one-letter password is masked only where it stands alone; a long one everywhere", () => {
    const driver = { code: "ERR_POSTGRES_SERVER_ERROR", errno: "28P01", message: 'password authentication failed for user "app" (password a)' };
    const short = classifyConnectError(driver, target({ credentials: { username: "app", password: "a" } }));
    expect(short.code).toBe("AUTH_FAILED");
    expect(short.message).toBe('password authentication failed for user "app" (password ***)');
    const long = "s3cr3t-Passw0rd";
    const echoed = classifyConnectError({ ...driver, message: `login with ${long} refused (pw=${long}x)` }, target({ credentials: { username: "app", password: long } }));
    expect(echoed.message).toBe("login with *** refused (pw=***x)");
  });

  test("versions", () => {
    expect(pgToolMajor("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")).toBe(15);
    expect(pgToolMajor("pg_dump (PostgreSQL) 9.6.24")).toBe(9);
    expect(pgToolMajor("nonsense")).toBeNull();
    expect(leadingVersion("15.18 (Debian 15.18-0+deb12u1)")).toBe("15.18");
    expect(leadingVersion("10.11.19-MariaDB-0+deb12u1")).toBe("10.11.19");
  });
});

describe("engines: child processes", () => {
  test("the stderr tail keeps the end and hides secrets", () => {
    const tail = new StderrTail(16);
    tail.push(Buffer.from("a".repeat(100)));
    tail.push(Buffer.from("end pw=hunter2"));
    const text = tail.text(["hunter2"]);
    expect(text.length).toBeLessThanOrEqual(16);
    expect(text).toContain("pw=***");
    expect(text).not.toContain("hunter2");
  });

  test("a tool gets a minimal env plus its secret variables, and the secret is not in argv", async () => {
    const secret = "pw-" + crypto.randomUUID();
    const run = await runTool(["/bin/sh", "-c", 'echo "$PGPASSWORD|${HOME:-nohome}"; echo "$PGPASSWORD" >&2; exit 3'], {
      toolPath: "/usr/bin:/bin",
      secretEnv: { PGPASSWORD: secret },
      timeoutMs: 5000,
    });
    expect(run.exitCode).toBe(3);
    expect(run.stdout.trim()).toBe(`${secret}|nohome`);
    expect(run.stderrTail).toBe("***");
    expect(Object.keys(childEnv("/bin")).sort()).toEqual(["LANG", "LC_ALL", "PATH"]);
  });

  test("a tool that hangs is killed at the timeout", async () => {
    const started = Date.now();
    const run = await runTool(["/bin/sleep", "10"], { toolPath: "/bin", timeoutMs: 200 });
    expect(run.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
