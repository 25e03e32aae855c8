import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { Database } from "bun:sqlite";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { pinnedToHarness } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";
import { sqliteWithRows } from "../helpers/sqlite-file.ts";

/**
 * The host boundary of SQLite data sources, replayed from outside: a tenant names the
 * daemon's own files (store, master key), directly, through `..`, a symlink, a symlinked
 * directory or a hard link, or swaps a legit file for a symlink after creating the source,
 * and tries to back it up (read the store) or restore over it (roll the store back, destroy
 * the key). Nothing of the daemon's may leak or change.
 */

const ORG = "org_boundary";
const PLAIN = { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } };

/** Every file below `dir`, relative. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** Replaces `path` (file or directory) by a symlink to `to`, as a tenant with write access to the root could. */
function swapForSymlink(path: string, to: string): void {
  rmSync(path, { recursive: true, force: true });
  symlinkSync(to, path);
}

const expectRefusedPath = (res: { status: number; body: any }, what: string) => {
  expect({ what, status: res.status, code: res.body?.code, paths: res.body?.details?.map((d: any) => d.path) }).toEqual({
    what,
    status: 400,
    code: "INVALID_INPUT",
    paths: ["/path"],
  });
};

describe("default config: no SQLite roots", () => {
  let daemon: Daemon;
  let api: DaemonApi;
  const files = tempDir("snapdb-boundary-default");
  beforeAll(async () => {
    daemon = await startDaemon({ env: { SNAPDB_LOG_LEVEL: "warn" } });
    api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    files.cleanup();
  });

  test("creating a SQLite source is a 400 naming sources.allowedSqliteRoots, and nothing is written", async () => {
    const path = sqliteWithRows(join(files.path, "app.db"), 3);
    const res = await api.call("POST", "/data-sources", { name: "app", engine: "sqlite", path, ...pinnedToHarness() });
    expectRefusedPath(res, "default config");
    expect(res.body.message).toContain("sources.allowedSqliteRoots");
    expect(res.body.details[0].message).toContain("sources.allowedSqliteRoots");
    expect((await api.must("GET", "/data-sources")).items).toEqual([]);
    // Network sources are not affected.
    await api.createSource({ engine: "postgres", host: "127.0.0.1", database: "app" });
  });
});

