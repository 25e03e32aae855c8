import { afterAll, beforeAll, expect, test } from "bun:test";
import { attach, backupNow, createPolicy, createSource, managedDestination } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { freePort } from "../helpers/daemon.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";

/**
 * A failed job's message keeps the tool's words intact with a one-letter password, and
 * still hides a long password wherever a tool echoes it.
 */
let h: Harness;
let pg: PgServer;
let token: string;
let destinationId: string;

beforeAll(async () => {
  pg = await startPostgres();
  h = await createHarness({ SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1" });
  await h.runner.start();
  token = await h.token("org_redact");
  destinationId = (await managedDestination(h, token)).id;
}, 60_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await pg?.stop();
});

async function failedJob(source: Record<string, unknown>, password: string, username = "nobody") {
  const ds = await createSource(h, token, source, { username, password });
  const policy = await createPolicy(h, token, destinationId, { retries: 0 });
  await attach(h, token, ds.id, policy.id);
  const job = await backupNow(h, token, ds.id);
  expect(job.status).toBe("failed");
  return job.error as { code: string; message: string };
}

test("a one-letter password does not garble the tool's message", async () => {
  const error = await failedJob({ engine: "postgres", host: "127.0.0.1", port: await freePort(), database: "appdb" }, "p");
  expect(error.message).toContain("pg_dump");
  expect(error.message).toContain("accepting TCP/IP connections");
  expect(error.message).not.toContain("***");
});

test("a long password a tool echoes (here as the database name) is masked", async () => {
  // The right login, and a database named like the password: the server says it does not exist.
  const secret = pg.password;
  const error = await failedJob({ engine: "postgres", host: pg.host, port: pg.port, database: secret }, secret, pg.user);
  expect(error.message).not.toContain(secret);
  expect(error.message).toContain("***");
  expect(error.message).toMatch(/database "\*\*\*" does not exist/);
});

test("a one-letter wrong password does not garble the verify message (the driver's words stay whole)", async () => {
  // PostgreSQL answers "password authentication failed for user …": every word holds an `a`.
  const ds = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: "a" });
  const res = await h.call("POST", `/data-sources/${ds.id}/verify`, { token });
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ ok: false, error: { code: "AUTH_FAILED" } });
  const message = res.body.error.message as string;
  expect(message).toContain("password authentication failed");
  expect(message).not.toContain("***");
});
