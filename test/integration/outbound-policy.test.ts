import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { notificationChannels } from "../../src/db/schema.ts";
import { attach, backupNow, createPolicy, createSource, managedDestination, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { freePort } from "../helpers/servers.ts";
import { tempDir } from "../helpers/tmp.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";

/**
 * The outbound policy (config `network.denyCidrs` / `network.allowCidrs`) from outside:
 * apps with real config, a real PostgreSQL, s3rver, and plain TCP listeners that count the
 * connections they accept, which proves a refused address is never connected to at all.
 */
let pg: PgServer;
let s3: S3Server;
const scratch = tempDir("snapdb-outbound");
const ORG = "org_outbound";
const DEFAULT_DENY = "169.254.0.0/16,fd00:ec2::254/128";

/** A TCP listener that accepts and counts, and never speaks: neither PostgreSQL nor S3. */
interface Counter {
  host: string;
  port: number;
  accepts: number;
  close(): void;
}
const counters: Counter[] = [];
async function countingListener(host: string): Promise<Counter> {
  const counter = { host, port: 0, accepts: 0, close: () => server.close() };
  const server: Server = createServer((socket) => {
    counter.accepts++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  counter.port = (server.address() as { port: number }).port;
  counters.push(counter);
  return counter;
}

interface App {
  h: Harness;
  token: string;
}
async function app(env: Record<string, string> = {}): Promise<App> {
  const h = await createHarness(env);
  await h.runner.start();
  return { h, token: await h.token(ORG) };
}

const pgCreds = () => ({ username: pg.user, password: pg.password });
const pgAt = (host: string, port = pg.port) => ({ engine: "postgres", host, port, database: pg.database, options: { connectTimeoutSeconds: 3 } });

async function verifySource(a: App, body: Record<string, unknown>) {
  const source = await createSource(a.h, a.token, body, pgCreds());
  const started = performance.now();
  const outcome = await must(a.h, a.token, "POST", `/data-sources/${source.id}/verify`);
  return { source, outcome, ms: performance.now() - started };
}

async function s3Destination(a: App, endpoint: string, bucket = "tenant") {
  return must(
    a.h,
    a.token,
    "POST",
    "/storage-destinations",
    {
      kind: "s3",
      name: `s3-${crypto.randomUUID().slice(0, 8)}`,
      bucket,
      endpoint,
      auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    },
    201,
  );
}

async function verifyDestination(a: App, id: string) {
  const started = performance.now();
  const outcome = await must(a.h, a.token, "POST", `/storage-destinations/${id}/verify`);
  return { outcome, ms: performance.now() - started };
}

async function backupInto(a: App, sourceBody: Record<string, unknown>, destinationId: string, creds?: { username: string; password: string }) {
  const source = await createSource(a.h, a.token, sourceBody, creds);
  const policy = await createPolicy(a.h, a.token, destinationId, { retries: 2 });
  await attach(a.h, a.token, source.id, policy.id);
  return { source, job: await backupNow(a.h, a.token, source.id) };
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3rver(["tenant", "managed"])]);
}, 120_000);

afterAll(async () => {
  counters.forEach((c) => c.close());
  await Promise.all([pg?.stop(), s3?.close()]);
  scratch.cleanup();
});

describe("default policy: the cloud metadata service is out of reach", () => {
  let a: App;
  beforeAll(async () => void (a = await app()));
  afterAll(async () => {
    await a?.h.runner.stop(1000);
    a?.h.close();
  });

  test("verify of a data source at 169.254.169.254 answers like an unreachable host, at once", async () => {
    const closed = await verifySource(a, pgAt("127.0.0.1", await freePort()));
    expect(closed.outcome).toMatchObject({ ok: false, error: { code: "CONNECTION_REFUSED" } });
    for (const host of ["169.254.169.254", "::ffff:169.254.169.254", "[::ffff:a9fe:a9fe]", "fd00:ec2::254"]) {
      const denied = await verifySource(a, pgAt(host, 80));
      expect(denied.outcome.ok, host).toBe(false);
      expect(denied.outcome.error.code, host).toBe(closed.outcome.error.code);
      expect(denied.outcome.error.message).toBe(`could not connect to ${host}:80`);
      expect(denied.ms).toBeLessThan(2000);
    }
  });

  test("a backup of it fails CONNECTION_REFUSED, says why, and is not retried", async () => {
    const managed = await managedDestination(a.h, a.token);
    const { job } = await backupInto(a, pgAt("169.254.169.254", 5432), managed.id, pgCreds());
    expect(job.status).toBe("failed");
    expect(job.attempt).toBe(1);
    expect(job.error.code).toBe("CONNECTION_REFUSED");
    expect(job.error.message).toContain("outbound network policy");
  });

  test("a tenant S3 endpoint at 169.254.169.254 fails verify like an unreachable one", async () => {
    const closed = await verifyDestination(a, (await s3Destination(a, `http://127.0.0.1:${await freePort()}`)).id);
    expect(closed.outcome).toMatchObject({ ok: false, error: { code: "STORAGE_UNREACHABLE" } });
    for (const endpoint of ["http://169.254.169.254/", "http://[::ffff:169.254.169.254]/", "http://2852039166/"]) {
      const denied = await verifyDestination(a, (await s3Destination(a, endpoint)).id);
      expect(denied.outcome).toEqual({ ok: false, error: { code: closed.outcome.error.code, message: "the storage endpoint is unreachable" } });
      expect(denied.ms).toBeLessThan(2000);
    }
  });

  test("loopback is not denied by default: PostgreSQL and the s3rver destination work", async () => {
    expect((await verifySource(a, pgAt(pg.host))).outcome).toMatchObject({ ok: true });
    const dest = await s3Destination(a, s3.endpoint);
    expect((await verifyDestination(a, dest.id)).outcome).toMatchObject({ ok: true });
    const { job } = await backupInto(a, pgAt("localhost"), dest.id, pgCreds());
    expect(job.error).toBeNull();
    expect(job.status).toBe("succeeded");
  });
});

