/**
 * The checks behind `snapdb doctor`. Each looks, never changes anything (no store is
 * created or migrated, no key generated or chmod-ed), and says what to do about a problem.
 */
import { Database } from "bun:sqlite";
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { LATEST_SCHEMA_VERSION } from "../db/migrate.ts";
import { localBaseUrl, probeReady } from "./ready.ts";
import { storeFile } from "./runtime.ts";

export type Status = "ok" | "warn" | "fail";
export interface CheckResult {
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

const result = (name: string, status: Status, detail: string, fix?: string): CheckResult => ({ name, status, detail, fix });
const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;
const modeOf = (path: string) => statSync(path).mode & 0o777;
const octal = (mode: number) => `0${mode.toString(8).padStart(3, "0")}`;

export function checkDataDir(config: Config): CheckResult {
  const dir = config.dataDir;
  if (!existsSync(dir)) return result("data dir", "warn", `${dir} does not exist yet`, "it is created at first start; or: install -d -m 0700 -o snapdb -g snapdb " + dir);
  if (!statSync(dir).isDirectory()) return result("data dir", "fail", `${dir} is not a directory`, "point dataDir at a directory");
  const probe = join(dir, `.doctor-${process.pid}-${Date.now()}`);
  try {
    closeSync(openSync(probe, "wx", 0o600));
    unlinkSync(probe);
  } catch (err) {
    return result(
      "data dir",
      "fail",
      `${dir} is not writable by uid ${process.getuid?.()} (${errCode(err)})`,
      "run doctor as the daemon's user (sudo -u snapdb snapdb doctor …) or fix the owner: chown -R snapdb:snapdb " + dir,
    );
  }
  const mode = modeOf(dir);
  if (mode & 0o077) return result("data dir", "warn", `${dir} is writable but has mode ${octal(mode)}`, `chmod 700 ${dir}`);
  return result("data dir", "ok", `${dir} is writable (mode ${octal(mode)})`);
}

export function checkStore(config: Config): CheckResult {
  const file = storeFile(config);
  if (!existsSync(file)) return result("store", "warn", `no store yet at ${file}`, "it is created and migrated at first start (or run: snapdb migrate)");
  let db: Database | undefined;
  try {
    db = new Database(file, { readonly: true });
    const found = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    const detail = `${file}: schema version ${found}, this binary's is ${LATEST_SCHEMA_VERSION}`;
    if (found === LATEST_SCHEMA_VERSION) return result("store", "ok", detail);
    if (found < LATEST_SCHEMA_VERSION) return result("store", "warn", detail, "the daemon migrates it at start (or run: snapdb migrate)");
    return result("store", "fail", `${detail} (written by a newer snapdb)`, "run the snapdb version that wrote it, or a newer one");
  } catch (err) {
    return result("store", "fail", `${file} cannot be opened: ${(err as Error).message}`, "run doctor as the daemon's user, and check the file is a snapdb store");
  } finally {
    db?.close();
  }
}

/** A generated key file: present, mode 0600, readable, 32 bytes of base64. */
function checkKeyFile(name: string, path: string, missing: () => CheckResult): CheckResult {
  if (!existsSync(path)) return missing();
  const mode = modeOf(path);
  let bytes: number;
  try {
    bytes = Buffer.from(readFileSync(path, "utf8").trim(), "base64").length;
  } catch (err) {
    return result(name, "fail", `${path} cannot be read (${errCode(err)})`, "run doctor as the daemon's user (sudo -u snapdb …)");
  }
  if (bytes !== 32) return result(name, "fail", `${path} holds ${bytes} bytes, not 32`, "restore the right file from your backup");
  if (mode !== 0o600) return result(name, "fail", `${path} has mode ${octal(mode)}`, `chmod 600 ${path}`);
  return result(name, "ok", `${path} (mode 0600)`);
}

export function checkMasterKey(config: Config): CheckResult {
  return checkKeyFile("master key", config.masterKeyFile, () =>
    existsSync(storeFile(config))
      ? result("master key", "fail", `${config.masterKeyFile} is missing but the store exists: stored credentials cannot be decrypted`, "restore master.key from your backup of the data dir")
      : result("master key", "warn", `${config.masterKeyFile} does not exist yet`, "it is generated at first start; back it up afterwards"),
  );
}

export async function checkJwt(config: Config): Promise<CheckResult> {
  const { auth } = config;
  if (auth.publicKeyFile) {
    try {
      accessSync(auth.publicKeyFile, constants.R_OK);
      return result("jwt", "ok", `tokens are verified with the public key ${auth.publicKeyFile}`);
    } catch (err) {
      return result("jwt", "fail", `${auth.publicKeyFile} cannot be read (${errCode(err)})`, "make the public key readable by the daemon's user");
    }
  }
  if (auth.jwksUrl) {
    try {
      const res = await fetch(auth.jwksUrl, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json().catch(() => null)) as { keys?: unknown } | null;
      if (res.ok && Array.isArray(body?.keys)) return result("jwt", "ok", `JWKS ${auth.jwksUrl} answers with ${body.keys.length} key(s)`);
      return result("jwt", "fail", `JWKS ${auth.jwksUrl} answered HTTP ${res.status} without a key set`, "check auth.jwksUrl");
    } catch (err) {
      return result("jwt", "fail", `JWKS ${auth.jwksUrl} unreachable: ${(err as Error).message}`, "check auth.jwksUrl and the network");
    }
  }
  if (auth.jwtSecret) return result("jwt", "ok", "HS256 secret given in the config or SNAPDB_JWT_SECRET");
  return checkKeyFile("jwt secret", auth.jwtSecretFile, () =>
    result("jwt secret", "warn", `${auth.jwtSecretFile} does not exist yet`, "it is generated at first start or by the first 'snapdb token'"),
  );
}

interface ToolSpec {
  /** Alternatives: the first found on PATH is used (mysqldump vs mariadb-dump). */
  names: string[];
  needed: Status;
  why: string;
  fix: string;
}

const TOOLS: ToolSpec[] = [
  { names: ["pg_dump"], needed: "warn", why: "PostgreSQL backups", fix: "apt-get install postgresql-client" },
  { names: ["pg_restore"], needed: "warn", why: "PostgreSQL restores", fix: "apt-get install postgresql-client" },
  { names: ["psql"], needed: "warn", why: "PostgreSQL restores of plain SQL", fix: "apt-get install postgresql-client" },
  { names: ["mariadb-dump", "mysqldump"], needed: "warn", why: "MySQL/MariaDB backups", fix: "apt-get install mariadb-client" },
  { names: ["mariadb", "mysql"], needed: "warn", why: "MySQL/MariaDB restores", fix: "apt-get install mariadb-client" },
  { names: ["zstd"], needed: "warn", why: "fast zstd backups (dump | zstd through OS pipes; without it, slower in-process)", fix: "apt-get install zstd" },
  { names: ["setpriv"], needed: "ok", why: "optional: dump tools die with a killed daemon outside systemd (under it, the unit's cgroup does)", fix: "apt-get install util-linux" },
  { names: ["age"], needed: "ok", why: "optional: encryption in the tool chain (else in-process), decrypting by hand", fix: "apt-get install age" },
];

/** `tool --version`, spawned with an argv array (never a shell), first line of its output. */
async function toolVersion(path: string): Promise<string> {
  const proc = Bun.spawn([path, "--version"], { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: 5000 });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  const line =
    `${out}\n${err}`
      .split("\n")
      .map((l) => l.replace(/\*+/g, "").trim())
      .find(Boolean) ?? "";
  if (proc.exitCode !== 0) throw new Error(`exited ${proc.exitCode ?? proc.signalCode}: ${line}`);
  return line;
}

export async function checkTools(): Promise<CheckResult[]> {
  return Promise.all(
    TOOLS.map(async (tool): Promise<CheckResult> => {
      const label = tool.names.join("|");
      const name = tool.names.find((n) => Bun.which(n));
      if (!name) {
        const status = tool.needed === "ok" ? "warn" : tool.needed;
        return result(label, status, `not on PATH; needed for ${tool.why}`, tool.fix);
      }
      const path = Bun.which(name)!;
      try {
        return result(label, "ok", `${path}: ${await toolVersion(path)}`);
      } catch (err) {
        return result(label, "fail", `${path} --version failed: ${(err as Error).message}`, `reinstall it (${tool.fix})`);
      }
    }),
  );
}

/** The listen address is free, or a snapdb daemon already answers there. */
export async function checkListen(config: Config): Promise<CheckResult> {
  const i = config.listen.lastIndexOf(":");
  const hostname = config.listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  const port = Number(config.listen.slice(i + 1));
  let bindError: string | null = null;
  try {
    const server = Bun.listen({ hostname, port, socket: { data() {} } });
    server.stop(true);
    return result("listen", "ok", `${config.listen} is free`);
  } catch (err) {
    bindError = errCode(err);
  }
  const probe = await probeReady(localBaseUrl(config.listen));
  if (probe.state === "ready") return result("listen", "ok", `a snapdb daemon answers ${localBaseUrl(config.listen)}/readyz: ready`);
  // 503 is a snapdb still starting (or draining); any other answer is some other program.
  if (probe.state === "not-ready" && probe.status === 503) {
    return result("listen", "warn", `the daemon at ${config.listen} is not ready (${probe.message})`, "see its log: journalctl -u snapdb");
  }
  if (probe.state === "not-ready") {
    return result("listen", "fail", `${config.listen} is taken by something that is not snapdb (/readyz: HTTP ${probe.status})`, "stop it (ss -ltnp shows which) or change listen");
  }
  const fix =
    bindError === "EACCES"
      ? "ports below 1024 need privileges the unit does not grant: use a port ≥ 1024"
      : bindError === "EADDRNOTAVAIL"
        ? "that address is not on this host: check listen"
        : "another program holds it (ss -ltnp): stop it or change listen";
  return result("listen", "fail", `cannot listen on ${config.listen} (${bindError}) and no snapdb answers there`, fix);
}

/** The managed destination: a local directory the daemon can write, or an S3 bucket that answers. */
export async function checkManagedStorage(config: Config): Promise<CheckResult> {
  const storage = config.managedStorage;
  if (storage.type === "local") {
    if (!existsSync(storage.path)) return result("managed storage", "warn", `${storage.path} does not exist yet`, "it is created at the first backup to the managed destination");
    try {
      accessSync(storage.path, constants.W_OK | constants.X_OK);
      return result("managed storage", "ok", `local ${storage.path} is writable`);
    } catch (err) {
      return result("managed storage", "fail", `local ${storage.path} is not writable (${errCode(err)})`, `chown snapdb:snapdb ${storage.path}`);
    }
  }
  const { S3Client, HeadBucketCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    region: storage.region,
    endpoint: storage.endpoint || undefined,
    forcePathStyle: storage.forcePathStyle,
    credentials: storage.accessKeyId ? { accessKeyId: storage.accessKeyId, secretAccessKey: storage.secretAccessKey } : undefined,
    maxAttempts: 1,
  });
  const where = `s3://${storage.bucket}${storage.endpoint ? ` at ${storage.endpoint}` : ""}`;
  try {
    await client.send(new HeadBucketCommand({ Bucket: storage.bucket }), { abortSignal: AbortSignal.timeout(10_000) });
    return result("managed storage", "ok", `${where} answers HeadBucket`);
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const why = status ? `HTTP ${status} (${(err as Error).name})` : (err as Error).message;
    return result("managed storage", "fail", `${where} unreachable: ${why}`, "check managedStorage endpoint, region, bucket and credentials");
  } finally {
    client.destroy();
  }
}
