import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { inspectSqlite, SqliteInspectError } from "../../src/engines/sqlite-inspect.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * SQLite checks are tenant SQL: run in a child process, so one that never ends is stopped at
 * its deadline while the daemon's thread keeps serving, and nothing is left running.
 */
const dir = tempDir("snapdb-inspect");
afterAll(() => dir.cleanup());

const file = join(dir.path, "db.sqlite");
const db = new Database(file);
db.run("CREATE TABLE a (x)");
db.run("INSERT INTO a VALUES (1), (2)");
db.close();

test("counts and a check", async () => {
  expect(await inspectSqlite(file, { count: true }, { timeoutMs: 10_000 })).toEqual({ tables: { a: 2 } });
  expect(await inspectSqlite(file, { check: "SELECT sum(x) FROM a" }, { timeoutMs: 10_000 })).toEqual({ found: "3" });
  expect((await inspectSqlite(file, { check: "DELETE FROM a" }, { timeoutMs: 10_000 })).error).toMatch(/readonly/i);
});

test("an endless query is stopped at its deadline; the daemon's thread stays free; no process is left", async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 50);
  const started = Date.now();
  const err = await inspectSqlite(file, { check: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" }, { timeoutMs: 1500 }).catch((e) => e);
  clearInterval(timer);
  expect(err).toBeInstanceOf(SqliteInspectError);
  expect(err.timedOut).toBe(true);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(ticks).toBeGreaterThan(15);
  // The child's argv is its script (the check comes on stdin): none may still run.
  const left = Bun.spawnSync(["pgrep", "-f", "PRAGMA query_only = ON"]).stdout.toString().trim();
  expect(left).toBe("");
});

test("verify, objects, integrity and checkpoint, each in the child", async () => {
  expect(await inspectSqlite(file, { verify: true }, { timeoutMs: 10_000 })).toEqual({ version: expect.stringMatching(/^3\.\d+/) });
  expect(await inspectSqlite(file, { objects: true }, { timeoutMs: 10_000 })).toEqual({ objects: 1 });
  expect(await inspectSqlite(file, { integrity: true }, { timeoutMs: 10_000 })).toEqual({ integrity: "ok" });
  expect(await inspectSqlite(file, { checkpoint: true }, { timeoutMs: 10_000 })).toEqual({ checkpointed: true });
  const text = join(dir.path, "not-a-db.txt");
  await Bun.write(text, "hello, this is not a database, not at all, and it is long enough to have a header\n".repeat(4));
  expect(await inspectSqlite(text, { objects: true }, { timeoutMs: 10_000 })).toEqual({ objects: -1 });
  expect((await inspectSqlite(text, { verify: true }, { timeoutMs: 10_000 })).error).toMatch(/not a database/i);
});

test("a FIFO where the file was (swapped in after the checks) blocks the child's open, not the daemon: stopped at the deadline", async () => {
  const fifo = join(dir.path, "swapped.db");
  Bun.spawnSync(["mkfifo", fifo]);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 50);
  const started = Date.now();
  // A read-only open of a FIFO waits for a writer: stopped at the deadline.
  for (const request of [{ verify: true }, { objects: true }] as const) {
    const err = await inspectSqlite(fifo, request, { timeoutMs: 700 }).catch((e) => e);
    expect(err).toBeInstanceOf(SqliteInspectError);
    expect(err.timedOut).toBe(true);
  }
  // A read-write open does not wait on Linux; SQLite then fails to read it.
  expect(await inspectSqlite(fifo, { checkpoint: true }, { timeoutMs: 700 })).toEqual({ error: expect.any(String) });
  clearInterval(timer);
  // The daemon's thread kept running its timers the whole time (three deadlines of 0.7 s).
  expect(ticks).toBeGreaterThan(((Date.now() - started) / 50) * 0.5);
});
