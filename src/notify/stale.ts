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
 *
 * A source whose attachments were all detached or disabled is watched too (nothing else
 * would ever report that its backups stopped): when it has a success that came from an
 * attachment (the job carries its id) and no enabled attachment is left in the rule's
 * scope, the cadence is that of the policy of its last successful job, and the clock starts
 * at that success. If that policy was deleted as well, the threshold without a rule
 * `staleAfterSeconds` is ORPHAN_FALLBACK_MS. A source only ever backed up on demand with a
 * policy it was not attached to has no schedule to miss and is not watched.
 *
 * One `backup.stale` per (rule, source) until a success (record.ts sends `backup.recovered`
 * and clears the mark); the mark is in the store, so a restart neither repeats nor forgets.
 */
interface Rule extends MatchedRule {
  orgId: string;
  events: string;
  dataSourceId: string | null;
  staleAfterSeconds: number | null;
}

/** How a watched source is scheduled: by an enabled attachment, or no longer (all detached or disabled). */
type Attachment = "enabled" | "disabled" | "detached";

interface Watched {
  dataSourceId: string;
  dataSourceName: string;
  policyId: string | null;
  policyName: string | null;
  /** The expected gap between two backups; null when the policy is gone. */
  intervalMs: number | null;
  timeoutSeconds: number;
  /** The clock does not start before this (the attachment's creation; 0 for an orphan). */
  notBefore: number;
  attachment: Attachment;
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

/** Twice a daily schedule: the threshold of a source left without attachment and whose last policy is deleted. */
export const ORPHAN_FALLBACK_MS = 2 * 86_400_000;

/** The interval of a schedule: the gap between its next two runs after `now`. */
export function scheduleIntervalMs(cron: string, timezone: string, now: number): number | null {
  const first = nextRunAfter(cron, timezone, now);
  const second = first === null ? null : nextRunAfter(cron, timezone, first);
  return first === null || second === null ? null : second - first;
}

async function rulesWatchingStaleness(db: Db | Tx): Promise<Rule[]> {
  return await rawAll<Rule>(
    db,
    sql`
    SELECT r.id AS id, r.org_id AS "orgId", r.channel_id AS "channelId", c.type AS "channelType", r.events AS events,
           r.data_source_id AS "dataSourceId", r.policy_id AS "policyId", r.stale_after_seconds AS "staleAfterSeconds"
    FROM notification_rules r JOIN notification_channels c ON c.id = r.channel_id
    WHERE r.events LIKE ${eventPattern("backup.stale")} OR r.events LIKE ${eventPattern("backup.recovered")}
    ORDER BY r.id`,
    ["staleAfterSeconds"],
  );
}

/** Enabled attachments in the rule's scope, with their policies' schedules. */
async function candidates(db: Db | Tx, rule: Rule): Promise<Candidate[]> {
  return await rawAll<Candidate>(
    db,
    sql`
    SELECT a.data_source_id AS "dataSourceId", d.name AS "dataSourceName", a.created_at AS "attachmentCreatedAt", p.id AS "policyId",
           p.name AS "policyName", p.schedule_cron AS "scheduleCron", p.timezone AS timezone, p.timeout_seconds AS "timeoutSeconds"
    FROM attachments a JOIN backup_policies p ON p.id = a.policy_id JOIN data_sources d ON d.id = a.data_source_id
    WHERE a.org_id = ${rule.orgId} AND a.enabled = TRUE
      AND (CAST(${rule.dataSourceId} AS TEXT) IS NULL OR a.data_source_id = ${rule.dataSourceId})
      AND (CAST(${rule.policyId} AS TEXT) IS NULL OR a.policy_id = ${rule.policyId})
    ORDER BY a.data_source_id, a.id`,
    ["attachmentCreatedAt", "timeoutSeconds"],
  );
}

/** Per data source: the attachment whose policy runs most often (and its interval). */
function mostFrequent(list: Candidate[], now: number): Watched[] {
  const out = new Map<string, Watched>();
  for (const c of list) {
    const intervalMs = scheduleIntervalMs(c.scheduleCron, c.timezone, now);
    if (intervalMs === null) continue;
    const best = out.get(c.dataSourceId);
    if (best && best.intervalMs !== null && best.intervalMs <= intervalMs) continue;
    out.set(c.dataSourceId, {
      dataSourceId: c.dataSourceId,
      dataSourceName: c.dataSourceName,
      policyId: c.policyId,
      policyName: c.policyName,
      intervalMs,
      timeoutSeconds: c.timeoutSeconds,
      notBefore: c.attachmentCreatedAt,
      attachment: "enabled",
    });
  }
  return [...out.values()];
}

/**
 * Sources in the rule's scope with a success that came from an attachment, and no enabled
 * attachment left in that scope; each with the schedule of its last successful job's policy.
 */
async function orphans(db: Db | Tx, rule: Rule, now: number): Promise<Watched[]> {
  const rows = await rawAll<{ dataSourceId: string; dataSourceName: string; anyAttachment: number }>(
    db,
    sql`
    SELECT j.data_source_id AS "dataSourceId", d.name AS "dataSourceName",
           (SELECT count(*) FROM attachments a WHERE a.data_source_id = j.data_source_id
              AND (CAST(${rule.policyId} AS TEXT) IS NULL OR a.policy_id = ${rule.policyId})) AS "anyAttachment"
    FROM backup_jobs j JOIN data_sources d ON d.id = j.data_source_id
    WHERE j.org_id = ${rule.orgId} AND j.status = 'succeeded' AND j.attachment_id IS NOT NULL
      AND (CAST(${rule.dataSourceId} AS TEXT) IS NULL OR j.data_source_id = ${rule.dataSourceId})
      AND (CAST(${rule.policyId} AS TEXT) IS NULL OR j.policy_id = ${rule.policyId})
      AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.data_source_id = j.data_source_id AND a.enabled = TRUE
              AND (CAST(${rule.policyId} AS TEXT) IS NULL OR a.policy_id = ${rule.policyId}))
    GROUP BY j.data_source_id, d.name
    ORDER BY j.data_source_id`,
    ["anyAttachment"],
  );
  const out: Watched[] = [];
  for (const row of rows) {
    const [last] = await rawAll<{ policyId: string | null; policyName: string | null; scheduleCron: string | null; timezone: string | null; timeoutSeconds: number | null }>(
      db,
      sql`
      SELECT j.policy_id AS "policyId", p.name AS "policyName", p.schedule_cron AS "scheduleCron", p.timezone AS timezone, p.timeout_seconds AS "timeoutSeconds"
      FROM backup_jobs j LEFT JOIN backup_policies p ON p.id = j.policy_id
      WHERE j.data_source_id = ${row.dataSourceId} AND j.status = 'succeeded'
        AND (CAST(${rule.policyId} AS TEXT) IS NULL OR j.policy_id = ${rule.policyId})
      ORDER BY j.finished_at DESC, j.id DESC LIMIT 1`,
      ["timeoutSeconds"],
    );
    if (!last) continue;
    const known = last.scheduleCron !== null && last.timezone !== null;
    out.push({
      dataSourceId: row.dataSourceId,
      dataSourceName: row.dataSourceName,
      policyId: last.policyId,
      policyName: last.policyName,
      intervalMs: known ? scheduleIntervalMs(last.scheduleCron!, last.timezone!, now) : null,
      timeoutSeconds: last.timeoutSeconds ?? 0,
      notBefore: 0,
      attachment: row.anyAttachment > 0 ? "disabled" : "detached",
    });
  }
  return out;
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

function thresholdOf(rule: Rule, w: Watched): number {
  if (rule.staleAfterSeconds !== null) return rule.staleAfterSeconds * 1000;
  return w.intervalMs === null ? ORPHAN_FALLBACK_MS : 2 * w.intervalMs + w.timeoutSeconds * 1000;
}

/** One pass over every rule that watches staleness; returns the number of `backup.stale` deliveries written. */
export async function checkStaleness(db: Db, now = nowMs()): Promise<number> {
  let sent = 0;
  for (const rule of await rulesWatchingStaleness(db)) {
    const announces = (JSON.parse(rule.events) as string[]).includes("backup.stale");
    const watched = [...mostFrequent(await candidates(db, rule), now), ...(await orphans(db, rule, now))];
    for (const w of watched) {
      const thresholdMs = thresholdOf(rule, w);
      const last = await lastSuccess(db, w.dataSourceId, rule.policyId);
      const since = Math.max(last ?? 0, w.notBefore);
      if (now - since <= thresholdMs) continue;
      await db.transaction(async (tx) => {
        // INSERT OR IGNORE on the (rule, source) key: the mark and the delivery are written once.
        const marked = await tx
          .insert(notificationStaleState)
          .values({ ruleId: rule.id, dataSourceId: w.dataSourceId, orgId: rule.orgId, staleSince: since + thresholdMs, notifiedAt: now })
          .onConflictDoNothing()
          .returning({ ruleId: notificationStaleState.ruleId });
        if (!marked.length || !announces) return;
        const data = {
          dataSourceId: w.dataSourceId,
          dataSourceName: w.dataSourceName,
          policyId: w.policyId,
          policyName: w.policyName,
          attachment: w.attachment,
          lastSuccessAt: last === null ? null : isoOf(last),
          expectedEverySeconds: w.intervalMs === null ? null : Math.round(w.intervalMs / 1000),
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
