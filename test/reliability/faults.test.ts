/**
 * Faults against the real daemon: the storage server stopped mid-upload, storage answering
 * 500s or slowly, the database server stopped mid-dump, a full local disk, the dump tool
 * missing. Each must end in a failed job with the right code, retried when the error is
 * retryable (policy retries: 1, 1 s backoff), with no object left behind, and the daemon must
 * stay healthy: /readyz 200 and the next backup to a good destination succeeds.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error untyped package
import S3rver from "s3rver";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { localObjects, readStore, s3Objects } from "./invariants.ts";

const ORG = "org_faults";
const scratch = tempDir("snapdb-faults");
const allowedRoot = join(scratch.path, "allowed");
const s3Dir = join(scratch.path, "s3");
mkdirSync(allowedRoot);
mkdirSync(s3Dir);

let daemon: Daemon;
let api: DaemonApi;
let pg: PgServer;
let proxy: FaultProxy;
let s3: { endpoint: string; close(): Promise<void> };
let s3DstId: string;
let managedId: string;
const s3Creds = () => ({ endpoint: proxy.endpoint, region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });

/** s3rver over a directory we keep, so a stopped server can be started again on the same objects. */
async function startS3(): Promise<typeof s3> {
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: s3Dir, configureBuckets: [{ name: "faults" }] });
  const address = await server.run();
  // Bounded: s3rver's close waits for open connections.
  return { endpoint: `http://127.0.0.1:${address.port}`, close: () => Promise.race([server.close(), Bun.sleep(2000)]) };
}

function sqliteFile(bytes: number): string {
  const file = join(scratch.path, `src-${crypto.randomUUID()}.db`);
  const db = new Database(file);
  db.run("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)");
  for (let done = 0; done < bytes; done += 1 << 20) db.run("INSERT INTO blobs (b) VALUES (?)", [randomBytes(Math.min(1 << 20, bytes - done))]);
  db.close();
  return file;
}

const PLAIN = { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] }, retries: 1 };

/** The daemon is still fine: ready, and a backup to the managed destination succeeds. */
async function expectHealthy(d: Daemon, client: DaemonApi, destinationId: string): Promise<void> {
  expect((await fetch(`${d.baseUrl}/readyz`)).status).toBe(200);
  const source = await client.createSource({ engine: "sqlite", path: sqliteFile(16 << 10) });
  const policy = await client.createPolicy(destinationId);
  await client.attach(source.id, policy.id);
  const job = await client.backupNow(source.id);
  expect(job.status).toBe("succeeded");
}

async function auditOf(jobId: string): Promise<string[]> {
  return (await api.must("GET", `/audit-log?targetId=${jobId}&limit=200`)).items.map((e: any) => e.action);
}

/** Runs `body` on a fresh 2 MiB tmpfs under the allowed root; skipped where mounting is not allowed. */
async function onSmallDisk(name: string, body: (mountPoint: string) => Promise<void>): Promise<void> {
  const mountPoint = join(allowedRoot, name);
  mkdirSync(mountPoint);
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mountPoint], { stderr: "pipe" });
  if (mount.exitCode !== 0) {
    console.warn(`skipped: cannot mount a tmpfs here (${mount.stderr.toString().trim()})`);
    return;
  }
  try {
    await body(mountPoint);
  } finally {
    Bun.spawnSync(["umount", "-l", mountPoint]);
  }
}

