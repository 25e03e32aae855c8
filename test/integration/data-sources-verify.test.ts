import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { engineFor } from "../../src/engines/registry.ts";
import type { EngineEnv, SourceTarget } from "../../src/engines/types.ts";
import { OutboundPolicy } from "../../src/net/outbound-policy.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { freePort } from "../helpers/servers.ts";
import { storeAtRest } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Verify against real servers: PostgreSQL 15 and MariaDB started in temp dirs on loopback,
 * a port with nothing listening, and a port that accepts and never answers.
 */
let h: Harness;
let token: string;
let pg: PgServer;
let maria: MariaDbServer;
let silent: Server;
let silentPort: number;
const tools = tempDir("snapdb-tools");
const env: EngineEnv = { toolPath: process.env.PATH ?? "/usr/bin:/bin", timeoutMs: 5000, outbound: OutboundPolicy.fromConfig({ denyCidrs: [], allowCidrs: [] }) };

beforeAll(async () => {
  [pg, maria, h] = await Promise.all([startPostgres(), startMariaDb(), createHarness()]);
  token = await h.token("org_v");
  silent = createServer(() => {}); // accepts, never speaks
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as { port: number }).port;
}, 60_000);

afterAll(async () => {
  silent?.close();
  await Promise.all([pg?.stop(), maria?.stop()]);
  h?.close();
  tools.cleanup();
});

async function source(body: Record<string, unknown>, creds?: { username: string; password: string }) {
  const res = await h.call("POST", "/data-sources", { token, body: { name: `v-${crypto.randomUUID().slice(0, 8)}`, ...body } });
  expect(res.status).toBe(201);
  if (creds) expect((await h.call("PUT", `/data-sources/${res.body.id}/credentials`, { token, body: creds })).status).toBe(204);
  return res.body.id as string;
}
const verify = async (id: string) => {
  const res = await h.call("POST", `/data-sources/${id}/verify`, { token });
  expect(res.status).toBe(200);
  return res.body;
};

const pgBody = () => ({ engine: "postgres", host: pg.host, port: pg.port, database: pg.database });
const mariaBody = () => ({ engine: "mariadb", host: maria.host, port: maria.port, database: maria.database });

describe("verify: PostgreSQL", () => {
  test("right password → ok with the server version; stored as lastVerify", async () => {
    const id = await source(pgBody(), { username: pg.user, password: pg.password });
    const body = await verify(id);
    expect(body).toMatchObject({ ok: true, serverVersion: expect.stringMatching(/^15\.\d+$/), latencyMs: expect.any(Number) });
    const got = await h.call("GET", `/data-sources/${id}`, { token });
    expect(got.body.lastVerify).toEqual(body);
    expect(got.text).not.toContain(pg.password);
  });

  test("wrong password → AUTH_FAILED, and the wrong password is nowhere in the answer or logs", async () => {
    const wrong = "Wr0ng-" + crypto.randomUUID();
    const body = await verify(await source(pgBody(), { username: pg.user, password: wrong }));
    expect(body).toMatchObject({ ok: false, error: { code: "AUTH_FAILED" } });
    expect(JSON.stringify(body)).not.toContain(wrong);
    expect(h.logLines.join("\n")).not.toContain(wrong);
  });

  test("missing database → DATABASE_NOT_FOUND", async () => {
    const body = await verify(await source({ ...pgBody(), database: "no_such_db" }, { username: pg.user, password: pg.password }));
    expect(body).toMatchObject({ ok: false, error: { code: "DATABASE_NOT_FOUND" } });
  });

  test("nothing listening → CONNECTION_REFUSED", async () => {
    const body = await verify(await source({ ...pgBody(), port: await freePort() }, { username: pg.user, password: pg.password }));
    expect(body).toMatchObject({ ok: false, error: { code: "CONNECTION_REFUSED" } });
  });

  test("a port that accepts and never answers → TIMEOUT within the configured bound", async () => {
    const id = await source({ ...pgBody(), port: silentPort, options: { connectTimeoutSeconds: 1 } }, { username: "u", password: "p" });
    const started = Date.now();
    expect(await verify(id)).toMatchObject({ ok: false, error: { code: "TIMEOUT" } });
    expect(Date.now() - started).toBeLessThan(4000);
  });

  test("sslMode require against a server without TLS → TLS_ERROR", async () => {
    const body = await verify(await source({ ...pgBody(), options: { sslMode: "require" } }, { username: pg.user, password: pg.password }));
    expect(body).toMatchObject({ ok: false, error: { code: "TLS_ERROR" } });
  });

  test("no credentials set → AUTH_FAILED without connecting", async () => {
    expect(await verify(await source(pgBody()))).toMatchObject({ ok: false, error: { code: "AUTH_FAILED" } });
  });
});