describe("with SQLite roots, against a real daemon whose data dir lies inside the root", () => {
  let daemon: Daemon;
  let api: DaemonApi;
  const root = tempDir("snapdb-boundary-root");
  const dataDir = join(root.path, "daemon-data");
  const store = () => join(dataDir, "snapdb.db");
  beforeAll(async () => {
    mkdirSync(dataDir);
    // The embedded store file is the target here, whatever store the matrix runs on (an empty
    // store URL is the SQLite store); the restores below check the same on either store.
    daemon = await startDaemon({ dataDir, env: { SNAPDB_STORE_URL: "", SNAPDB_ALLOWED_SQLITE_ROOTS: root.path, SNAPDB_LOG_LEVEL: "warn" } });
    api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    root.cleanup();
  });

  /** Paths into the daemon's own files, each through another door. */
  function attackPaths(): Record<string, string> {
    const dirLink = join(root.path, "dir-link");
    if (!existsSync(dirLink)) symlinkSync(dataDir, dirLink);
    const fileLink = join(root.path, "store-link.db");
    if (!existsSync(fileLink)) symlinkSync(store(), fileLink);
    const hardLink = join(root.path, "store-hardlink.db");
    if (!existsSync(hardLink)) linkSync(store(), hardLink);
    const hardKey = join(root.path, "key-hardlink.db");
    if (!existsSync(hardKey)) linkSync(join(dataDir, "master.key"), hardKey);
    return {
      "the store itself": store(),
      "the master key": join(dataDir, "master.key"),
      "the JWT secret": join(dataDir, "jwt-secret"),
      "a file in the data dir that does not exist yet": join(dataDir, "new.db"),
      "a path with ..": `${root.path}/sub/../daemon-data/snapdb.db`,
      "a path with .. leaving the root": `${root.path}/../elsewhere.db`,
      "a symlink in the root to the store": fileLink,
      "the store through a symlinked directory": join(dirLink, "snapdb.db"),
      "a hard link to the store": hardLink,
      "a hard link to the master key": hardKey,
      "a path outside every root": "/etc/passwd",
    };
  }

  test("create: every path into the daemon's files is a 400 on /path, and no row is written", async () => {
    for (const [what, path] of Object.entries(attackPaths())) {
      expectRefusedPath(await api.call("POST", "/data-sources", { name: `x-${crypto.randomUUID().slice(0, 6)}`, engine: "sqlite", path, ...pinnedToHarness() }), what);
    }
    expect((await api.must("GET", "/data-sources?engine=sqlite")).items).toEqual([]);
  });

  test("PATCH onto such a path is a 400 on /path and the source keeps its path", async () => {
    const legit = sqliteWithRows(join(root.path, "legit.db"), 3);
    const source = await api.createSource({ engine: "sqlite", path: legit });
    for (const [what, path] of Object.entries(attackPaths())) {
      expectRefusedPath(await api.call("PATCH", `/data-sources/${source.id}`, { path }), what);
    }
    expect((await api.must("GET", `/data-sources/${source.id}`)).path).toBe(legit);
    // A legit path and a label-only change still work.
    await api.must("PATCH", `/data-sources/${source.id}`, { path: join(root.path, "other.db"), labels: { a: "b" } });
  });

  test("a legit file swapped for a symlink to the store after creation: verify refuses, the backup fails PATH_NOT_ALLOWED and stores nothing", async () => {
    const managed = await api.managedDestination();
    const policy = await api.createPolicy(managed.id, PLAIN);
    const byFile = await api.createSource({ engine: "sqlite", path: sqliteWithRows(join(root.path, "swapped.db"), 3) });
    mkdirSync(join(root.path, "swapdir"));
    const byDir = await api.createSource({ engine: "sqlite", path: sqliteWithRows(join(root.path, "swapdir", "snapdb.db"), 3) });
    const byWal = await api.createSource({ engine: "sqlite", path: sqliteWithRows(join(root.path, "wal.db"), 3, { wal: true }) });
    swapForSymlink(byFile.path, store());
    swapForSymlink(join(root.path, "swapdir"), dataDir);
    // SQLite reads `<file>-wal` into the database it opens: a link to the store's WAL would feed it the store's pages.
    expect(existsSync(`${store()}-wal`)).toBe(true);
    swapForSymlink(`${byWal.path}-wal`, `${store()}-wal`);
    const storedBefore = filesUnder(join(dataDir, "managed"));
    for (const source of [byFile, byDir, byWal]) {
      const verify = await api.must("POST", `/data-sources/${source.id}/verify`);
      expect(verify).toMatchObject({ ok: false, error: { code: "PATH_NOT_ALLOWED" } });
      await api.attach(source.id, policy.id);
      const job = await api.backupNow(source.id, policy.id);
      expect({ status: job.status, code: job.error?.code, objectKey: job.objectKey }).toEqual({ status: "failed", code: "PATH_NOT_ALLOWED", objectKey: null });
      expect(job.error.message).not.toContain(dataDir);
    }
    // Nothing of the store was copied anywhere: no stored object, no snapshot left in scratch.
    expect(filesUnder(join(dataDir, "managed"))).toEqual(storedBefore);
    expect(filesUnder(join(dataDir, "tmp"))).toEqual([]);
  }, 60_000);
});

