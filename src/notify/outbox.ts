import { rawAll } from "../db/raw.ts";
import { and, lt, ne, sql } from "drizzle-orm";
import { afterCommit, type Db, type Tx } from "../db/client.ts";
import { notificationDeliveries } from "../db/schema.ts";
import { newId } from "../lib/ids.ts";
import type { NotifyEvent } from "./events.ts";

/**
 * The outbox: deliveries are rows written by the transaction that records the event (a job's
 * end, a stale check), so an event and its deliveries commit or vanish together. The sender
 * (sender.ts) sends whatever is pending, also after a restart.
 */
export interface OutboxEvent {
  orgId: string;
  event: NotifyEvent;
  occurredAt: number;
  data: Record<string, unknown>;
}

export interface MatchedRule {
  id: string;
  channelId: string;
  channelType: string;
  policyId: string | null;
}

/** Scope of an event: the data sources it concerns and the policy (if any) it ran under. */
export interface EventScope {
  dataSourceIds: string[];
  policyId: string | null;
}

const listeners = new Set<() => void>();

/** Called after a transaction that wrote deliveries (the sender wakes instead of waiting for its poll). */
export function onOutboxWrite(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Wakes the sender once the transaction that wrote a delivery has committed, not before: on
 * SQLite the sender shares the writer's connection and would otherwise read (and send) a row
 * that may still roll back. The wake is only a shortcut; the sender's poll finds the row anyway.
 */
function signal(tx: Tx): void {
  afterCommit(tx, () => {
    for (const l of listeners) l();
  });
}

/**
 * `events` is a JSON array of event names (a closed set, no `%` or `_` in them): matching the
 * quoted name inside it reads the same on SQLite and PostgreSQL, where the JSON is stored as text.
 */
export const eventPattern = (event: string) => `%${JSON.stringify(event)}%`;

/** The org's rules that subscribe to `event` and whose source/policy (if set) is the event's. */
export async function matchingRules(tx: Tx, orgId: string, event: NotifyEvent, scope: EventScope): Promise<MatchedRule[]> {
  const sources = scope.dataSourceIds.length ? sql`r.data_source_id IN ${scope.dataSourceIds}` : sql`1 = 0`;
  return await rawAll<MatchedRule>(
    tx,
    sql`
    SELECT r.id AS id, r.channel_id AS "channelId", c.type AS "channelType", r.policy_id AS "policyId"
    FROM notification_rules r JOIN notification_channels c ON c.id = r.channel_id
    WHERE r.org_id = ${orgId}
      AND r.events LIKE ${eventPattern(event)}
      AND (r.data_source_id IS NULL OR ${sources})
      AND (r.policy_id IS NULL OR r.policy_id = ${scope.policyId})
    ORDER BY r.id`,
  );
}

/** One pending delivery of `event` to a channel, due now. Returns its id (`ndl_…`). */
export async function enqueueDelivery(tx: Tx, event: OutboxEvent, target: { channelId: string; channelType: string; ruleId: string | null }): Promise<string> {
  const id = newId("ndl");
  await tx.insert(notificationDeliveries).values({
    id,
    orgId: event.orgId,
    channelId: target.channelId,
    channelType: target.channelType,
    ruleId: target.ruleId,
    event: event.event,
    occurredAt: event.occurredAt,
    data: event.data,
    status: "pending",
    attempts: 0,
    nextAttemptAt: event.occurredAt,
  });
  signal(tx);
  return id;
}

/** One delivery per matching rule (two rules to one channel: two deliveries, as configured). */
export async function enqueueForRules(tx: Tx, event: OutboxEvent, rules: MatchedRule[]): Promise<string[]> {
  const ids: string[] = [];
  for (const r of rules) ids.push(await enqueueDelivery(tx, event, { channelId: r.channelId, channelType: r.channelType, ruleId: r.id }));
  return ids;
}

/** Finished deliveries older than `keepMs` leave the log (pending ones stay until they end). */
export async function pruneDeliveries(db: Db, now: number, keepMs = 30 * 86_400_000): Promise<number> {
  return (
    await db
      .delete(notificationDeliveries)
      .where(and(ne(notificationDeliveries.status, "pending"), lt(notificationDeliveries.occurredAt, now - keepMs)))
      .returning({ id: notificationDeliveries.id })
  ).length;
}
