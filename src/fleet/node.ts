import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { nodes } from "../db/schema.ts";
import { nowMs } from "../lib/clock.ts";
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

/** The master key's fingerprint: every node of a fleet must hold the same key (doctor compares them). */
export const keyFingerprint = (master: Uint8Array) => createHash("sha256").update(master).digest("hex").slice(0, 16);

export interface NodeInfo {
  id: string;
  labels: Record<string, string>;
  masterKeyFingerprint: string;
}

/**
 * Registers the node (or refreshes it after a restart) and renews `lastSeenAt` every
 * `intervalMs`; the returned stop marks it stopped, so the fleet sees it down at once.
 */
export async function startHeartbeat(db: Db, node: NodeInfo, intervalMs: number, logger: Logger): Promise<() => Promise<void>> {
  const now = nowMs();
  const row = { hostname: hostname(), labels: node.labels, version: VERSION, masterKeyFingerprint: node.masterKeyFingerprint, startedAt: now, lastSeenAt: now, stoppedAt: null };
  await db.insert(nodes).values({ id: node.id, ...row }).onConflictDoUpdate({ target: nodes.id, set: row });
  const timer = setInterval(async () => {
    try {
      await db.update(nodes).set({ lastSeenAt: nowMs(), stoppedAt: null }).where(eq(nodes.id, node.id));
    } catch (err) {
      logger.warn("node heartbeat failed", { error: err });
    }
  }, intervalMs);
  return async () => {
    clearInterval(timer);
    await db.update(nodes).set({ stoppedAt: nowMs() }).where(eq(nodes.id, node.id));
  };
}