describe("per-organisation roots ({orgId}), on a real daemon", () => {
  const base = tempDir("snapdb-boundary-orgs");
  const shared = join(base.path, "x");
  const dataDir = join(base.path, "data");
  const aFile = () => join(shared, "org_a", "app.db");
  let daemon: Daemon | null = null;
  const start = async (roots: string) => {
    await daemon?.stop();
    daemon = await startDaemon({ dataDir, env: { SNAPDB_STORE_URL: "", SNAPDB_ALLOWED_SQLITE_ROOTS: roots, SNAPDB_LOG_LEVEL: "warn" } });
    return { a: new DaemonApi(daemon.baseUrl, await daemon.token("org_a")), b: new DaemonApi(daemon.baseUrl, await daemon.token("org_b")) };
  };
  beforeAll(() => {
    for (const dir of [dataDir, join(shared, "org_a"), join(shared, "org_b")]) mkdirSync(dir, { recursive: true });
    sqliteWithRows(aFile(), 7);
  });
  afterAll(async () => {
    await daemon?.stop();
    base.cleanup();
  });

  test("org B cannot name org A's file: 400 at create; a row saved under a shared root is refused at verify, backup and restore once the root is per organisation", async () => {
    // A shared root (no {orgId}): every organisation may name every file in it, org A's included.
    let api = await start(shared);
    const early = await api.b.createSource({ engine: "sqlite", path: aFile() });

    // The operator makes the root per organisation.
    api = await start(join(shared, "{orgId}"));
    expectRefusedPath(await api.b.call("POST", "/data-sources", { name: "theirs", engine: "sqlite", path: aFile(), ...pinnedToHarness() }), "org A's file, as org B");
    expectRefusedPath(await api.b.call("PATCH", `/data-sources/${early.id}`, { path: join(shared, "org_a", "other.db") }), "PATCH into org A's root");
    // An id that is not one path segment gets no {orgId} root at all.
    const dotted = new DaemonApi(daemon!.baseUrl, await daemon!.token("org_b/../org_a"));
    const res = await dotted.call("POST", "/data-sources", { name: "dotted", engine: "sqlite", path: aFile(), ...pinnedToHarness() });
    expectRefusedPath(res, "an org id with / and ..");
    expect(res.body.details[0].message).toContain("{orgId}");

    // The row saved before: verify, backup and restore are refused, nothing is read or written.
    const managed = await api.b.managedDestination();
    const policy = await api.b.createPolicy(managed.id, PLAIN);
    expect(await api.b.must("POST", `/data-sources/${early.id}/verify`)).toMatchObject({ ok: false, error: { code: "PATH_NOT_ALLOWED" } });
    await api.b.attach(early.id, policy.id);
    const job = await api.b.backupNow(early.id, policy.id);
    expect({ status: job.status, code: job.error?.code, objectKey: job.objectKey }).toEqual({ status: "failed", code: "PATH_NOT_ALLOWED", objectKey: null });
    const own = await api.b.createSource({ engine: "sqlite", path: sqliteWithRows(join(shared, "org_b", "b.db"), 2) });
    await api.b.attach(own.id, policy.id);
    const ownJob = await api.b.backupNow(own.id, policy.id);
    expect(ownJob.status).toBe("succeeded");
    const before = readFileSync(aFile()).toString("base64");
    const restore = await api.b.call("POST", "/restores", { backupJobId: ownJob.id, targetDataSourceId: early.id, clean: true });
    expect(restore.status).toBe(409);
    expect(restore.body.message).toContain("path is refused");
    expect(readFileSync(aFile()).toString("base64")).toBe(before);

    // Org A still backs up its own file.
    const mine = await api.a.createSource({ engine: "sqlite", path: aFile() });
    const aPolicy = await api.a.createPolicy((await api.a.managedDestination()).id, PLAIN);
    await api.a.attach(mine.id, aPolicy.id);
    expect((await api.a.backupNow(mine.id, aPolicy.id)).status).toBe("succeeded");
  }, 90_000);
});

