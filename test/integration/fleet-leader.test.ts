import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Leadership, pgLeadership } from "../../src/fleet/leader.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { type PgServer, startPostgres } from "../helpers/postgres.ts";

/**
 * Leader election on a real PostgreSQL: of several contenders exactly one leads; when it
 * stops, or its session is cut off by the server, another takes over within the lease, and
 * the cut-off one steps down on its own. Duties are counted, so an overlap would show.
 */
let pg: PgServer;
let url: string;
const LEASE_MS = 1_500;

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE DATABASE leader_test OWNER ${pg.user}`);
  url = `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/leader_test`;
}, 120_000);

afterAll(async () => {
  await pg?.stop();
});

interface Contender {
  name: string;
  leadership: Leadership;
  leading: () => boolean;
  terms: number;
}

/**
 * A TCP relay in front of PostgreSQL that can be frozen: bytes are then dropped both ways and
 * the connections stay open, as when a network cuts a node off without a reset.
 */
function freezableRelay(port: number) {
  let frozen = false;
  const server = Bun.listen<{ upstream: Promise<import("bun").Socket<undefined>> | null }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        client.data = {
          upstream: Bun.connect({
            hostname: "127.0.0.1",
            port,
            socket: {
              data(_up, bytes) {
                if (!frozen) client.write(bytes);
              },
              close() {
                if (!frozen) client.end();
              },
            },
          }),
        };
      },
      async data(client, bytes) {
        const up = await client.data.upstream;
        if (!frozen) up?.write(bytes);
      },
      async close(client) {
        // Cut off, the server hears nothing: not even that the node gave up its connection.
        if (!frozen) (await client.data.upstream)?.end();
      },
    },
  });
  return {
    port: server.port,
    freeze: () => {
      frozen = true;
    },
    stop: () => server.stop(true),
  };
}

/** Records who leads when; `overlaps` counts the moments two contenders led at once. */
function contenders(names: string[], urlOf: (name: string) => string = () => url) {
  const current = new Set<string>();
  let overlaps = 0;
  const all = names.map((name) => {
    const c: Contender = { name, terms: 0, leading: () => current.has(name), leadership: null as unknown as Leadership };
    c.leadership = pgLeadership(
      { url: urlOf(name), leaseMs: LEASE_MS, logger: silentLogger, nodeId: name },
      {
        async elected() {
          if (current.size > 0) overlaps++;
          current.add(name);
          c.terms++;
        },
        async deposed() {
          current.delete(name);
        },
      },
    );
    return c;
  });
  return { all, leaders: () => [...current], overlaps: () => overlaps };
}

async function until(probe: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!probe()) {
    if (Date.now() - started > timeoutMs) throw new Error("timed out");
    await Bun.sleep(25);
  }
  return Date.now() - started;
}

test("one of three leads; a stopped leader is replaced within the lease; one whose session the server ends steps down", async () => {
  const { all, leaders, overlaps } = contenders(["n1", "n2", "n3"]);
  await Promise.all(all.map((c) => c.leadership.start()));
  await until(() => leaders().length === 1, LEASE_MS);
  // Several rounds of asking change nothing.
  await Bun.sleep(LEASE_MS);
  expect(leaders()).toHaveLength(1);
  expect(all.filter((c) => c.leadership.isLeader)).toHaveLength(1);

  // A clean stop frees the lock at once: another contender leads within the lease.
  const first = all.find((c) => c.leading())!;
  await first.leadership.stop();
  expect(first.leading()).toBe(false);
  const takeover = await until(() => leaders().length === 1, LEASE_MS);
  expect(takeover).toBeLessThanOrEqual(LEASE_MS);
  const second = all.find((c) => c.leading())!;
  expect(second.name).not.toBe(first.name);
  expect(overlaps()).toBe(0);

  // The server ends the leader's session (as it would a node cut off by the network): the
  // leader notices it no longer holds the lock and steps down; the remaining one takes over.
  const terminated = pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND classid = x'736e6170'::int::oid AND objid = 1 AND granted", "leader_test");
  expect(terminated.trim()).toBe("1");
  await until(() => !second.leading(), LEASE_MS);
  await until(() => leaders().length === 1, 2 * LEASE_MS);
  // Whoever leads now (the cut-off node may win the lock back: it is alive) holds it for real.
  const lockHolders = pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = x'736e6170'::int::oid AND objid = 1 AND granted", "leader_test");
  expect(lockHolders.trim()).toBe("1");
  // Here the server freed the lock before the old leader could know: an overlap of up to a
  // third of the lease is possible (and harmless: unique slots, at-least-once deliveries).
  await Promise.all(all.map((c) => c.leadership.stop()));
  expect(leaders()).toEqual([]);
}, 60_000);

test("a leader cut off from the store by the network steps down before anyone else takes over", async () => {
  const relay = freezableRelay(pg.port);
  const viaRelay = url.replace(`:${pg.port}/`, `:${relay.port}/`);
  const { all, leaders, overlaps } = contenders(["cut", "m2", "m3"], (name) => (name === "cut" ? viaRelay : url));
  const [cut, ...others] = all;
  await cut!.leadership.start();
  await until(() => cut!.leading(), LEASE_MS);
  await Promise.all(others.map((c) => c.leadership.start()));
  await Bun.sleep(LEASE_MS / 2);
  expect(leaders()).toEqual(["cut"]);

  const frozenAt = Date.now();
  relay.freeze();
  // It notices on its own (its check gets no answer) ...
  const stepDown = await until(() => !cut!.leading(), LEASE_MS);
  expect(stepDown).toBeLessThan(LEASE_MS);
  // ... and only after that, once the server ended its silent session, another one leads.
  await until(() => leaders().length === 1, 4 * LEASE_MS);
  expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(LEASE_MS - LEASE_MS / 3);
  expect(overlaps()).toBe(0);
  expect(cut!.terms).toBe(1);
  await Promise.all(all.map((c) => c.leadership.stop()));
  relay.stop();
}, 60_000);
