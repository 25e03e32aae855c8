/**
 * One daemon per data dir, one daemon per port, with real processes:
 * - a second `serve` on a data dir in use exits non-zero naming the holder's pid, and the
 *   first daemon's running backup (its temp file included) is left alone and succeeds;
 * - `migrate` and `rotate-master-key` refuse while the daemon runs;
 * - a daemon on another data dir but the same port fails to listen instead of sharing it;
 * - the lock is the kernel's: after kill -9 of the holder a new daemon starts at once;
 * - the same from the compiled binary (the lock goes through libc by FFI there too).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { freePort, REPO_ROOT, startDaemon, type Daemon, type DaemonOptions } from "../helpers/daemon.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

let pg: PgServer;

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT g, repeat('v', 200) || g FROM generate_series(1, 2000) g;`, pg.database);
}, 60_000);

afterAll(async () => {
  await pg?.stop();
});

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Still running after the deadline (then SIGKILLed): it did not refuse to start. */
  hung: boolean;
}

/** `snapdb serve` on `dataDir` and `port`, waited for until it exits on its own or `ms` pass. */
async function serveUntilExit(cli: string[], dataDir: string, port: number, ms = 15_000): Promise<Exit> {
  const configFile = join(dataDir, "snapdb.toml");
  if (!existsSync(configFile)) writeFileSync(configFile, "# empty\n");
  const proc = Bun.spawn([...cli, "serve", "--config", configFile, "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`], {
    cwd: REPO_ROOT,
    env: { ...process.env, SNAPDB_CONFIG: configFile, SNAPDB_DATA_DIR: dataDir },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    proc.kill("SIGKILL");
  }, ms);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout, stderr, hung };
}

async function ready(daemon: Daemon): Promise<number> {
  return (await fetch(`${daemon.baseUrl}/readyz`)).status;
}

/** The pids that have `file` open. */
function openersOf(file: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readdirSync(`/proc/${entry}/fd`).some((fd) => readlinkSync(`/proc/${entry}/fd/${fd}`) === file)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** Waits until `pid` is gone (a kill -9 is asynchronous). */
async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await Bun.sleep(25);
  }
  throw new Error(`pid ${pid} still alive`);
}

