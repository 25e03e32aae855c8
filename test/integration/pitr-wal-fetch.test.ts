/**
 * Point-in-time restores with `"walDelivery": "fetch"`: nothing is copied into the restored
 * directory; its restore_command runs `snapdb wal-fetch`, which PostgreSQL calls for each WAL
 * file while the daemon keeps running (and archiving) beside it.
 *
 * wal-fetch reads the daemon's config, store and master key, so it must run as a user that
 * can read them. PostgreSQL runs restore_command as its own OS user (`postgres`), so here the
 * daemon runs as `postgres` too (its data dir and restore root belong to postgres; a wrapper
 * execs Bun under `setpriv --reuid postgres`), as pgBackRest runs beside PostgreSQL: the
 * setup the docs describe for this mode. The same daemon answers the CLI checks of
 * wal-fetch itself (exit 1 and nothing written for a file that is not archived, 128 with a
 * message for a real failure).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { REPO_ROOT, startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startPostgres, startPostgresOn, type PgServer } from "../helpers/postgres.ts";
import { waitFor } from "../helpers/servers.ts";
import { storeUrlFor } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";

const ORG = "org_pitr_fetch";
const scratch = tempDir("snapdb-pitr-fetch");
const dataDir = join(scratch.path, "data");
const restoreRoot = join(scratch.path, "restores");
const outDir = join(scratch.path, "out");
const wrapper = join(scratch.path, "snapdb-as-postgres");
const MAIN = join(REPO_ROOT, "src/main.ts");
const uid = Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim());
const gid = Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim());

let pg: PgServer;
let app: SQL;
let daemon: Daemon;
let api: DaemonApi;
let source: any;
const commits: { started: number; committed: number }[] = [];

async function commitRow(id: number) {
  const started = Date.now();
  await app`INSERT INTO events (id) VALUES (${id})`;
  commits[id] = { started, committed: Date.now() + 1 };
}
const between = (i: number) => Math.floor((commits[i]!.committed + commits[i + 1]!.started) / 2);

/** pg_receivewal processes writing into this daemon's spool (found by their argv). */
function receiversOfSpool(): number[] {
  const spool = join(dataDir, "wal-spool");
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.endsWith("pg_receivewal")) && argv.some((a) => a.startsWith(`--directory=${spool}/`))) pids.push(Number(pid));
    } catch {}
  }
  return pids;
}

/** `snapdb wal-fetch` as PostgreSQL would run it (as postgres), with the daemon's config. */
function walFetch(args: string[]) {
  return daemon.run(["wal-fetch", "--config", daemon.configFile, "--data-dir", dataDir, ...args]);
}