describe("denyCidrs covering loopback: nothing on 127.0.0.0/8 is ever connected to", () => {
  let a: App;
  let listener: Counter;
  beforeAll(async () => {
    listener = await countingListener("127.0.0.1");
    // The operator's managed storage is on loopback too: it is trusted config, not tenant input.
    const toml = join(scratch.path, "managed-s3.toml");
    writeFileSync(
      toml,
      `[managedStorage]\ntype = "s3"\nendpoint = "${s3.endpoint}"\nregion = "us-east-1"\nbucket = "managed"\nprefix = ""\nforcePathStyle = true\naccessKeyId = "${s3.accessKeyId}"\nsecretAccessKey = "${s3.secretAccessKey}"\n`,
    );
    a = await app({ SNAPDB_CONFIG: toml, SNAPDB_NETWORK_DENY_CIDRS: `${DEFAULT_DENY},127.0.0.0/8,::1/128`, SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path });
  });
  afterAll(async () => {
    await a?.h.runner.stop(1000);
    a?.h.close();
  });

  test("verify of the real local PostgreSQL is refused, by address and by name", async () => {
    for (const host of [pg.host, "localhost", "0.0.0.0", "::1"]) {
      const { outcome, ms } = await verifySource(a, pgAt(host));
      expect(outcome, host).toMatchObject({ ok: false, error: { code: "CONNECTION_REFUSED" } });
      expect(ms).toBeLessThan(2000);
    }
  });

  test("verify and backup of a source on loopback never connect", async () => {
    const { outcome } = await verifySource(a, pgAt("127.0.0.1", listener.port));
    expect(outcome).toMatchObject({ ok: false, error: { code: "CONNECTION_REFUSED" } });
    const managed = await managedDestination(a.h, a.token);
    const { job } = await backupInto(a, pgAt("localhost", listener.port), managed.id, pgCreds());
    expect(job.status).toBe("failed");
    expect(job.attempt).toBe(1);
    expect(job.error.code).toBe("CONNECTION_REFUSED");
    expect(job.error.message).toContain("outbound network policy");
    expect(job.objectKey).toBeNull();
    expect(listener.accepts).toBe(0);
  });

  test("a tenant S3 endpoint on loopback is refused at verify and at backup, by address and by name", async () => {
    for (const endpoint of [`http://127.0.0.1:${listener.port}`, `http://localhost:${listener.port}`, `http://[::1]:${listener.port}`]) {
      const { outcome } = await verifyDestination(a, (await s3Destination(a, endpoint)).id);
      expect(outcome, endpoint).toEqual({ ok: false, error: { code: "STORAGE_UNREACHABLE", message: "the storage endpoint is unreachable" } });
    }
    const dest = await s3Destination(a, `http://localhost:${listener.port}`);
    const { job } = await backupInto(a, { engine: "sqlite", path: smallSqlite(scratch.path) }, dest.id);
    expect(job.status).toBe("failed");
    expect(job.attempt).toBe(1);
    expect(job.error.code).toBe("STORAGE_UNREACHABLE");
    expect(job.error.message).toContain("outbound network policy");
    expect(listener.accepts).toBe(0);
  });

  test("notification channels on loopback: every send is refused by the policy, without a connection", async () => {
    // Names pass at creation (an address is only known once resolved, at send time); a
    // webhook URL stored before the operator denied its range is checked at send time too.
    const channels = [
      await must(
        a.h,
        a.token,
        "POST",
        "/notification-channels",
        { name: "hook", type: "webhook", config: { url: `http://localhost:${listener.port}/hook`, secret: "whsec-outbound-0123456789" } },
        201,
      ),
      await must(a.h, a.token, "POST", "/notification-channels", { name: "slack", type: "slack", config: { webhookUrl: `http://localhost:${listener.port}/services/T0/B0/x` } }, 201),
      await must(a.h, a.token, "POST", "/notification-channels", { name: "hook-ip", type: "webhook", config: { url: `http://localhost:${listener.port}/`, secret: "whsec-outbound-0123456789" } }, 201),
    ];
    const ipUrl = `http://127.0.0.1:${listener.port}/`;
    expect((await a.h.call("POST", "/notification-channels", { token: a.token, body: { name: "refused", type: "webhook", config: { url: ipUrl, secret: "whsec-outbound-0123456789" } } })).status).toBe(
      400,
    );
    await a.h.store.db
      .update(notificationChannels)
      .set({ settings: { url: ipUrl } })
      .where(eq(notificationChannels.id, channels[2].id));
    await a.h.notifications.sender.start();
    try {
      for (const channel of channels) {
        const { deliveryId } = await must(a.h, a.token, "POST", `/notification-channels/${channel.id}/test`, undefined, 202);
        let d: any;
        for (const until = Date.now() + 10_000; Date.now() < until; await Bun.sleep(50)) {
          d = (await must(a.h, a.token, "GET", `/notification-deliveries?channelId=${channel.id}`)).items.find((x: any) => x.id === deliveryId);
          if (d.status !== "pending") break;
        }
        expect(d, channel.name).toMatchObject({ status: "failed", attempts: 1, nextAttemptAt: null });
        expect(d.lastError, channel.name).toContain("refused by the daemon's outbound network policy");
      }
    } finally {
      await a.h.notifications.sender.stop();
    }
    expect(listener.accepts).toBe(0);
  });

  test("the operator's managed S3 storage on loopback still works", async () => {
    const managed = await managedDestination(a.h, a.token);
    expect((await verifyDestination(a, managed.id)).outcome).toMatchObject({ ok: true });
    const { job } = await backupInto(a, { engine: "sqlite", path: smallSqlite(scratch.path) }, managed.id);
    expect(job.error).toBeNull();
    expect(job.status).toBe("succeeded");
  });
});

