import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, onExit, waitFor } from "./servers.ts";

export interface MariaDbServer {
  host: string;
  port: number;
  /** A password-authenticated user with all rights on `database`. */
  user: string;
  password: string;
  database: string;
  socket: string;
  /** Runs SQL as root over the socket through the mariadb client; returns stdout. */
  sql(statements: string, database?: string): string;
  stop(): Promise<void>;
}

/**
 * A throwaway MariaDB server: `mariadb-install-db` into a temp dir, `mariadbd` as root on
 * 127.0.0.1 at a free port with a private socket, and a user `snapdb_test` with a password
 * owning database `appdb`. `stop()` (also run at process exit) kills it and removes the dir.
 */
export async function startMariaDb(opts: { password?: string } = {}): Promise<MariaDbServer> {
  const root = mkdtempSync(join(tmpdir(), "snapdb-maria-"));
  const datadir = join(root, "data");
  const socket = join(root, "mysqld.sock");
  const port = await freePort();
  const password = opts.password ?? `pw-${crypto.randomUUID()}`;
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  const cleanup = () => {
    try {
      proc?.kill("SIGKILL");
    } catch {}
    rmSync(root, { recursive: true, force: true });
  };
  const unregister = onExit(cleanup);
  try {
    const install = Bun.spawnSync(["mariadb-install-db", "--no-defaults", "--user=root", `--datadir=${datadir}`, "--auth-root-authentication-method=socket", "--skip-test-db"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if (install.exitCode !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr.toString().slice(-2000)}`);
    proc = Bun.spawn(
      [
        "mariadbd",
        "--no-defaults",
        "--user=root",
        `--datadir=${datadir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        `--pid-file=${join(root, "mysqld.pid")}`,
        "--skip-log-bin",
        "--innodb-buffer-pool-size=32M",
        "--innodb-flush-log-at-trx-commit=0",
        "--skip-name-resolve",
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
    const sql = (statements: string, database?: string) => {
      const argv = ["mariadb", "--no-defaults", `--socket=${socket}`, "-uroot", "-N", "-B"];
      if (database) argv.push(database);
      const res = Bun.spawnSync(argv, { stdin: Buffer.from(statements), stdout: "pipe", stderr: "pipe" });
      if (res.exitCode !== 0) throw new Error(`mariadb failed: ${res.stderr.toString().slice(-2000)}`);
      return res.stdout.toString();
    };
    await waitFor("mariadb", () => {
      if (proc?.exitCode !== null && proc?.exitCode !== undefined) throw new Error(`mariadbd exited with ${proc.exitCode}`);
      return Bun.spawnSync(["mariadb-admin", "--no-defaults", `--socket=${socket}`, "-uroot", "ping"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
    });
    // The password goes through stdin, never argv.
    const quoted = password.replace(/\\/g, "\\\\").replace(/'/g, "\\'");
    sql(`CREATE DATABASE appdb;
CREATE USER 'snapdb_test'@'127.0.0.1' IDENTIFIED BY '${quoted}';
CREATE USER 'snapdb_test'@'localhost' IDENTIFIED BY '${quoted}';
GRANT ALL ON appdb.* TO 'snapdb_test'@'127.0.0.1';
GRANT ALL ON appdb.* TO 'snapdb_test'@'localhost';
FLUSH PRIVILEGES;`);
    return {
      host: "127.0.0.1",
      port,
      user: "snapdb_test",
      password,
      database: "appdb",
      socket,
      sql,
      async stop() {
        unregister();
        const p = proc;
        try {
          p?.kill("SIGTERM");
          const done = await Promise.race([p?.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
          if (!done) p?.kill("SIGKILL");
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
 * Holds `LOCK TABLES table WRITE` in `database` on a root session of its own (the mariadb
 * client over the socket) until the returned release is called; idempotent, so a test may
 * release in its body and again in `finally`.
 */
export async function holdMariaDbTableLock(server: Pick<MariaDbServer, "socket">, database: string, table: string): Promise<() => Promise<void>> {
  const proc = Bun.spawn(["mariadb", "--no-defaults", `--socket=${server.socket}`, "-uroot", "-N", "-B", "--unbuffered", database], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  proc.stdin.write(`LOCK TABLES \`${table.replace(/`/g, "``")}\` WRITE; SELECT 'locked';\n`);
  proc.stdin.flush();
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("locked")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`LOCK TABLES failed: ${await new Response(proc.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  let released: Promise<void> | null = null;
  return () =>
    (released ??= (async () => {
      proc.stdin.write("UNLOCK TABLES;\n");
      proc.stdin.end();
      await proc.exited;
    })());
}