describe("one daemon per data dir (from source)", () => {
  test("a second daemon on the data dir refuses to start and leaves the first one's running backup alone", async () => {
    const dir = tempDir("snapdb-lock");
    const a = await startDaemon({ dataDir: dir.path });
    let release: (() => Promise<void>) | null = null;
    try {
      const api = new DaemonApi(a.baseUrl, await a.token("org_lock"));
      const managed = await api.managedDestination();
      const policy = await api.createPolicy(managed.id);
      const source = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
      await api.attach(source.id, policy.id);
      release = await holdTableLock(pg, pg.database, "big", "ACCESS EXCLUSIVE");
      const queued = await api.runNow(source.id);
      let running = await api.waitForStatus(`/backup-jobs/${queued.id}`, ["running"], 10_000);
      // The key is recorded once the job has its recipients and its source's address, a moment
      // after it turned running (the first encrypted job also loads the age code then).
      for (let i = 0; i < 200 && !running.objectKey; i++) {
        await Bun.sleep(25);
        running = await api.must("GET", `/backup-jobs/${queued.id}`);
      }
      // The backup's temp file beside its object key (written by age, which waits on pg_dump).
      const objectDir = join(dir.path, "managed", dirname(running.objectKey));
      let temp: string | undefined;
      for (let i = 0; i < 200 && !temp; i++) {
        temp = existsSync(objectDir) ? readdirSync(objectDir).find((n) => n.startsWith(".snapdb-part-")) : undefined;
        if (!temp) await Bun.sleep(25);
      }
      expect(temp).toBeDefined();
      const inode = statSync(join(objectDir, temp!)).ino;

      const second = await serveUntilExit(a.cli, dir.path, await freePort());
      expect(second.hung).toBe(false);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain(`pid ${a.pid}`);
      expect(second.stderr).toContain(dir.path);

      // Nothing of the first daemon's was touched: its job still runs, its temp file is the same file.
      expect((await api.must("GET", `/backup-jobs/${queued.id}`)).status).toBe("running");
      expect(statSync(join(objectDir, temp!)).ino).toBe(inode);
      expect(await ready(a)).toBe(200);
      // Only the daemon has the lock file open: the dump tools it started did not inherit it.
      expect(openersOf(join(dir.path, "snapdb.lock"))).toEqual([a.pid]);

      // Commands that write the store refuse too, naming the daemon.
      for (const command of ["migrate", "rotate-master-key"]) {
        const r = await a.run([command]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(`pid ${a.pid}`);
      }

      await release();
      const done = await api.waitForStatus(`/backup-jobs/${queued.id}`);
      expect(done.status).toBe("succeeded");
      const stored = readFileSync(join(dir.path, "managed", done.objectKey));
      expect(createHash("sha256").update(stored).digest("hex")).toBe(done.sha256);
    } finally {
      await release?.();
      await a.stop();
      dir.cleanup();
    }
  }, 90_000);

  test("a daemon on another data dir but the same port fails to listen instead of sharing it", async () => {
    const a = await startDaemon();
    const other = tempDir("snapdb-lock-port");
    try {
      const c = await serveUntilExit(a.cli, other.path, a.port);
      expect(c.hung).toBe(false);
      expect(c.code).not.toBe(0);
      expect(`${c.stdout}${c.stderr}`).toContain(`127.0.0.1:${a.port}`);
      expect(`${c.stdout}${c.stderr}`).toMatch(/in use/i);
      // Every request still reaches the first daemon.
      for (let i = 0; i < 20; i++) expect(await ready(a)).toBe(200);
    } finally {
      await a.stop();
      other.cleanup();
    }
  }, 60_000);

  test("after kill -9 of the holder mid-backup the kernel has released the lock: a new daemon starts and recovers the job", async () => {
    const dir = tempDir("snapdb-lock-kill");
    let release: (() => Promise<void>) | null = null;
    try {
      const a = await startDaemon({ dataDir: dir.path });
      const api = new DaemonApi(a.baseUrl, await a.token("org_kill"));
      const policy = await api.createPolicy((await api.managedDestination()).id);
      const source = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
      await api.attach(source.id, policy.id);
      release = await holdTableLock(pg, pg.database, "big", "ACCESS EXCLUSIVE");
      const job = await api.runNow(source.id);
      await api.waitForStatus(`/backup-jobs/${job.id}`, ["running"], 10_000);
      process.kill(a.pid, "SIGKILL");
      await gone(a.pid);
      const b = await startDaemon({ dataDir: dir.path });
      expect(await ready(b)).toBe(200);
      expect(readFileSync(join(dir.path, "snapdb.lock"), "utf8")).toContain(String(b.pid));
      const recovered = await new DaemonApi(b.baseUrl, api.token).must("GET", `/backup-jobs/${job.id}`);
      expect(recovered.status).toBe("failed");
      expect(recovered.error.code).toBe("INTERRUPTED");
      await b.stop();
      // Stopped cleanly, the data dir is free for the commands.
      expect((await b.run(["migrate"])).code).toBe(0);
    } finally {
      await release?.();
      dir.cleanup();
    }
  }, 60_000);
});

describe("one daemon per data dir (compiled binary)", () => {
  test("the compiled binary takes the lock, refuses a second daemon, and the lock goes with kill -9", async () => {
    const dir = tempDir("snapdb-lock-bin");
    const opts: DaemonOptions = { binary: "compiled", dataDir: dir.path, readyTimeoutMs: 60_000 };
    try {
      const a = await startDaemon(opts);
      const second = await serveUntilExit(a.cli, dir.path, await freePort());
      expect(second.hung).toBe(false);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain(`pid ${a.pid}`);
      const migrate = await a.run(["migrate"]);
      expect(migrate.code).not.toBe(0);
      expect(migrate.stderr).toContain(`pid ${a.pid}`);
      expect(await ready(a)).toBe(200);
      process.kill(a.pid, "SIGKILL");
      await gone(a.pid);
      const b = await startDaemon(opts);
      expect(await ready(b)).toBe(200);
      await b.stop();
    } finally {
      dir.cleanup();
    }
  }, 240_000);
});