describe("restores into a path that leads to the daemon's files (real app, runner held until the swap)", () => {
  let h: Harness;
  let token: string;
  let job: any;
  const root = tempDir("snapdb-boundary-restore");
  // The master key lives under the allowed root: it must be refused wherever it is.
  const keyDir = join(root.path, "secrets");
  const masterKeyFile = join(keyDir, "master.key");
  const storeFile = () => join(h.dataDir, "snapdb.db");

  beforeAll(async () => {
    h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: root.path, SNAPDB_MASTER_KEY_FILE: masterKeyFile });
    token = await h.token(ORG);
    const managed = await managedDestination(h, token);
    const policy = await createPolicy(h, token, managed.id, PLAIN);
    const source = await createSource(h, token, { engine: "sqlite", path: sqliteWithRows(join(root.path, "backed-up.db"), 50) });
    await attach(h, token, source.id, policy.id);
    await h.runner.start();
    job = await backupNow(h, token, source.id, policy.id);
    expect(job.status).toBe("succeeded");
    await h.runner.stop(1000);
  }, 60_000);
  afterAll(async () => {
    await h?.runner.stop(1000);
    h?.close();
    root.cleanup();
  });

  /**
   * What must not change: the store's inode (a rename over it would give a new one) and the key's
   * bytes. On a PostgreSQL store there is no store file: then nothing may appear at its path.
   */
  const daemonFiles = () => ({ storeIno: existsSync(storeFile()) ? statSync(storeFile()).ino : null, key: readFileSync(masterKeyFile).toString("base64") });

  test("the master key and its rotation siblings are refused even under an allowed root", async () => {
    writeFileSync(`${masterKeyFile}.old-1`, "old key");
    for (const path of [masterKeyFile, `${masterKeyFile}.old-1`, `${masterKeyFile}.new-2`]) {
      expectRefusedPath(await h.call("POST", "/data-sources", { token, body: { name: basename(path), engine: "sqlite", path, ...pinnedToHarness() } }), path);
    }
  });

  test("already swapped when the restore is asked for: 409, nothing queued, nothing touched", async () => {
    mkdirSync(join(root.path, "early"));
    const target = await createSource(h, token, { engine: "sqlite", path: sqliteWithRows(join(root.path, "early", "snapdb.db"), 3) });
    swapForSymlink(join(root.path, "early"), h.dataDir);
    const before = daemonFiles();
    const res = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDataSourceId: target.id, clean: true } });
    expect(res.status).toBe(409);
    expect(res.body.message).toContain("path is refused");
    expect(daemonFiles()).toEqual(before);
    expect((await must(h, token, "GET", `/restores?dataSourceId=${target.id}`)).items).toEqual([]);
  });

  test("swapped after the restore was queued: it fails PATH_NOT_ALLOWED at run time; the store and the master key are untouched", async () => {
    mkdirSync(join(root.path, "late-store"));
    mkdirSync(join(root.path, "late-key"));
    const intoStore = await createSource(h, token, { engine: "sqlite", path: sqliteWithRows(join(root.path, "late-store", "snapdb.db"), 3) });
    const intoKey = await createSource(h, token, { engine: "sqlite", path: sqliteWithRows(join(root.path, "late-key", "master.key"), 3) });
    const intoFile = await createSource(h, token, { engine: "sqlite", path: sqliteWithRows(join(root.path, "late-file.db"), 3) });
    const intoWal = await createSource(h, token, { engine: "sqlite", path: sqliteWithRows(join(root.path, "late-wal.db"), 3, { wal: true }) });
    const queued = [];
    for (const target of [intoStore, intoKey, intoFile, intoWal]) queued.push(await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: target.id, clean: true }, 202));
    // Now the tenant swaps the directories (and a file) for symlinks into the daemon's own files.
    swapForSymlink(join(root.path, "late-store"), h.dataDir);
    swapForSymlink(join(root.path, "late-key"), keyDir);
    swapForSymlink(intoFile.path, storeFile());
    // A checkpoint of the target through this link would copy and truncate the store's WAL.
    swapForSymlink(`${intoWal.path}-wal`, `${storeFile()}-wal`);
    const before = daemonFiles();
    await h.runner.start();
    try {
      for (const r of queued) {
        const done = await waitForStatus(h, token, `/restores/${r.id}`);
        expect({ target: queued.indexOf(r), status: done.status, code: done.error?.code }).toEqual({ target: queued.indexOf(r), status: "failed", code: "PATH_NOT_ALLOWED" });
        expect(done.error.message).toContain("the target file is unchanged");
      }
    } finally {
      await h.runner.stop(1000);
    }
    expect(daemonFiles()).toEqual(before);
    // Still the daemon's store, whole: it answers and holds what it held.
    expect((await must(h, token, "GET", `/data-sources/${intoStore.id}`)).id).toBe(intoStore.id);
    expect(filesUnder(h.dataDir).filter((f) => f.includes("snapdb-restore"))).toEqual([]);
    expect(filesUnder(keyDir).filter((f) => f.includes("snapdb-restore"))).toEqual([]);
  }, 60_000);

  test("a target path holding a file that is not a SQLite database is never replaced, clean or not", async () => {
    const notes = join(root.path, "notes.txt");
    writeFileSync(notes, "the operator's notes, not a database\n");
    const target = await createSource(h, token, { engine: "sqlite", path: notes });
    for (const clean of [true, false]) {
      const res = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDataSourceId: target.id, clean } });
      expect(res.status).toBe(409);
      expect(res.body.message).toContain("not a SQLite database");
    }
    expect(readFileSync(notes, "utf8")).toBe("the operator's notes, not a database\n");

    // The file appears only after the restore was queued: the runner refuses it too.
    const later = join(root.path, "later.db");
    const lateTarget = await createSource(h, token, { engine: "sqlite", path: later });
    const queued = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: lateTarget.id, clean: true }, 202);
    writeFileSync(later, "PRIVATE KEY material, not a database");
    await h.runner.start();
    try {
      const done = await waitForStatus(h, token, `/restores/${queued.id}`);
      expect({ status: done.status, code: done.error?.code }).toEqual({ status: "failed", code: "INVALID_TARGET" });
    } finally {
      await h.runner.stop(1000);
    }
    expect(readFileSync(later, "utf8")).toBe("PRIVATE KEY material, not a database");
    expect(readdirSync(root.path).filter((f) => f.includes("snapdb-restore"))).toEqual([]);
  }, 60_000);

  test("a legit target still restores: a missing file in an allowed directory is created", async () => {
    const fresh = await createSource(h, token, { engine: "sqlite", path: join(root.path, "fresh.db") });
    const queued = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: fresh.id }, 202);
    await h.runner.start();
    try {
      expect((await waitForStatus(h, token, `/restores/${queued.id}`)).status).toBe("succeeded");
    } finally {
      await h.runner.stop(1000);
    }
    const db = new Database(fresh.path, { readonly: true });
    expect((db.query("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(50);
    db.close();
  }, 60_000);
});
