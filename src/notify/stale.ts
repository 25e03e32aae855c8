import { rawAll } from "../db/raw.ts";
import { eq, sql } from "drizzle-orm";
import type { Db, Tx } from "../db/client.ts";
import { notificationStaleState } from "../db/schema.ts";
import { isoOf, nowMs } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { nextRunAfter } from "../scheduler/cron.ts";
import { enqueueForRules, eventPattern, pruneDeliveries, type MatchedRule } from "./outbox.ts";

/**
 * `backup.stale`: a data source whose backups stopped. Its expected cadence comes from its
 * enabled attachments: the most frequent policy's interval (the gap between its next two
 * runs) twice, plus that policy's timeout; a rule's `staleAfterSeconds` overrides it. The
 * clock starts at the last success, or at that attachment's creation when it is newer.
 * One `backup.stale` per (rule, source) until a success (record.ts sends `backup.recovered`
 * and clears the mark); the mark is in the store, so a restart neither repeats nor forgets.
 */
interface Rule extends MatchedRule {
  orgId: string;
  events: string;
  dataSourceId: string | null;
  staleAfterSeconds: number | null;
}

interface Candidate {
  dataSourceId: string;
  dataSourceName: string;
  attachmentCreatedAt: number;
  policyId: string;
  policyName: string;
  scheduleCron: string;
  timezone: string;
  timeoutSeconds: number;
}

/** The interval of a schedule: the gap between its next two runs after `now`. */
export function scheduleIntervalMs(cron: string, timezone: string, now: number): number | null {
  const first = nextRunAfter(cron, timezone, now);
  const second = first === null ? null : nextRunAfter(cron, timezone, first);
  return first === null || second === null ? null : second - first;
}

async function rulesWatchingStaleness(db: Db | Tx): Promise<Rule[]> {
  return await rawAll<Rule>(db, sql`
    SELECT r.id AS id, r.org_id AS "orgId", r.channel_id AS "channelId", c.type AS "channelType", r.events AS events,
           r.data_source_id AS "dataSourceId", r.policy_id AS "policyId", r.stale_after_seconds AS "staleAfterSeconds"
    FROM notification_rules r JOIN notification_channels c ON c.id = r.channel_id
    WHERE r.events LIKE ${eventPattern("backup.stale")} OR r.events LIKE ${eventPattern("backup.recovered")}
    ORDER BY r.id`);
}

/** Enabled attachments in the rule's scope, with their policies' schedules. */
async function candidates(db: Db | Tx, rule: Rule): Promise<Candidate[]> {
  return await rawAll<Candidate>(db, sql`
    SELECT a.data_source_id AS "dataSourceId", d.name AS "dataSourceName", a.created_at AS "attachmentCreatedAt", p.id AS "policyId",
           p.name AS "policyName", p.schedule_cron AS "scheduleCron", p.timezone AS timezone, p.timeout_seconds AS "timeoutSeconds"
    FROM attachments a JOIN backup_policies p ON p.id = a.policy_id JOIN data_sources d ON d.id = a.data_source_id
    WHERE a.org_id = ${rule.orgId} AND a.enabled = TRUE
      AND (CAST(${rule.dataSourceId} AS TEXT) IS NULL OR a.data_source_id = ${rule.dataSourceId})
      AND (CAST(${rule.policyId} AS TEXT) IS NULL OR a.policy_id = ${rule.policyId})
    ORDER BY a.data_source_id, a.id`);
}

async function lastSuccess(db: Db | Tx, dataSourceId: string, policyId: string | null): Promise<number | null> {
  const [row] = await rawAll<{ at: number | null }>(
    db,
    sql`SELECT max(finished_at) AS at FROM backup_jobs
        WHERE data_source_id = ${dataSourceId} AND status = 'succeeded' AND (CAST(${policyId} AS TEXT) IS NULL OR policy_id = ${policyId})`,
    ["at"],
  );
  return row?.at ?? null;
}

/** Per data source: the attachment whose policy runs most often (and its interval). */
function mostFrequent(list: Candidate[], now: number): Map<string, { c: Candidate; intervalMs: number }> {
  const out = new Map<string, { c: Candidate; intervalMs: number }>();
  for (const c of list) {
    const intervalMs = scheduleIntervalMs(c.scheduleCron, c.timezone, now);
    if (intervalMs === null) continue;
    const best = out.get(c.dataSourceId);
    if (!best || intervalMs < best.intervalMs) out.set(c.dataSourceId, { c, intervalMs });
  }
  return out;
}

/** One pass over every rule that watches staleness; returns the number of `backup.stale` deliveries written. */
export async function checkStaleness(db: Db, now = nowMs()): Promise<number> {
  let sent = 0;
  for (const rule of (await rulesWatchingStaleness(db))) {
    const announces = (JSON.parse(rule.events) as string[]).includes("backup.stale");
    for (const { c, intervalMs } of mostFrequent((await candidates(db, rule)), now).values()) {
      const thresholdMs = rule.staleAfterSeconds !== null ? rule.staleAfterSeconds * 1000 : 2 * intervalMs + c.timeoutSeconds * 1000;
      const last = await lastSuccess(db, c.dataSourceId, rule.policyId);
      const since = Math.max(last ?? 0, c.attachmentCreatedAt);
      if (now - since <= thresholdMs) continue;
      await db.transaction(async (tx) => {
        // INSERT OR IGNORE on the (rule, source) key: the mark and the delivery are written once.
        const marked = await tx
          .insert(notificationStaleState)
          .values({ ruleId: rule.id, dataSourceId: c.dataSourceId, orgId: rule.orgId, staleSince: since + thresholdMs, notifiedAt: now })
          .onConflictDoNothing()
          .returning({ ruleId: notificationStaleState.ruleId })
          ;
        if (!marked.length || !announces) return;
        const data = {
          dataSourceId: c.dataSourceId,
          dataSourceName: c.dataSourceName,
          policyId: c.policyId,
          policyName: c.policyName,
          lastSuccessAt: last === null ? null : isoOf(last),
          expectedEverySeconds: Math.round(intervalMs / 1000),
          staleAfterSeconds: Math.round(thresholdMs / 1000),
          staleSince: isoOf(since + thresholdMs),
        };
        await enqueueForRules(tx, { orgId: rule.orgId, event: "backup.stale", occurredAt: now, data }, [rule]);
        sent++;
      });
    }
  }
  return sent;
}

/**
 * Runs the check at start (what went stale while the daemon was down) and every
 * `intervalMs`; the same timer drops finished deliveries older than 30 days.
 */
export async function startStaleChecks(db: Db, logger: Logger, intervalMs: number): Promise<() => void> {
  const log = logger.child({ component: "stale-check" });
  const run = async () => {
    try {
      const sent = await checkStaleness(db);
      if (sent) log.info("data sources without a recent successful backup", { notified: sent });
      await pruneDeliveries(db, nowMs());
    } catch (err) {
      log.error("stale check failed", { error: err });
    }
  };
  await run();
  const timer = setInterval(run, intervalMs);
  return () => clearInterval(timer);
}

/** Forgets a rule's marks (its scope or threshold changed: staleness is judged afresh). */
export async function clearStaleMarks(tx: Tx, ruleId: string): Promise<void> {
  await tx.delete(notificationStaleState).where(eq(notificationStaleState.ruleId, ruleId));
}
