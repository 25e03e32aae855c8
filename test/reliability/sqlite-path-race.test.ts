import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lchownSync, mkdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { pinnedToHarness } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";
import { NOBODY, startRenameSwapper } from "../helpers/rename-swapper.ts";

/**
 * The SQLite host boundary against a race, on a real daemon: a local user who may write in
 * an allowed root (not the daemon's user) exchanges, in a tight loop, a directory the daemon
 * checked with a symlink to the daemon's data dir, and a checked file with a symlink to the
 * store (renameat2 RENAME_EXCHANGE: both names always exist, one of them is the symlink).
 * Meanwhile a tenant asks for backups (to read the store through them) and clean restores
 * (to replace the store or the master key). No stored backup may hold the store's tables,
 * the store and the key must stay as they were, and the daemon must keep answering.
 *
 * Root only: the swapper runs as another user (nobody), as the attacker would; a swapper
 * with the daemon's own rights could read the store without snapdb.
 */

const ORG = "org_racer";
const PLAIN = { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] }, retention: { keepLast: 500 } };
const RUN_MS = 30_000;
const ROUNDS = 40;

function legitDb(path: string): string {
  const db = new Database(path);
  db.run("CREATE TABLE legit (id INTEGER PRIMARY KEY, v TEXT)");
  for (let i = 0; i < 20; i++) db.run("INSERT INTO legit (v) VALUES (?)", [`row ${i}`]);
  db.close();
  return path;
}

/** The tables of a stored backup (compression and encryption off: the file is the SQLite snapshot). */
function tablesOf(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  } finally {
    db.close();
  }
}