describe("allowCidrs: only the listed ranges are reachable", () => {
  let a: App;
  let other: Counter;
  beforeAll(async () => {
    other = await countingListener("127.0.0.2");
    a = await app({ SNAPDB_NETWORK_ALLOW_CIDRS: "127.0.0.1/32" });
  });
  afterAll(async () => {
    await a?.h.runner.stop(1000);
    a?.h.close();
  });

  test("127.0.0.1 works; 127.0.0.2 is refused for verify, backup and restore, without a connection", async () => {
    expect((await verifySource(a, pgAt("127.0.0.1"))).outcome).toMatchObject({ ok: true });
    const managed = await managedDestination(a.h, a.token);
    const { job: good } = await backupInto(a, pgAt("127.0.0.1"), managed.id, pgCreds());
    expect(good.status).toBe("succeeded");

    const { source: outside, outcome } = await verifySource(a, pgAt("127.0.0.2", other.port));
    expect(outcome).toMatchObject({ ok: false, error: { code: "CONNECTION_REFUSED" } });
    const { job } = await backupInto(a, pgAt("127.0.0.2", other.port), managed.id, pgCreds());
    expect(job.status).toBe("failed");
    expect(job.error.code).toBe("CONNECTION_REFUSED");
    const restore = await a.h.call("POST", "/restores", { token: a.token, body: { backupJobId: good.id, targetDataSourceId: outside.id } });
    expect(restore.status).toBe(409);
    expect(restore.body.message).toContain("CONNECTION_REFUSED");
    expect(other.accepts).toBe(0);
  });

  test("S3: the s3rver on 127.0.0.1 works, an endpoint on 127.0.0.2 is refused", async () => {
    expect((await verifyDestination(a, (await s3Destination(a, s3.endpoint)).id)).outcome).toMatchObject({ ok: true });
    const { outcome } = await verifyDestination(a, (await s3Destination(a, `http://127.0.0.2:${other.port}`)).id);
    expect(outcome).toMatchObject({ ok: false, error: { code: "STORAGE_UNREACHABLE" } });
    expect(other.accepts).toBe(0);
  });
});
