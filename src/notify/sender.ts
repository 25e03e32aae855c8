import { and, asc, eq, lte, notInArray } from "drizzle-orm";
import type { Config } from "../config/schema.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import { notificationChannels, notificationDeliveries } from "../db/schema.ts";
import { nowMs } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import type { OutboundPolicy } from "../net/outbound-policy.ts";
import { openChannelSecret, type ChannelSettings } from "./channel-secret.ts";
import type { Outcome } from "./channel-types.ts";
import { CHANNEL_SENDERS } from "./channels.ts";
import type { ChannelType, NotifyEvent } from "./events.ts";
import { httpPost, SendError } from "./http-send.ts";
import { renderMessage } from "./message.ts";
import type { NotifyMetrics } from "./metrics.ts";
import { onOutboxWrite } from "./outbox.ts";

type DeliveryRow = typeof notificationDeliveries.$inferSelect;

export interface SenderDeps {
  db: Db;
  secrets: SecretBox;
  config: Config;
  logger: Logger;
  policy: OutboundPolicy | null;
  metrics?: NotifyMetrics;
}

export interface SenderOptions {
  /** First retry delay; doubles per attempt up to `maxRetryDelayMs`. */
  retryBaseMs: number;
  maxRetryDelayMs?: number;
  /** After this long since the event, a delivery that still fails is given up (`failed`). */
  giveUpAfterMs?: number;
  /** One attempt's limit (connect, send, answer). */
  timeoutMs?: number;
  /** Deliveries in flight at once, across channels; a channel has at most one. */
  maxInFlight?: number;
  /** The store is also looked at this often, not only when an event wakes the sender. */
  pollMs?: number;
}

const HOUR = 3_600_000;

/**
 * Sends pending deliveries: at least once, the same delivery id on every attempt, retried
 * with exponential backoff (or the receiver's Retry-After when longer) on network errors, 429 and 5xx
 * for 24 h, then `failed`; other answers are final at once. Each attempt has its own
 * timeout and each channel its own slot, so a slow or dead receiver delays only its own
 * deliveries, never another channel's or the runner (which only writes rows). State lives
 * in the store: what was pending when the daemon stopped is sent after it starts.
 */
export class NotificationSender {
  private readonly inFlight = new Map<string, { channelId: string; controller: AbortController; done: Promise<void> }>();
  private stopped = true;
  private waking = false;
  private wakeAgain = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly baseUrl: string;

  constructor(
    private readonly deps: SenderDeps,
    private readonly opts: SenderOptions,
  ) {
    this.baseUrl = (deps.config.http.publicUrl || `http://${deps.config.listen}`).replace(/\/+$/, "");
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.unsubscribe = onOutboxWrite(() => this.wakeInBackground());
    this.timer = setInterval(() => this.wakeInBackground(), this.opts.pollMs ?? 1000);
    await this.wake();
  }

  /**
   * A wake nobody awaits: a store gone for a moment (PostgreSQL) is logged and the next poll
   * tries again, never an unhandled rejection, which would end the daemon.
   */
  private wakeInBackground(): void {
    this.wake().catch((error) => this.deps.logger.warn("could not look for due notifications; the next poll retries", { error }));
  }

  /** Aborts attempts in flight (they stay pending and are sent again after the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    for (const f of this.inFlight.values()) f.controller.abort();
    const all = Promise.all([...this.inFlight.values()].map((f) => f.done));
    await Promise.race([all, new Promise((r) => setTimeout(r, this.timeoutMs()).unref?.())]);
  }

  private timeoutMs(): number {
    return this.opts.timeoutMs ?? 10_000;
  }

  /**
   * Starts every due delivery whose channel is free, up to the in-flight limit. One pass at a
   * time: a wake during a pass (its reads are awaited) asks for another pass instead of
   * reading the same due row and sending it twice.
   */
  async wake(): Promise<void> {
    if (this.waking) {
      this.wakeAgain = true;
      return;
    }
    this.waking = true;
    try {
      do {
        this.wakeAgain = false;
        await this.launchDue();
      } while (this.wakeAgain && !this.stopped);
    } finally {
      this.waking = false;
    }
  }

  private async launchDue(): Promise<void> {
    const max = this.opts.maxInFlight ?? 16;
    while (!this.stopped && this.inFlight.size < max) {
      const busy = [...new Set([...this.inFlight.values()].map((f) => f.channelId))];
      // In a transaction of its own: on SQLite (one shared connection) a plain read made while
      // another transaction is open, awaiting something, would see that one's uncommitted rows.
      const next = (
        await this.deps.db.transaction(async (tx) =>
          tx
            .select()
            .from(notificationDeliveries)
            .where(and(eq(notificationDeliveries.status, "pending"), lte(notificationDeliveries.nextAttemptAt, nowMs()), busy.length ? notInArray(notificationDeliveries.channelId, busy) : undefined))
            .orderBy(asc(notificationDeliveries.nextAttemptAt), asc(notificationDeliveries.id))
            .limit(1),
        )
      )[0];
      if (!next) return;
      this.launch(next);
    }
  }

