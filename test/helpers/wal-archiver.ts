import { SecretBox } from "../../src/crypto/secrets.ts";
import type { MetricsRegistry } from "../../src/http/metrics.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { targetOf } from "../../src/modules/data-sources/credentials.ts";
import { createWalArchiver, type WalArchiver } from "../../src/runner/wal-archiver.ts";
import type { Harness } from "./harness.ts";

/**
 * The WAL archiver the daemon's leader runs, on a test harness's store, storage and keys,
 * with short intervals so a test sees segments archived within a second; its log lines go to
 * `log`. Started by the caller.
 */
export function harnessWalArchiver(h: Harness, opts: { log: string[]; metrics?: MetricsRegistry }): WalArchiver {
  const secrets = new SecretBox(h.master);
  return createWalArchiver({
    db: h.store.db,
    config: h.config,
    secrets,
    storage: h.storage,
    logger: createLogger("debug", {}, (line) => opts.log.push(line)),
    metrics: opts.metrics,
    targetOf: (row) => targetOf(row, secrets),
    intervals: { syncIntervalMs: 200, pollIntervalMs: 100, statusIntervalMs: 300 },
  });
}