describe.skipIf(process.getuid?.() !== 0)("SQLite paths raced by a user who can write in the allowed root (real daemon)", () => {
  let daemon: Daemon;
  let api: DaemonApi;
  const base = tempDir("snapdb-sqlite-race");
  const root = join(base.path, "root");
  const dataDir = join(base.path, "data");
  const storeFile = join(dataDir, "snapdb.db");
  const keyFile = join(dataDir, "master.key");
  const checkedDir = join(root, "real");
  const checkedFile = join(root, "file.db");

  beforeAll(async () => {
    chmodSync(base.path, 0o755);
    mkdirSync(root, { mode: 0o755 });
    mkdirSync(checkedDir, { mode: 0o755 });
    mkdirSync(dataDir, { mode: 0o700 });
    daemon = await startDaemon({
      dataDir,
      env: {
        SNAPDB_STORE_URL: "",
        SNAPDB_ALLOWED_SQLITE_ROOTS: root,
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

  test("exchanging a checked directory or file with a symlink into the data dir never leaks the store nor replaces it or the key", async () => {
    // Named like the daemon's files, so that the swapped-in directory offers exactly them.
    const inDirStore = await api.createSource({ engine: "sqlite", path: legitDb(join(checkedDir, "snapdb.db")) });
    const inDirKey = await api.createSource({ engine: "sqlite", path: legitDb(join(checkedDir, "master.key")) });
    const file = await api.createSource({ engine: "sqlite", path: legitDb(checkedFile) });
    const sources = [inDirStore, inDirKey, file];
    const policy = await api.createPolicy((await api.managedDestination()).id, PLAIN);
    for (const s of sources) await api.attach(s.id, policy.id);
    const legit = await api.backupNow(file.id, policy.id);
    expect(legit.status).toBe("succeeded");

    // From now on the root and what is in it belong to another user, who swaps.
    for (const path of [root, checkedDir, checkedFile, join(checkedDir, "snapdb.db"), join(checkedDir, "master.key")]) chownSync(path, NOBODY, NOBODY);
    const dirSwap = join(root, "swap");
    const fileSwap = join(root, "file-swap.db");
    symlinkSync(dataDir, dirSwap);
    symlinkSync(storeFile, fileSwap);
    lchownSync(dirSwap, NOBODY, NOBODY);
    lchownSync(fileSwap, NOBODY, NOBODY);
    const storeIno = statSync(storeFile).ino;
    const key = readFileSync(keyFile).toString("base64");

    const swapper = startRenameSwapper([checkedDir, dirSwap, checkedFile, fileSwap], RUN_MS / 1000 + 15);
    let flips: number[] = [];
    const leaks: string[] = [];
    const tally: Record<string, number> = {};
    const count = (k: string) => void (tally[k] = (tally[k] ?? 0) + 1);
    const deadline = Date.now() + RUN_MS;
    let backups = 0;
    let restores = 0;
    try {
      // One loop per source and kind (a second backup of a source while one runs is a 409),
      // half of the rounds on the file, a quarter on each file of the directory.
      const quota = (s: (typeof sources)[number]) => (s === file ? ROUNDS / 2 : ROUNDS / 4);
      const backupLoop = async (source: (typeof sources)[number]) => {
        for (let i = 0; i < quota(source) && Date.now() < deadline; i++) {
          backups++;
          const job = await api.backupNow(source.id, policy.id);
          count(`backup ${source === file ? "file" : "dir"}: ${job.status} ${job.error?.code ?? ""}`);
          if (job.status !== "succeeded") continue;
          const stored = join(dataDir, "managed", job.objectKey);
          const bytes = readFileSync(stored);
          const tables = tablesOf(stored);
          if (JSON.stringify(tables) !== JSON.stringify(["legit"]) || bytes.includes("org_keys") || bytes.includes("audit_events"))
            leaks.push(`${source === file ? "file" : "directory"} ${job.objectKey}: ${tables.join(",")}`);
        }
      };
      const restoreLoop = async (target: (typeof sources)[number]) => {
        for (let i = 0; i < quota(target) && Date.now() < deadline; i++) {
          restores++;
          const res = await api.call("POST", "/restores", { backupJobId: legit.id, targetDataSourceId: target.id, clean: true });
          if (res.status !== 202) {
            count(`restore ${target === file ? "file" : "dir"}: http ${res.status}`);
            continue;
          }
          const done = await api.waitForStatus(`/restores/${res.body.id}`);
          count(`restore ${target === file ? "file" : "dir"}: ${done.status} ${done.error?.code ?? ""}`);
        }
      };
      await Promise.all(sources.flatMap((s) => [backupLoop(s), restoreLoop(s)]));
    } finally {
      flips = await swapper.stop();
    }
    // It swapped all along (and put both pairs back when told to stop).
    expect(flips.length).toBe(2);
    for (const n of flips) expect(n).toBeGreaterThan(1000);
    const now = { storeIno: statSync(storeFile).ino, key: readFileSync(keyFile).toString("base64") };
    console.log("sqlite path race:", JSON.stringify({ ...tally, leaks: leaks.length, storeReplaced: now.storeIno !== storeIno, keyChanged: now.key !== key }));

    expect(leaks).toEqual([]);
    expect(now).toEqual({ storeIno, key });
    expect(tablesOf(storeFile)).toContain("org_keys");
    // Enough attempts were made for the race to be hit on a daemon that checks by name only.
    expect(backups).toBeGreaterThanOrEqual(ROUNDS / 2);
    expect(restores).toBeGreaterThanOrEqual(ROUNDS / 2);
    // The daemon still answers, with its store whole.
    expect((await api.must("GET", `/data-sources/${file.id}`)).id).toBe(file.id);
    expect((await fetch(`${daemon.baseUrl}/readyz`)).status).toBe(200);
    // A source below a directory another user may write to is refused when it is saved…
    const refused = await api.call("POST", "/data-sources", { name: "below-theirs", engine: "sqlite", path: join(checkedDir, "snapdb.db"), ...pinnedToHarness() });
    expect({ status: refused.status, path: refused.body?.details?.[0]?.path, message: refused.body?.details?.[0]?.message }).toMatchObject({
      status: 400,
      path: "/path",
      message: expect.stringContaining("could swap"),
    });
    // …and, saved before the root changed hands, at every run.
    for (const [k, n] of Object.entries(tally)) {
      if (k.startsWith("backup dir") || k.startsWith("restore dir")) expect({ k, n }).toMatchObject({ k: expect.stringMatching(/PATH_NOT_ALLOWED|http 409/) });
    }
  }, 90_000);
});
