import { SQL } from "bun";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, onExit, waitFor } from "./servers.ts";
import { pgBinDir } from "./tool-paths.ts";

export interface PgServer {
  host: string;
  port: number;
  /** A password-authenticated role that owns `database`. */
  user: string;
  password: string;
  database: string;
  /** Socket dir (peer auth as the postgres OS user) for admin work. */
  socketDir: string;
  /** The cluster's data directory (heap files under base/, WAL under pg_wal/). */
  dataDir: string;
  /** The server major version, e.g. 15. */
  major: number;
  binDir: string;
  /** Runs SQL as the superuser through psql over the socket; returns stdout. */
  psql(sql: string, database?: string): string;
  stop(): Promise<void>;
}

function runAsPostgres(argv: string[], input?: string): string {
  const res = Bun.spawnSync(["runuser", "-u", "postgres", "--", ...argv], {
    stdin: input === undefined ? "ignore" : Buffer.from(input),
    stdout: "pipe",
    stderr: "pipe",
  });
  if (res.exitCode !== 0) throw new Error(`${argv[0]} failed (${res.exitCode}): ${res.stderr.toString().slice(-2000)}`);
  return res.stdout.toString();
}

/**
 * A throwaway PostgreSQL server: initdb in a temp dir owned by `postgres` (the server
 * refuses root), listening on 127.0.0.1 at a free port plus a private socket dir,
 * scram password auth over TCP, and a role `snapdb_test` owning database `appdb`.
 * `stop()` (also run at process exit) stops it fast and removes the directory.
 */
export async function startPostgres(opts: { password?: string; replication?: boolean } = {}): Promise<PgServer> {
  const binDir = pgBinDir();
  const root = mkdtempSync(join(tmpdir(), "snapdb-pg-"));
  chmodSync(root, 0o700);
  const pg = Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim();
  const gid = Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim();
  chownSync(root, Number(pg), Number(gid));
  const data = join(root, "data");
  const socketDir = root;
  const port = await freePort();
  const password = opts.password ?? `pw-${crypto.randomUUID()}`;
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  // runuser does not pass signals on to postgres, so the postmaster is signalled by the pid
  // it wrote; SIGQUIT is an immediate shutdown (the data dir is thrown away anyway).
  const signalPostmaster = () => {
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      if (pid > 0) process.kill(pid, "SIGQUIT");
    } catch {}
  };
  const cleanup = () => {
    signalPostmaster();
    rmSync(root, { recursive: true, force: true });
  };
  const unregister = onExit(cleanup);
  try {
    runAsPostgres([join(binDir, "initdb"), "-D", data, "-U", "postgres", "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "-N"]);
    proc = Bun.spawn(
      [
        "runuser",
        "-u",
        "postgres",
        "--",
        join(binDir, "postgres"),
        "-D",
        data,
        "-k",
        socketDir,
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
    const psql = (sql: string, database = "postgres") =>
      runAsPostgres([join(binDir, "psql"), "-h", socketDir, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtX", "-f", "-"], sql);
    await waitFor("postgres", () => Bun.spawnSync(["runuser", "-u", "postgres", "--", join(binDir, "pg_isready"), "-h", socketDir, "-p", String(port)]).exitCode === 0);
    // The password goes through stdin, never argv.
    psql(`CREATE ROLE snapdb_test LOGIN PASSWORD '${password.replace(/'/g, "''")}';\nCREATE DATABASE appdb OWNER snapdb_test;`);
    // initdb's pg_hba.conf already lets every role replicate over TCP (scram); the role needs the attribute.
    if (opts.replication) psql("ALTER ROLE snapdb_test REPLICATION;");
    const major = Number(psql("SHOW server_version_num;").trim()) / 10000;
    return {
      host: "127.0.0.1",
      port,
      user: "snapdb_test",
      password,
      database: "appdb",
      socketDir,
      dataDir: data,
      major: Math.floor(major),
      binDir,
      psql,
      async stop() {
        unregister();
        const p = proc;
        try {
          signalPostmaster();
          await Promise.race([p?.exited, Bun.sleep(5000)]);
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    unregister();
    cleanup();
    throw err;
  }
}

/**
 * Holds a lock on `table` in a session of its own until the returned `release` is called: a
 * pg_dump or pg_restore that needs the table waits meanwhile, so a test can act on a backup
 * or restore that is reliably in progress.
 */
export async function holdTableLock(
  pg: Pick<PgServer, "host" | "port" | "user" | "password">,
  database: string,
  table: string,
  mode: "ACCESS SHARE" | "ACCESS EXCLUSIVE",
): Promise<() => Promise<void>> {
  const locker = new SQL({ url: `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${database}` });
  const release = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  const holding = locker
    .begin(async (tx) => {
      await tx.unsafe(`LOCK TABLE "${table}" IN ${mode} MODE`);
      locked.resolve();
      await release.promise;
    })
    .catch((err) => locked.reject(err));
  await locked.promise;
  let released: Promise<void> | null = null;
  // Idempotent: a test may release in its body and again in `finally`.
  return () =>
    (released ??= (async () => {
      release.resolve();
      await holding;
      await locker.close();
    })());
}

export interface RestoredPg {
  port: number;
  /** Runs SQL as the superuser over the socket; returns stdout. */
  psql(sql: string, database?: string): string;
  /** The server's log so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL on a data directory snapdb restored (a point-in-time restore): the
 * directory is handed to the postgres OS user first, as the docs tell the operator to.
 * Resolves once the server accepts connections and has left recovery (promoted).
 */
export async function startPostgresOn(dataDir: string, timeoutMs = 60_000): Promise<RestoredPg> {
  const binDir = pgBinDir();
  const owner = Bun.spawnSync(["chown", "-R", "postgres:postgres", dataDir]);
  if (owner.exitCode !== 0) throw new Error(`chown failed: ${owner.stderr.toString()}`);
  const socketDir = mkdtempSync(join(tmpdir(), "snapdb-pgr-"));
  chownSync(socketDir, Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim()), Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim()));
  const port = await freePort();
  const logFile = join(socketDir, "server.log");
  const proc = Bun.spawn(["runuser", "-u", "postgres", "--", join(binDir, "postgres"), "-D", dataDir, "-k", socketDir, "-h", "127.0.0.1", "-p", String(port), "-c", "fsync=off"], {
    stdout: "ignore",
    stderr: Bun.file(logFile),
  });
  const stopServer = () => {
    try {
      const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      if (pid > 0) process.kill(pid, "SIGQUIT");
    } catch {}
  };
  const unregister = onExit(() => {
    stopServer();
    rmSync(socketDir, { recursive: true, force: true });
  });
  const psql = (sql: string, database = "postgres") =>
    runAsPostgres([join(binDir, "psql"), "-h", socketDir, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtX", "-f", "-"], sql);
  const log = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`postgres exited (${proc.exitCode}) on the restored directory:\n${log()}`);
    try {
      if (psql("SELECT pg_is_in_recovery();").trim() === "f") break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`postgres on the restored directory was not promoted within ${timeoutMs} ms:\n${log()}`);
    await Bun.sleep(200);
  }
  return {
    port,
    psql,
    log,
    async stop() {
      unregister();
      stopServer();
      await Promise.race([proc.exited, Bun.sleep(5000)]);
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
