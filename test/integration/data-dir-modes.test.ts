import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, startDaemon, type Daemon } from "../helpers/daemon.ts";
import { testStore } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Under the usual umask 022 the store and its WAL/SHM came out 0644: readable by every local
 * user (sealed secrets, the audit log). A real daemon, a real data dir: everything it writes
 * there is 0600 (directories 0700), a data dir of its own is tightened to 0700, and someone
 * else's that others can write is refused before anything is written into it.
 */
const scratch = tempDir("snapdb-modes");
const savedUmask = process.umask(0o022);
const mode = (path: string) => statSync(path).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

/** Mode of everything under `dir` the daemon made (the test's own config file aside). */
function modesUnder(dir: string, skip: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(e.parentPath, e.name);
    if (skip.includes(path)) continue;
    out[path.slice(dir.length + 1)] = octal(mode(path));
  }
  return out;
}

async function write(d: Daemon): Promise<void> {
  const token = await d.token("org_modes", { scopes: ["backup.write"] });
  const res = await fetch(`${d.baseUrl}/data-sources`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ name: `pg-${crypto.randomUUID().slice(0, 6)}`, engine: "postgres", host: "127.0.0.1", port: 5432, database: "app" }),
  });
  expect(res.status).toBe(201);
}

let d: Daemon | undefined;
beforeAll(() => {
  expect(process.umask()).toBe(0o022);
});
afterAll(async () => {
  await d?.stop();
  process.umask(savedUmask);
  scratch.cleanup();
});

describe("data dir and store file modes (umask 022)", () => {
  test("a running daemon's store, WAL and SHM are 0600, its data dir 0700 (it was 0755)", async () => {
    const dataDir = join(scratch.path, "data");
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    d = await startDaemon({ dataDir, env: { SNAPDB_LOG_LEVEL: "warn" } });
    await write(d);
    expect(octal(mode(dataDir))).toBe("0700");
    // On the PostgreSQL leg of the matrix the store is no file in the data dir: its modes are the server's business.
    const db = join(dataDir, "snapdb.db");
    if (testStore() === "sqlite") {
      expect({ db: octal(mode(db)), wal: octal(mode(`${db}-wal`)), shm: octal(mode(`${db}-shm`)) }).toEqual({ db: "0600", wal: "0600", shm: "0600" });
    }
    // Every other file it writes there too (keys, …); directories 0700.
    const modes = modesUnder(dataDir, [d.configFile]);
    for (const [path, m] of Object.entries(modes)) {
      const isDir = statSync(join(dataDir, path)).isDirectory();
      expect({ path, mode: m }).toEqual({ path, mode: isDir ? "0700" : "0600" });
    }
    expect(Object.keys(modes)).toEqual(expect.arrayContaining([...(testStore() === "sqlite" ? ["snapdb.db"] : []), "master.key", "jwt-secret"]));
    if (testStore() === "postgres") return;

    // A store an older version left 0644 in a 0755 dir is tightened at the next start.
    await d.stop();
    chmodSync(db, 0o644);
    chmodSync(dataDir, 0o755);
    d = await startDaemon({ dataDir, env: { SNAPDB_LOG_LEVEL: "warn" } });
    await write(d);
    expect({ db: octal(mode(db)), wal: octal(mode(`${db}-wal`)), dir: octal(mode(dataDir)) }).toEqual({ db: "0600", wal: "0600", dir: "0700" });
  }, 60_000);

  test.skipIf(process.getuid?.() !== 0)(
    "someone else's data dir that others can write is refused, nothing written into it",
    async () => {
      const dataDir = join(scratch.path, "shared");
      mkdirSync(dataDir);
      chmodSync(dataDir, 0o777);
      chownSync(dataDir, 65534, 65534);
      const configFile = join(scratch.path, "empty.toml");
      writeFileSync(configFile, "");
      const { SNAPDB_CONFIG: _c, SNAPDB_JWT_SECRET: _s, ...env } = process.env;
      const proc = Bun.spawn([process.execPath, join(REPO_ROOT, "src/main.ts"), "serve", "--config", configFile, "--data-dir", dataDir, "--listen", "127.0.0.1:0"], {
        cwd: REPO_ROOT,
        env,
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      clearTimeout(timer);
      expect(code).toBe(2);
      expect(stderr).toContain(`dataDir ${dataDir}: mode 0777 lets other users write it`);
      expect(readdirSync(dataDir)).toEqual([]);
      expect(existsSync(join(dataDir, "master.key"))).toBe(false);
    },
    30_000,
  );
});