describe("verify: dump tool checks (engine with its own PATH, no mocks)", () => {
  const target = (): SourceTarget => ({
    engine: "postgres",
    host: pg.host,
    port: pg.port,
    database: pg.database,
    path: null,
    options: {},
    credentials: { username: pg.user, password: pg.password },
  });

  test("PATH without pg_dump → DUMP_TOOL_MISSING, with the server version still reported", async () => {
    const empty = join(tools.path, "empty");
    mkdirSync(empty);
    const res = await engineFor("postgres").verify(target(), { ...env, toolPath: empty });
    expect(res).toMatchObject({ ok: false, serverVersion: expect.stringMatching(/^15\./), error: { code: "DUMP_TOOL_MISSING" } });
  });

  test("a pg_dump older than the server → DUMP_TOOL_TOO_OLD", async () => {
    const old = join(tools.path, "old");
    mkdirSync(old);
    writeFileSync(join(old, "pg_dump"), "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n");
    chmodSync(join(old, "pg_dump"), 0o755);
    const res = await engineFor("postgres").verify(target(), { ...env, toolPath: `${old}:/usr/bin:/bin` });
    expect(res).toMatchObject({ ok: false, error: { code: "DUMP_TOOL_TOO_OLD" } });
    if (!res.ok) expect(res.error.message).toContain("9");
  });

  test("the real pg_dump on the PATH passes", async () => {
    expect(await engineFor("postgres").verify(target(), env)).toMatchObject({ ok: true });
  });

  test("mariadb: PATH without mariadb-dump or mysqldump → DUMP_TOOL_MISSING", async () => {
    const only = join(tools.path, "only-client");
    mkdirSync(only);
    const client = Bun.which("mariadb");
    if (!client) throw new Error("no mariadb client on PATH: run scripts/install-test-deps.sh");
    symlinkSync(client, join(only, "mariadb")); // a client, but no dump tool
    const res = await engineFor("mariadb").verify(
      { engine: "mariadb", host: maria.host, port: maria.port, database: maria.database, path: null, options: {}, credentials: { username: maria.user, password: maria.password } },
      { ...env, toolPath: only },
    );
    expect(res).toMatchObject({ ok: false, error: { code: "DUMP_TOOL_MISSING" } });
  });
});

describe("verify: MariaDB (engines mariadb and mysql)", () => {
  test("right password → ok with the server version", async () => {
    const body = await verify(await source(mariaBody(), { username: maria.user, password: maria.password }));
    expect(body).toMatchObject({ ok: true, serverVersion: expect.stringMatching(/^10\.\d+\.\d+$/) });
  });

  test("engine mysql against the same server also verifies (same protocol, mysqldump)", async () => {
    const body = await verify(await source({ ...mariaBody(), engine: "mysql" }, { username: maria.user, password: maria.password }));
    expect(body).toMatchObject({ ok: true });
  });

  test("wrong password → AUTH_FAILED", async () => {
    expect(await verify(await source(mariaBody(), { username: maria.user, password: "nope-" + crypto.randomUUID() }))).toMatchObject({
      ok: false,
      error: { code: "AUTH_FAILED" },
    });
  });

  test("missing database → DATABASE_NOT_FOUND", async () => {
    const body = await verify(await source({ ...mariaBody(), database: "no_such_db" }, { username: maria.user, password: maria.password }));
    expect(body).toMatchObject({ ok: false, error: { code: "DATABASE_NOT_FOUND" } });
  });

  test("nothing listening → CONNECTION_REFUSED; silent port → TIMEOUT", async () => {
    const refused = await verify(await source({ ...mariaBody(), port: await freePort() }, { username: "u", password: "p" }));
    expect(refused).toMatchObject({ ok: false, error: { code: "CONNECTION_REFUSED" } });
    const silentBody = await verify(await source({ ...mariaBody(), port: silentPort, options: { connectTimeoutSeconds: 1 } }, { username: "u", password: "p" }));
    expect(silentBody).toMatchObject({ ok: false, error: { code: "TIMEOUT" } });
  });
});

describe("verify: audit and secrecy", () => {
  test("every verify is audited without a password; the store's bytes hold no password", async () => {
    const id = await source(pgBody(), { username: pg.user, password: pg.password });
    await verify(id);
    const log = await h.call("GET", `/audit-log?targetId=${id}`, { token });
    expect(log.body.items.map((e: any) => e.action)).toEqual(["data_source.verified", "data_source.credentials_set", "data_source.created"]);
    expect(log.text).not.toContain(pg.password);
    expect(h.logLines.join("\n")).not.toContain(pg.password);
    for (const [where, bytes] of await storeAtRest(h, "TRUNCATE")) expect({ where, hit: bytes.includes(Buffer.from(pg.password)) }).toEqual({ where, hit: false });
  });
});