/** A failed job that was tried twice (retryable) or once (not), with nothing stored under its key. */
async function expectFailed(job: any, code: string, attempts: number): Promise<void> {
  expect({ status: job.status, code: job.error?.code, attempt: job.attempt }).toEqual({ status: "failed", code, attempt: attempts });
  expect(job.sha256).toBeNull();
  const actions = await auditOf(job.id);
  expect(actions.filter((a) => a === "backup_job.started").length).toBe(attempts);
  expect(actions.filter((a) => a === "backup_job.retry_scheduled").length).toBe(attempts - 1);
  expect(actions).toContain("backup_job.failed");
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  proxy = await startFaultProxy(s3.endpoint);
  daemon = await startDaemon({ env: { SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1", SNAPDB_ALLOWED_LOCAL_ROOTS: allowedRoot, SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path, SNAPDB_LOG_LEVEL: "warn" } });
  api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  managedId = (await api.managedDestination()).id;
  s3DstId = (await api.s3Destination(s3Creds(), "faults")).id;
}, 120_000);

afterAll(async () => {
  await daemon?.stop("SIGTERM", 5000);
  await Promise.all([proxy?.close(), s3?.close(), pg?.stop()].map((p) => Promise.race([p, Bun.sleep(8000)])));
  scratch.cleanup();
}, 30_000);

describe("storage faults", () => {
  // A test that failed half-way must not leave its faults on for the next one.
  beforeEach(() => {
    if (proxy) proxy.rule = () => null;
  });

  test("the S3 server stopped mid multipart upload: STORAGE_UNREACHABLE, retried, nothing stored", async () => {
    const source = await api.createSource({ engine: "sqlite", path: sqliteFile(20 << 20) });
    const policy = await api.createPolicy(s3DstId, PLAIN);
    await api.attach(source.id, policy.id);
    const partSeen = Promise.withResolvers<void>();
    proxy.rule = (req) => (req.url.includes("partNumber=") && req.url.includes(source.id) ? (partSeen.resolve(), { delayMs: 300 }) : null);
    const queued = await api.runNow(source.id);
    await Promise.race([partSeen.promise, Bun.sleep(20_000)]);
    await s3.close();
    const job = await api.waitForStatus(`/backup-jobs/${queued.id}`, undefined, 60_000);
    await expectFailed(job, "STORAGE_UNREACHABLE", 2);
    // Back up on the same directory: no object (complete or not) of the failed job is listed.
    s3 = await startS3();
    proxy.upstream = s3.endpoint;
    proxy.rule = () => null;
    expect((await s3Objects(s3.endpoint, "faults")).map((o) => o.key).filter((k) => k.includes(source.id))).toEqual([]);
    await expectHealthy(daemon, api, s3DstId);
  }, 90_000);

  test("S3 answering 500 to every upload: STORAGE_ERROR after the SDK's and the runner's retries, nothing stored", async () => {
    const source = await api.createSource({ engine: "sqlite", path: sqliteFile(64 << 10) });
    const policy = await api.createPolicy(s3DstId, PLAIN);
    await api.attach(source.id, policy.id);
    let injected = 0;
    proxy.rule = (req) => (req.method === "PUT" && req.url.includes(source.id) ? (injected++, { status: 500 }) : null);
    const job = await api.backupNow(source.id);
    proxy.rule = () => null;
    await expectFailed(job, "STORAGE_ERROR", 2);
    expect(injected).toBeGreaterThanOrEqual(2);
    expect((await s3Objects(s3.endpoint, "faults")).map((o) => o.key).filter((k) => k.includes(source.id))).toEqual([]);
    await expectHealthy(daemon, api, s3DstId);
  }, 60_000);

  test("S3 answering a few 500s, then slowly: the job succeeds with the right bytes", async () => {
    const source = await api.createSource({ engine: "sqlite", path: sqliteFile(10 << 20) });
    const policy = await api.createPolicy(s3DstId, PLAIN);
    await api.attach(source.id, policy.id);
    let failuresLeft = 2;
    proxy.rule = (req) => {
      if (!req.url.includes(source.id)) return null;
      if (req.method === "PUT" && failuresLeft > 0) return (failuresLeft--, { status: 500 });
      return { delayMs: 1000 };
    };
    const job = await api.backupNow(source.id);
    proxy.rule = () => null;
    expect(job.status).toBe("succeeded");
    expect(failuresLeft).toBe(0);
    const stored = (await s3Objects(s3.endpoint, "faults")).find((o) => o.key === job.objectKey)!;
    expect(stored.bytes.length).toBe(job.storedBytes);
    expect(new Bun.CryptoHasher("sha256").update(stored.bytes).digest("hex")).toBe(job.sha256);
  }, 60_000);

  test("a full local disk (2 MiB tmpfs): STORAGE_ERROR naming the lack of space, retried, no temp file left", async () => {
    await onSmallDisk("small-disk", async (mountPoint) => {
      const dst = await api.must("POST", "/storage-destinations", { kind: "local", name: "small-disk", path: mountPoint }, 201);
      const source = await api.createSource({ engine: "sqlite", path: sqliteFile(4 << 20) });
      const policy = await api.createPolicy(dst.id, PLAIN);
      await api.attach(source.id, policy.id);
      const job = await api.backupNow(source.id);
      await expectFailed(job, "STORAGE_ERROR", 2);
      expect(job.error.message).toContain("out of space");
      expect(localObjects(mountPoint)).toEqual([]);
      // A small backup fits: the destination works again once there is room.
      await expectHealthy(daemon, api, dst.id);
    });
  }, 60_000);

  test("a full local disk under the tool chain (pg_dump | zstd [| age] > file): the same STORAGE_ERROR, retried, no temp file left", async () => {
    await onSmallDisk("small-disk-chain", async (mountPoint) => {
      // ~8 MB of hex text: about 4 MB once compressed, twice the disk.
      pg.psql(
        `SET ROLE ${pg.user}; CREATE TABLE IF NOT EXISTS bulky (id serial PRIMARY KEY, body text);
        INSERT INTO bulky (body) SELECT (SELECT string_agg(md5(random()::text || g || h), '') FROM generate_series(1, 250) h) FROM generate_series(1, 1000) g;`,
        pg.database,
      );
      const dst = await api.must("POST", "/storage-destinations", { kind: "local", name: "small-disk-chain", path: mountPoint }, 201);
      const source = await api.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
      // zstd writes the file (unencrypted), then age does (encrypted): each says "no space left" its own way.
      for (const encryption of [
        { enabled: false, recipients: [] },
        { enabled: true, recipients: [] },
      ]) {
        const policy = await api.createPolicy(dst.id, { encryption, retries: 1 });
        const attachment = await api.attach(source.id, policy.id);
        const job = await api.backupNow(source.id);
        await expectFailed(job, "STORAGE_ERROR", 2);
        expect(job.error.message).toContain("out of space");
        expect(localObjects(mountPoint)).toEqual([]);
        await api.must("DELETE", `/attachments/${attachment.id}`, undefined, 204);
      }
      await expectHealthy(daemon, api, dst.id);
    });
  }, 90_000);
});

describe("database and tool faults", () => {
  test("the PostgreSQL server stopped mid-dump: DUMP_FAILED, retried, no file left", async () => {
    const doomed = await startPostgres();
    try {
      doomed.psql(`SET ROLE ${doomed.user}; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);`, doomed.database);
      const source = await api.createSource({ engine: "postgres", host: doomed.host, port: doomed.port, database: doomed.database }, { username: doomed.user, password: doomed.password });
      const policy = await api.createPolicy(managedId, { retries: 1 });
      await api.attach(source.id, policy.id);
      // A held lock keeps pg_dump mid-dump until the server goes away under it.
      const locker = new SQL({ url: `postgres://${doomed.user}:${encodeURIComponent(doomed.password)}@${doomed.host}:${doomed.port}/${doomed.database}` });
      const locked = Promise.withResolvers<void>();
      const holding = locker
        .begin(async (tx) => {
          await tx`LOCK TABLE t IN ACCESS EXCLUSIVE MODE`;
          locked.resolve();
          await Bun.sleep(60_000);
        })
        .catch(() => {});
      await locked.promise;
      const queued = await api.runNow(source.id);
      await api.waitForStatus(`/backup-jobs/${queued.id}`, ["running"], 10_000);
      await Bun.sleep(500);
      await doomed.stop();
      await locker.close().catch(() => {});
      await holding;
      const job = await api.waitForStatus(`/backup-jobs/${queued.id}`, undefined, 60_000);
      await expectFailed(job, "DUMP_FAILED", 2);
      expect(job.error.message).not.toContain(doomed.password);
      const managed = localObjects(join(daemon.dataDir, "managed"))
        .map((o) => o.key)
        .filter((k) => k.includes(source.id));
      expect(managed).toEqual([]);
      await expectHealthy(daemon, api, managedId);
    } finally {
      await doomed.stop().catch(() => {});
    }
  }, 90_000);

  test("pg_dump missing from the daemon's PATH: DUMP_TOOL_MISSING, not retried; SQLite backups still work", async () => {
    const emptyBin = join(scratch.path, "empty-bin");
    mkdirSync(emptyBin);
    const bare = await startDaemon({ env: { PATH: emptyBin, SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1", SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path, SNAPDB_LOG_LEVEL: "warn" } });
    try {
      const client = new DaemonApi(bare.baseUrl, await bare.token(ORG));
      const managed = (await client.managedDestination()).id;
      const source = await client.createSource({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
      const policy = await client.createPolicy(managed, { retries: 1 });
      await client.attach(source.id, policy.id);
      const job = await client.backupNow(source.id);
      expect({ status: job.status, code: job.error?.code, attempt: job.attempt }).toEqual({ status: "failed", code: "DUMP_TOOL_MISSING", attempt: 1 });
      expect(
        localObjects(join(bare.dataDir, "managed"))
          .map((o) => o.key)
          .filter((k) => k.includes(source.id)),
      ).toEqual([]);
      await expectHealthy(bare, client, managed);
    } finally {
      await bare.stop("SIGTERM", 5000);
    }
  }, 60_000);

  test("after every fault: the store is consistent and no job is left running", () => {
    const store = readStore(join(daemon.dataDir, "snapdb.db"));
    expect(store.integrity).toBe("ok");
    expect(store.foreignKeyProblems).toEqual([]);
    expect(store.jobs.filter((j) => j.status === "running" || j.status === "queued")).toEqual([]);
    expect(readdirSync(join(daemon.dataDir, "tmp")).length).toBe(0);
  });
});
