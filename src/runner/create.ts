import { nodeIdOf } from "../fleet/node.ts";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { sqlitePathPolicy } from "../engines/sqlite-path.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import type { MetricsRegistry } from "../http/metrics.ts";
import type { Logger } from "../lib/logger.ts";
import { OutboundPolicy } from "../net/outbound-policy.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { applyRetention, sweepRetention } from "./apply-retention.ts";
import type { BackupDeps } from "./backup.ts";
import { RunnerMetrics } from "./metrics.ts";
import { registerDrillMetrics } from "./drill-metrics.ts";
import { restoreDirectoryPolicy } from "./pitr-restore.ts";
import { Runner } from "./queue.ts";
import { walFetchInvocation } from "./wal-fetch-command.ts";

export interface CreateRunnerInput {
  db: Db;
  config: Config;
  secrets: SecretBox;
  storage: StorageRegistry;
  logger: Logger;
  metrics?: MetricsRegistry;
  targetOf: BackupDeps["targetOf"];
  /** Where dump tools are looked up (the daemon's PATH by default). */
  toolPath?: string;
  /** The config file the daemon read (restore_command's `snapdb wal-fetch --config`), if any. */
  configFile?: string | null;
}

/** The daemon's runner: config limits, retention after each success, metrics. */
export function createRunner(input: CreateRunnerInput): Runner {
  const logger = input.logger.child({ component: "runner" });
  if (input.metrics) registerDrillMetrics(input.db, input.metrics);
  return new Runner(
    {
      db: input.db,
      secrets: input.secrets,
      storage: input.storage,
      targetOf: input.targetOf,
      sqlitePaths: sqlitePathPolicy(input.config),
      outbound: OutboundPolicy.fromConfig(input.config.network),
      dumpEnv: { toolPath: input.toolPath ?? process.env.PATH ?? "/usr/bin:/bin", scratchDir: join(input.config.dataDir, "tmp") },
      logger,
      metrics: input.metrics ? new RunnerMetrics(input.db, input.metrics) : undefined,
      restoreDirs: restoreDirectoryPolicy(input.config),
      walFetch: walFetchInvocation(input.config, input.configFile ?? null),
      afterSuccess: async (job) => void (await applyRetention(input.db, input.storage, logger, job)),
    },
    {
      maxConcurrent: input.config.runner.maxConcurrent,
      maxConcurrentPerOrg: input.config.runner.maxConcurrentPerOrg,
      maxTimeoutSeconds: input.config.runner.maxTimeoutSeconds,
      restoreTimeoutSeconds: input.config.runner.restoreTimeoutSeconds,
      partsConcurrency: input.config.runner.partsConcurrency,
      retryBaseSeconds: input.config.runner.retryBaseSeconds,
      nodeId: nodeIdOf(input.config.dataDir),
      leaseMs: input.config.runner.leaseSeconds * 1000,
      nodeLabels: input.config.node.labels,
    },
  );
}

/** Runs the retention sweep every `intervalMs` (hourly by default); returns a stop function. */
export function startRetentionSweep(input: Pick<CreateRunnerInput, "db" | "storage" | "logger">, intervalMs = 3_600_000): () => void {
  const logger = input.logger.child({ component: "retention" });
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const removed = await sweepRetention(input.db, input.storage, logger);
      if (removed) logger.info("retention sweep deleted backup files", { removed });
    } catch (error) {
      // The next sweep tries again; a rejection nobody awaits would end the daemon.
      logger.error("retention sweep failed", { error });
    } finally {
      running = false;
    }
  }, intervalMs);
  return () => clearInterval(timer);
}
