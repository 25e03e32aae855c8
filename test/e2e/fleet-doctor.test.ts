import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { type PgServer, startPostgres } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { findFaketimeLib } from "../helpers/tool-paths.ts";

/**
 * `snapdb doctor` on a fleet: A is a healthy node; B shares the store but was given another
 * master key by mistake, and its clock runs 10 s ahead (libfaketime). Doctor on A's host
 * names B for both; once B is gone, the fleet checks are clean.
 */
const FAKETIME_LIB = findFaketimeLib();
let pg: PgServer;
let a: Daemon;
let b: Daemon;
const shared = tempDir("snapdb-fleet-doctor");

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE DATABASE fleet_doctor OWNER ${pg.user}`);
  const env = {
    SNAPDB_STORE_URL: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/fleet_doctor`,
    SNAPDB_JWT_SECRET: `doctor-secret-${crypto.randomUUID()}`,
  };
  a = await startDaemon({ env: { ...env, SNAPDB_MASTER_KEY_FILE: join(shared.path, "master.key") } });
  // B's key file is its own (generated in its data dir): the mistake doctor must catch.
  b = await startDaemon({ env: { ...env, LD_PRELOAD: FAKETIME_LIB, FAKETIME: "+10s" } });
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await pg?.stop();
  shared.cleanup();
});

const lineOf = (out: string, name: string) => out.split("\n").find((l) => l.includes(` ${name} `)) ?? "";
const nodeIdOf = (d: Daemon) =>
  Bun.file(join(d.dataDir, "node-id"))
    .text()
    .then((t) => t.trim());

test("doctor names the node with another master key, another version and a clock 10 s off", async () => {
  const bId = await nodeIdOf(b);
  pg.psql(`UPDATE nodes SET version = '0.0.1-old' WHERE id = '${bId}'`, "fleet_doctor");
  const r = await a.run(["doctor"]);
  expect(r.code).toBe(1);
  expect(lineOf(r.stdout, "store")).toMatch(/^ok .*schema version (\d+), this binary's is \1/);
  expect(r.stdout).not.toContain(pg.password);
  expect(lineOf(r.stdout, "fleet nodes")).toMatch(/^ok .*2 up/);
  expect(lineOf(r.stdout, "fleet master key")).toMatch(/^FAIL/);
  expect(lineOf(r.stdout, "fleet master key")).toContain(bId);
  expect(lineOf(r.stdout, "fleet master key")).not.toContain(await nodeIdOf(a));
  expect(lineOf(r.stdout, "fleet versions")).toMatch(new RegExp(`^warn .*${bId}.* runs 0\\.0\\.1-old`));
  const clocks = lineOf(r.stdout, "fleet clocks");
  expect(clocks).toMatch(/^warn /);
  const spread = Number(/spread (\d+) ms/.exec(clocks)?.[1]);
  expect(spread).toBeGreaterThanOrEqual(9_000);
  expect(spread).toBeLessThanOrEqual(11_000);
  expect(clocks).toMatch(new RegExp(`${bId} \\([^)]*\\) \\+(9|10)\\d{3} ms`));
}, 60_000);

test("without B the fleet checks are clean, and B shows as down", async () => {
  const bId = await nodeIdOf(b);
  await b.stop();
  const r = await a.run(["doctor"]);
  expect(lineOf(r.stdout, "fleet nodes")).toMatch(new RegExp(`^ok .*1 up.*1 down or stopped: ${bId}`));
  expect(lineOf(r.stdout, "fleet master key")).toMatch(/^ok /);
  expect(lineOf(r.stdout, "fleet versions")).toMatch(/^ok /);
  expect(lineOf(r.stdout, "fleet clocks")).toMatch(/^ok /);
}, 60_000);
