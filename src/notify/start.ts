import type { Config } from "../config/schema.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import type { MetricsRegistry } from "../http/metrics.ts";
import type { Logger } from "../lib/logger.ts";
import { OutboundPolicy } from "../net/outbound-policy.ts";
import { NotifyMetrics } from "./metrics.ts";
import { NotificationSender } from "./sender.ts";
import { startStaleChecks } from "./stale.ts";

export interface Notifications {
  sender: NotificationSender;
  /** Starts the sender (pending deliveries of before a restart go first) and the stale checks. */
  start(): void;
  stop(): Promise<void>;
}

/** The daemon's notification machinery, built from config; nothing runs before `start()`. */
export function createNotifications(input: { db: Db; config: Config; secrets: SecretBox; logger: Logger; metrics?: MetricsRegistry }): Notifications {
  const logger = input.logger.child({ component: "notify" });
  const sender = new NotificationSender(
    {
      db: input.db,
      secrets: input.secrets,
      config: input.config,
      logger,
      policy: OutboundPolicy.fromConfig(input.config.network),
      metrics: input.metrics ? new NotifyMetrics(input.db, input.metrics) : undefined,
    },
    { retryBaseMs: input.config.notify.retryBaseSeconds * 1000 },
  );
  let stopStale: (() => void) | null = null;
  return {
    sender,
    async start() {
      await sender.start();
      stopStale = await startStaleChecks(input.db, logger, input.config.notify.staleCheckSeconds * 1000);
    },
    async stop() {
      stopStale?.();
      await sender.stop();
    },
  };
}