  private launch(row: DeliveryRow): void {
    const controller = new AbortController();
    const entry = { channelId: row.channelId, controller, done: Promise.resolve() };
    this.inFlight.set(row.id, entry);
    entry.done = this.attempt(row, controller.signal)
      .catch((err) => this.deps.logger.error("notification attempt failed unexpectedly", { deliveryId: row.id, error: err }))
      .finally(() => {
        this.inFlight.delete(row.id);
        this.wakeInBackground();
      });
  }

  private async attempt(row: DeliveryRow, signal: AbortSignal): Promise<void> {
    const channel = (await this.deps.db.select().from(notificationChannels).where(eq(notificationChannels.id, row.channelId)))[0];
    if (!channel) return this.record(row, { ok: false, retry: false, error: "the channel was deleted" });
    let secret;
    try {
      secret = openChannelSecret(this.deps.secrets, channel);
    } catch {
      return this.record(row, { ok: false, retry: false, error: "the channel's secret does not decrypt with the loaded master key" });
    }
    const event = row.event as NotifyEvent;
    const { policy } = this.deps;
    const timeoutMs = this.timeoutMs();
    let outcome: Outcome;
    try {
      outcome = await CHANNEL_SENDERS[channel.type as ChannelType]({
        delivery: { id: row.id, orgId: row.orgId, event, occurredAt: row.occurredAt, data: row.data },
        settings: channel.settings as ChannelSettings,
        secret,
        message: renderMessage(event, row.data, this.baseUrl),
        post: (url, headers, body) => httpPost(url, { headers, body, timeoutMs, signal, policy }),
        smtp: this.deps.config.notify.smtp,
        timeoutMs,
      });
    } catch (err) {
      if (!(err instanceof SendError)) this.deps.logger.error("notification send failed unexpectedly", { deliveryId: row.id, error: err });
      outcome = err instanceof SendError ? { ok: false, retry: err.retry, error: err.message } : { ok: false, retry: true, error: "unexpected error (see the daemon log)" };
    }
    // Stopped mid-attempt: not an answer from the receiver; the row stays due for the next start.
    if (signal.aborted && this.stopped) return;
    await this.record(row, outcome);
  }

  private backoffMs(attempts: number): number {
    return Math.min(this.opts.retryBaseMs * 2 ** (attempts - 1), this.opts.maxRetryDelayMs ?? HOUR);
  }

  private async record(row: DeliveryRow, outcome: Outcome): Promise<void> {
    const now = nowMs();
    const attempts = row.attempts + 1;
    const log = this.deps.logger.child({ deliveryId: row.id, channelId: row.channelId, event: row.event, attempts });
    let set: Partial<DeliveryRow>;
    let result: "delivered" | "retry" | "failed";
    if (outcome.ok) {
      set = { status: "delivered", deliveredAt: now, nextAttemptAt: null, lastError: null };
      result = "delivered";
      log.info("notification delivered");
    } else {
      // Retry-After may lengthen the wait, never shorten it: `0` or a date in the past would
      // otherwise mean a tight loop against the receiver for the whole give-up period.
      const delay = Math.min(Math.max(outcome.retryAfterMs ?? 0, this.backoffMs(attempts)), this.opts.maxRetryDelayMs ?? HOUR);
      const giveUpAt = row.occurredAt + (this.opts.giveUpAfterMs ?? 24 * HOUR);
      if (outcome.retry && now + delay <= giveUpAt) {
        set = { nextAttemptAt: now + delay, lastError: outcome.error };
        result = "retry";
        log.warn("notification not delivered yet; will retry", { error: outcome.error, retryInMs: delay });
      } else {
        const error = outcome.retry ? `${outcome.error} (gave up: still failing ${Math.round((now - row.occurredAt) / HOUR)} h after the event)` : outcome.error;
        set = { status: "failed", nextAttemptAt: null, lastError: error };
        result = "failed";
        log.warn("notification delivery failed", { error });
      }
    }
    await this.deps.db
      .update(notificationDeliveries)
      .set({ ...set, attempts, lastAttemptAt: now })
      .where(and(eq(notificationDeliveries.id, row.id), eq(notificationDeliveries.status, "pending")));
    this.deps.metrics?.attempt(row.channelType, result);
  }
}
