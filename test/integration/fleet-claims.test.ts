import { expect, test } from "bun:test";
import { REPO_ROOT } from "../helpers/daemon.ts";

/**
 * Runs fleet-claims.on-pg.ts (two nodes over one PostgreSQL store, in-process runners) in a
 * `bun test` process of its own: opening a PostgreSQL store binds the whole process to that
 * engine's tables (src/db/schema.ts), which the rest of the suite, on the embedded store by
 * default, must not inherit. Its tests' names and failures are printed here when it fails.
 */
test("two nodes share one queue: pinning, per-org limit, per-source exclusivity, SKIP LOCKED (own process, real PostgreSQL)", async () => {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.SNAPDB_TEST_STORE; // the file starts its own PostgreSQL store
  const child = Bun.spawn([process.execPath, "test", "--timeout", "120000", "./test/integration/fleet-claims.on-pg.ts"], {
    cwd: REPO_ROOT,
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 280_000);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  clearTimeout(timer);
  const code = await child.exited;
  const report = `${out}\n${err}`;
  const failed = report.split("\n").filter((line) => line.startsWith("(fail)"));
  expect({ code, failed, tail: code === 0 ? "" : report.slice(-4000) }).toEqual({ code: 0, failed: [], tail: "" });
  expect(report).toMatch(/\n\s*6 pass\n\s*0 fail\n/);
}, 300_000);
