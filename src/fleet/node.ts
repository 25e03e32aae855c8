import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { type Db, isPostgres } from "../db/client.ts";
import { rawGet } from "../db/raw.ts";
import { nodes } from "../db/schema.ts";
import { setStoreClockOffset, storeNowMs } from "../lib/clock.ts";
import { isId, newId } from "../lib/ids.ts";
import type { Logger } from "../lib/logger.ts";
import { VERSION } from "../version.ts";

/**
 * This daemon's node id: minted once and kept in the data dir, so a restarted daemon is the
 * same node (its own `running` jobs are its to recover at start) and two data dirs are two
 * nodes.
 */
export function nodeIdOf(dataDir: string): string {
  const file = join(dataDir, "node-id");
  if (existsSync(file)) {
    const id = readFileSync(file, "utf8").trim();
    if (isId(id, "node")) return id;
  }
  const id = newId("node");
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}

/**
 * How other nodes reach this one directly (not through a load balancer in front of the
 * fleet): its listen address, with the host's name when it listens on every interface.
 */
export function directUrlOf(listen: string): string {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i);
  const wildcard = host === "0.0.0.0" || host === "[::]" || host === "::" || host === "";
  return `http://${wildcard ? hostname() : host}:${listen.slice(i + 1)}`;
}

/** The master key's fingerprint: every node of a fleet must hold the same key (doctor compares them). */
export const keyFingerprint = (master: Uint8Array) => createHash("sha256").update(master).digest("hex").slice(0, 16);

export interface NodeInfo {
  id: string;
  labels: Record<string, string>;
  masterKeyFingerprint: string;
  /** Where this node answers directly: other nodes fetch downloads of files on its disk here. */
  url: string;
}

/**
 * The store's clock minus this node's (ms), read halfway through a round trip: accurate to
 * half of it, a millisecond or two on a LAN. The embedded store shares the host's clock: 0.
 */
export async function measureStoreClockOffset(db: Db): Promise<number> {
  if (!isPostgres(db)) return 0;
  const before = Date.now();
  const row = await rawGet<{ now: number }>(db, sql`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now`, ["now"]);
  const after = Date.now();
  return Math.round(Number(row?.now) - (before + after) / 2);
}

async function syncClock(db: Db): Promise<number> {
  const offset = await measureStoreClockOffset(db);
  setStoreClockOffset(offset);
  return offset;
}

/**
 * Registers the node (or refreshes it after a restart) and renews `lastSeenAt` every
 * `intervalMs`; the returned stop marks it stopped, so the fleet sees it down at once. Each
 * beat measures the store's clock first: heartbeats and leases are in that clock.
 */
export async function startHeartbeat(db: Db, node: NodeInfo, intervalMs: number, logger: Logger): Promise<() => Promise<void>> {
  const clockOffsetMs = await syncClock(db);
  const now = storeNowMs();
  const row = {
    hostname: hostname(),
    labels: node.labels,
    version: VERSION,
    masterKeyFingerprint: node.masterKeyFingerprint,
    url: node.url,
    clockOffsetMs,
    startedAt: now,
    lastSeenAt: now,
    stoppedAt: null,
  };
  await db
    .insert(nodes)
    .values({ id: node.id, ...row })
    .onConflictDoUpdate({ target: nodes.id, set: row });
  const timer = setInterval(async () => {
    try {
      const offset = await syncClock(db);
      await db.update(nodes).set({ lastSeenAt: storeNowMs(), clockOffsetMs: offset, stoppedAt: null }).where(eq(nodes.id, node.id));
    } catch (err) {
      logger.warn("node heartbeat failed", { error: err });
    }
  }, intervalMs);
  return async () => {
    clearInterval(timer);
    await db.update(nodes).set({ stoppedAt: storeNowMs() }).where(eq(nodes.id, node.id));
  };
}