beforeAll(async () => {
  chmodSync(scratch.path, 0o755);
  for (const [dir, mode] of [
    [dataDir, 0o700],
    [restoreRoot, 0o755],
    [outDir, 0o755],
  ] as const) {
    mkdirSync(dir, { mode });
    chownSync(dir, uid, gid);
  }
  // exec all the way down: the daemon keeps the wrapper's pid, so the helper's signals reach it.
  writeFileSync(wrapper, `#!/bin/sh\nexec setpriv --reuid=${uid} --regid=${gid} --clear-groups env HOME=${scratch.path} ${process.execPath} ${MAIN} "$@"\n`, { mode: 0o755 });
  pg = await startPostgres({ replication: true });
  app = new SQL({ url: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`, max: 1 });
  await app`CREATE TABLE events (id int PRIMARY KEY)`;
  // On the store matrix's PostgreSQL leg the store's URL must be in the config file:
  // PostgreSQL runs wal-fetch without the daemon's environment.
  const storeUrl = await storeUrlFor(dataDir);
  daemon = await startDaemon({
    dataDir,
    binary: wrapper,
    config: storeUrl ? `[store]\nurl = ${JSON.stringify(storeUrl)}\n` : undefined,
    env: { SNAPDB_ALLOWED_RESTORE_ROOTS: restoreRoot, SNAPDB_LOG_LEVEL: "info" },
  });
  api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
}, 120_000);

afterAll(async () => {
  await daemon?.stop("SIGTERM").catch(() => {});
  for (const pid of receiversOfSpool()) process.kill(pid, "SIGKILL");
  await app?.close();
  await pg?.stop();
  scratch.cleanup();
}, 60_000);

describe("walDelivery fetch", () => {
  test("the daemon runs as postgres (the setup this mode needs)", () => {
    expect(statSync(join(dataDir, "master.key")).uid).toBe(uid);
  });

  test("a restore between two commits, its WAL fetched by PostgreSQL through snapdb wal-fetch while the daemon runs", async () => {
    const destination = await api.managedDestination();
    source = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
    const policy = await api.createPolicy(destination.id, { method: "physical", fastCheckpoint: true });
    await api.attach(source.id, policy.id);
    await commitRow(0);
    expect((await api.backupNow(source.id)).status).toBe("succeeded");
    for (let i = 1; i <= 6; i++) {
      await commitRow(i);
      await Bun.sleep(40);
    }
    pg.psql("SELECT pg_switch_wal();");
    await waitFor(
      "the window to reach the last commit",
      async () => {
        const w = await api.must("GET", `/data-sources/${source.id}/recovery-window`);
        return w.to !== null && Date.parse(w.to) >= commits[6]!.started;
      },
      60_000,
    );

    const target = between(3);
    const dir = join(restoreRoot, "fetched");
    const queued = await api.must("POST", "/restores", { dataSourceId: source.id, targetTime: new Date(target).toISOString(), targetDirectory: dir, walDelivery: "fetch" }, 202);
    expect(queued.walDelivery).toBe("fetch");
    const restore = await api.waitForStatus(`/restores/${queued.id}`, undefined, 120_000);
    expect(restore).toMatchObject({ status: "succeeded", error: null, walDelivery: "fetch" });

    // Nothing copied: PostgreSQL asks snapdb for each file.
    expect(existsSync(join(dir, "pg_wal_archive"))).toBe(false);
    const conf = readFileSync(join(dir, "postgresql.auto.conf"), "utf8");
    const command = new RegExp(`^restore_command = '${process.execPath} ${MAIN} wal-fetch --config ${daemon.configFile} --data-dir ${dataDir} --source ${source.id} --until [0-9A-F]{24} %f %p'$`, "m");
    expect(conf).toMatch(command);
    expect(conf).toContain("recovery_target_action = 'promote'");
    expect(conf).toContain("\narchive_mode = 'off'\n");

    const server = await startPostgresOn(dir);
    try {
      expect(server.psql("SELECT id FROM events ORDER BY id;", "appdb").trim().split("\n").map(Number)).toEqual([0, 1, 2, 3]);
      expect(server.log()).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
    } finally {
      await server.stop();
    }
  }, 240_000);

  test("at the window's end: WAL archived after the restore is not replayed (--until)", async () => {
    await commitRow(7);
    pg.psql("SELECT pg_switch_wal();");
    let window: any;
    await waitFor(
      "the window to reach row 7",
      async () => {
        window = await api.must("GET", `/data-sources/${source.id}/recovery-window`);
        return Date.parse(window.to) >= commits[7]!.started;
      },
      60_000,
    );
    const dir = join(restoreRoot, "at-end");
    const queued = await api.must("POST", "/restores", { dataSourceId: source.id, targetTime: window.to, targetDirectory: dir, walDelivery: "fetch" }, 202);
    expect((await api.waitForStatus(`/restores/${queued.id}`, undefined, 120_000)).error).toBeNull();
    // Archived after the restore, before PostgreSQL starts: wal-fetch has it, the restore did not plan it.
    await commitRow(8);
    pg.psql("SELECT pg_switch_wal();");
    await waitFor("row 8's segment archived", async () => Date.parse((await api.must("GET", `/data-sources/${source.id}/recovery-window`)).to) >= commits[8]!.started, 60_000);
    const server = await startPostgresOn(dir);
    try {
      expect(server.psql("SELECT id FROM events ORDER BY id;", "appdb").trim().split("\n").map(Number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await server.stop();
    }
  }, 240_000);

  test("wal-fetch: a file that is not archived exits 1 quietly and writes nothing", async () => {
    const into = join(outDir, "RECOVERYXLOG");
    for (const name of ["0000000100000000000000FF", "00000002.history", "not-a-wal-file"]) {
      const r = await walFetch(["--source", source.id, name, into]);
      expect({ name, code: r.code, stderr: r.stderr }).toEqual({ name, code: 1, stderr: "" });
    }
    expect(readdirSync(outDir)).toEqual([]);
  }, 60_000);

  test("wal-fetch: an archived segment is written whole; past --until it is not archived", async () => {
    const segments = listSegments();
    const first = segments[0]!;
    const into = join(outDir, "RECOVERYXLOG");
    const r = await walFetch(["--source", source.id, first, into]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(statSync(into).size).toBe(16 * 1024 * 1024);
    expect(readdirSync(outDir)).toEqual(["RECOVERYXLOG"]);
    const later = segments[1]!;
    const past = await walFetch(["--source", source.id, "--until", first, later, join(outDir, "later")]);
    expect({ code: past.code, stderr: past.stderr }).toEqual({ code: 1, stderr: "" });
    expect(existsSync(join(outDir, "later"))).toBe(false);
  }, 60_000);

  test("wal-fetch: a changed stored byte or an unknown source exits 128 with a message and writes nothing", async () => {
    const segment = listSegments()[0]!;
    const object = readdirSync(join(dataDir, "managed"), { recursive: true })
      .map(String)
      .find((p) => p.endsWith(`/wal/${segment}.zst.age`))!;
    const file = join(dataDir, "managed", object);
    const original = readFileSync(file);
    const changed = Buffer.from(original);
    changed.writeUInt8(changed.readUInt8(changed.length >> 1) ^ 0x01, changed.length >> 1);
    writeFileSync(file, changed);
    const into = join(outDir, "tampered");
    try {
      const r = await walFetch(["--source", source.id, segment, into]);
      expect(r.code).toBe(128);
      expect(r.stderr).toMatch(new RegExp(`^snapdb wal-fetch: ${segment}: .*(sha256|decrypt)`));
    } finally {
      writeFileSync(file, original);
    }
    const unknown = await walFetch(["--source", "ds_nope", segment, into]);
    expect(unknown.code).toBe(128);
    expect(unknown.stderr).toContain("no data source ds_nope");
    expect(readdirSync(outDir).filter((n) => n !== "RECOVERYXLOG")).toEqual([]);
  }, 60_000);
});

/** The archived segment names, oldest first (from the managed storage's wal/ folder). */
function listSegments(): string[] {
  return readdirSync(join(dataDir, "managed"), { recursive: true })
    .map(String)
    .map((p) => /\/wal\/([0-9A-F]{24})\.zst\.age$/.exec(p)?.[1])
    .filter((n): n is string => !!n)
    .sort();
}
