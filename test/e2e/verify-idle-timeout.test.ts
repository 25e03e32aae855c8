/**
 * `snapdb verify <job> --wait` against the compiled daemon, with the daemon's idle timeout
 * (http.idleTimeoutSeconds) set to 2 s and the storage made slow on purpose (a fault proxy in
 * front of s3rver delays every read of the file): the verify's answer comes after 8 s of
 * silence on the client's connection, and still arrives, because that one request is exempt
 * from the idle timeout. A kept-alive connection that merely idles is still closed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { connect } from "node:net";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { tempDir } from "../helpers/tmp.ts";

const ORG = "acme";
const IDLE_SECONDS = 2;
const READ_DELAY_MS = 4000;
const files = tempDir("snapdb-e2e-verify-idle");
let s3: S3Server;
let proxy: FaultProxy;
let daemon: Daemon;
let api: DaemonApi;

beforeAll(async () => {
  [s3, daemon] = await Promise.all([
    startS3rver(["slow"]),
    startDaemon({ binary: "compiled", env: { SNAPDB_HTTP_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS), SNAPDB_ALLOWED_SQLITE_ROOTS: files.path } }),
  ]);
  proxy = await startFaultProxy(s3.endpoint);
  api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  await proxy?.close();
  await s3?.close();
  files.cleanup();
});

test("a kept-alive connection that goes silent is closed after about http.idleTimeoutSeconds", async () => {
  const started = Date.now();
  const closedAfter = await new Promise<number>((resolve, reject) => {
    const socket = connect(daemon.port, "127.0.0.1", () => socket.write("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    socket.on("data", () => {});
    socket.on("error", reject);
    socket.on("close", () => resolve(Date.now() - started));
    setTimeout(() => {
      socket.destroy();
      reject(new Error("the idle connection was still open after 15 s"));
    }, 15_000);
  });
  expect(closedAfter).toBeGreaterThanOrEqual(IDLE_SECONDS * 1000 - 200);
  // Bun checks the timeout on a coarse timer: it closes between one and two timeouts later (not 30 s, the default).
  expect(closedAfter).toBeLessThan(IDLE_SECONDS * 1000 * 3);
}, 30_000);

test("verify --wait outlasts the idle timeout: elapsed lines while the daemon reads, then ok", async () => {
  const path = join(files.path, "blobs.db");
  const db = new Database(path);
  db.run("CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB)");
  for (let i = 0; i < 16; i++) db.run("INSERT INTO b (v) VALUES (randomblob(4096))");
  db.close();
  const source = await api.createSource({ engine: "sqlite", path });
  const destination = await api.s3Destination({ ...s3, endpoint: proxy.endpoint }, "slow");
  const policy = await api.createPolicy(destination.id);
  await api.attach(source.id, policy.id);
  const job = await api.backupNow(source.id);
  expect(job.status).toBe("succeeded");

  // Every read of the stored file (the verify reads it twice) waits before it is answered.
  proxy.rule = (req) => (req.method === "GET" && req.url.includes(job.id) ? { delayMs: READ_DELAY_MS } : null);
  const started = Date.now();
  const r = await daemon.run(["verify", job.id, "--wait", "--url", daemon.baseUrl, "--org", ORG]);
  const took = Date.now() - started;
  proxy.rule = () => null;
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  expect(took).toBeGreaterThan(2 * READ_DELAY_MS);
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines[0]).toBe(`${job.id}  verifying  elapsed 0:00`);
  // Without a terminal: a line every 5 s while it waits.
  const ticks = lines.slice(1, -1);
  expect(ticks.length).toBeGreaterThanOrEqual(1);
  for (const tick of ticks) expect(tick).toMatch(new RegExp(`^${job.id} {2}verifying {2}elapsed 0:(0[5-9]|[12]\\d)$`));
  expect(lines.at(-1)).toMatch(new RegExp(`^ok: ${job.id}: [\\d.]+ (B|KiB) dump, [\\d.]+ (B|KiB) stored, sha256 ${job.sha256}$`));
  expect(proxy.seen.filter((s) => s.method === "GET" && s.url.includes(job.id)).length).toBeGreaterThanOrEqual(2);
}, 120_000);

test("a data source verify waiting longer than the idle timeout (connectTimeoutSeconds 5) still answers, TIMEOUT", async () => {
  // A listener that accepts and never speaks: the PostgreSQL client waits for the server's
  // first bytes until its connect timeout, 5 s, more than twice the daemon's idle timeout.
  const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const source = await api.createSource({ engine: "postgres", host: "127.0.0.1", port: silent.port, database: "appdb", options: { connectTimeoutSeconds: 5 } }, { username: "u", password: "p" });
    const started = Date.now();
    const res = await api.call("POST", `/data-sources/${source.id}/verify`, undefined, 20_000);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: false, error: { code: "TIMEOUT" } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
  } finally {
    silent.stop(true);
  }
}, 60_000);
