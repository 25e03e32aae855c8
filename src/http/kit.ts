import type { Config } from "../config/schema.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import type { Logger } from "../lib/logger.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import type { ScheduleSync } from "../scheduler/types.ts";
import type { authPlugin } from "./auth.ts";
import type { Cursors } from "./pagination.ts";

/** What every module's routes receive from app.ts. */
export interface HttpKit {
  db: Db;
  config: Config;
  logger: Logger;
  cursors: Cursors;
  secrets: SecretBox;
  auth: ReturnType<typeof authPlugin>;
  /** Drivers for destination rows (verify, downloads; the runner uses the same registry). */
  storage: StorageRegistry;
  /** Services tell the scheduler about attachment/policy changes after they commit. */
  scheduler: ScheduleSync;
}
