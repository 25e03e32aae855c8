import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { Database } from "bun:sqlite";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";
import { NOBODY, startRenameSwapper } from "../helpers/rename-swapper.ts";

/**
 * A tenant's local destination against a race, on a real daemon: a local user who may write
 * in the directory that holds the destination's directory (not the daemon's user) exchanges,
 * in a tight loop, that directory with a symlink to another directory (renameat2
 * RENAME_EXCHANGE: both names always exist, one of them is the symlink), while the tenant
 * asks for backups. Nothing the daemon writes (objects, temp files, the date directories)
 * may ever land in the other directory. Such a layout is refused outright; a layout where
 * only the daemon's user can write from the allowed root down works.
 *
 * Root only: the swapper runs as another user (nobody), as the attacker would.
 */

const ORG = "org_localracer";
const PLAIN = { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] }, retention: { keepLast: 3 } };
const RUN_MS = 40_000;
const SOURCES = 3;
const ROUNDS_PER_SOURCE = 10;

/** Every entry (directories too) under `dir`, relative to it. */
function entriesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .map((e) => relative(dir, join(e.parentPath, e.name)) + (e.isDirectory() ? "/" : ""))
      .sort();
  } catch {
    return ["(unreadable)"];
  }
}

describe.skipIf(process.getuid?.() !== 0)("a local destination raced by a user who can write beside it (real daemon)", () => {
  let daemon: Daemon;
  let api: DaemonApi;
  const base = tempDir("snapdb-local-race");
  const allowed = join(base.path, "allowed");
  const shared = join(allowed, "shared");
  const dest = join(shared, "dest");
  const swap = join(shared, "swap");
  const victim = join(base.path, "victim");
  const sqliteRoot = join(base.path, "sqlite");
  const dataDir = join(base.path, "data");

  beforeAll(async () => {
    chmodSync(base.path, 0o755);
    for (const dir of [allowed, shared, victim, sqliteRoot]) mkdirSync(dir, { mode: 0o755 });
    mkdirSync(dest, { mode: 0o700 });
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(join(victim, "keep.txt"), "the other directory's own file\n");
    daemon = await startDaemon({
      dataDir,
      env: {
        SNAPDB_STORE_URL: "",
        SNAPDB_ALLOWED_LOCAL_ROOTS: allowed,
        SNAPDB_ALLOWED_SQLITE_ROOTS: sqliteRoot,
        SNAPDB_RUNNER_MAX_CONCURRENT: "4",
        SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "4",
        SNAPDB_LOG_LEVEL: "warn",
      },
    });
    api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    base.cleanup();
  });

  test("exchanging the destination directory with a symlink never lets an object or temp file land elsewhere; the layout is refused, a daemon-only one works", async () => {
    const sources = [];
    for (let i = 0; i < SOURCES; i++) {
      const path = join(sqliteRoot, `s${i}.db`);
      const db = new Database(path);
      db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
      for (let r = 0; r < 50; r++) db.run("INSERT INTO t (v) VALUES (?)", [`row ${r}`]);
      db.close();
      sources.push(await api.createSource({ engine: "sqlite", path }));
    }
    const dst = await api.must("POST", "/storage-destinations", { kind: "local", name: "raced", path: dest }, 201);
    const policy = await api.createPolicy(dst.id, PLAIN);
    for (const s of sources) await api.attach(s.id, policy.id);

    // From now on the directory that holds the destination belongs to another user, who swaps.
    chownSync(shared, NOBODY, NOBODY);
    symlinkSync(victim, swap);
    lchownSync(swap, NOBODY, NOBODY);
    const victimBefore = entriesUnder(victim);

    // Whatever appears in the other directory, even for a moment.
    const seen = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const e of entriesUnder(victim)) if (!victimBefore.includes(e)) seen.add(e);
        await Bun.sleep(2);
      }
    })();

    const swapper = startRenameSwapper([dest, swap], RUN_MS / 1000 + 15);
    let flips: number[] = [];
    const tally: Record<string, number> = {};
    const deadline = Date.now() + RUN_MS;
    let backups = 0;
    try {
      await Promise.all(
        sources.map(async (source) => {
          for (let i = 0; i < ROUNDS_PER_SOURCE && Date.now() < deadline; i++) {
            backups++;
            const job = await api.backupNow(source.id, policy.id);
            const k = `${job.status} ${job.error?.code ?? ""}`.trim();
            tally[k] = (tally[k] ?? 0) + 1;
          }
        }),
      );
    } finally {
      flips = await swapper.stop();
      watching = false;
      await watcher;
    }
    expect(flips.length).toBe(1);
    expect(flips[0]).toBeGreaterThan(1000);
    const victimAfter = entriesUnder(victim);
    console.log("local destination race:", JSON.stringify({ ...tally, backups, flips: flips[0], seenElsewhere: [...seen].slice(0, 10), left: victimAfter.length - victimBefore.length }));

    // Nothing ever landed in the other directory, and it is as it was.
    expect([...seen]).toEqual([]);
    expect(victimAfter).toEqual(victimBefore);
    // Enough attempts were made for the race to be hit on a daemon that checks by name only.
    expect(backups).toBeGreaterThanOrEqual(SOURCES * ROUNDS_PER_SOURCE);
    // The layout is refused: every backup fails with ACCESS_DENIED (no run-by-run luck).
    expect(Object.keys(tally)).toEqual(["failed ACCESS_DENIED"]);
    const job = await api.backupNow(sources[0].id, policy.id);
    expect({ status: job.status, code: job.error?.code, message: job.error?.message }).toMatchObject({
      status: "failed",
      code: "ACCESS_DENIED",
      message: expect.stringContaining("writable only by the daemon's user"),
    });
    const verify = await api.must("POST", `/storage-destinations/${dst.id}/verify`);
    expect({ ok: verify.ok, code: verify.error?.code }).toEqual({ ok: false, code: "ACCESS_DENIED" });
    // …and a destination in such a place is refused when it is saved.
    const refused = await api.call("POST", "/storage-destinations", { kind: "local", name: "theirs", path: join(shared, "other") });
    expect({ status: refused.status, path: refused.body?.details?.[0]?.path, message: refused.body?.details?.[0]?.message }).toMatchObject({
      status: 400,
      path: "/path",
      message: expect.stringContaining("writable only by the daemon's user"),
    });
    const moved = await api.call("PATCH", `/storage-destinations/${dst.id}`, { path: join(shared, "other") });
    expect({ status: moved.status, path: moved.body?.details?.[0]?.path }).toEqual({ status: 400, path: "/path" });

    // The compliant layout: the directories from the allowed root down are the daemon user's, 0700.
    chownSync(shared, 0, 0);
    chmodSync(shared, 0o700);
    chmodSync(allowed, 0o700);
    for (const s of sources) {
      const ok = await api.backupNow(s.id, policy.id);
      expect({ status: ok.status, error: ok.error }).toEqual({ status: "succeeded", error: null });
      expect(existsSync(join(dest, ok.objectKey))).toBe(true);
    }
    expect((await api.must("POST", `/storage-destinations/${dst.id}/verify`)).ok).toBe(true);
    expect(entriesUnder(victim)).toEqual(victimBefore);
  }, 150_000);
});
