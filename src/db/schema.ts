/**
 * The tables services query, for the store this process runs on. Both engines' tables have
 * the same names, columns and types as seen from JavaScript (schema-sqlite.ts, schema-pg.ts;
 * a test fails if they drift), so services are written once against the SQLite typing and
 * `useStoreDialect("postgres")`, called once before the store opens, swaps the bindings to
 * the PostgreSQL tables. One process serves one store.
 */
import * as pg from "./schema-pg.ts";
import * as lite from "./schema-sqlite.ts";

export type { StoredPart } from "./schema-sqlite.ts";

export let auditEvents = lite.auditEvents;
export let dataSources = lite.dataSources;
export let storageDestinations = lite.storageDestinations;
export let backupPolicies = lite.backupPolicies;
export let attachments = lite.attachments;
export let backupJobs = lite.backupJobs;
export let orgKeys = lite.orgKeys;
export let restores = lite.restores;
export let notificationChannels = lite.notificationChannels;
export let notificationRules = lite.notificationRules;
export let notificationDeliveries = lite.notificationDeliveries;
export let notificationStaleState = lite.notificationStaleState;
export let restorePlans = lite.restorePlans;
export let walSegments = lite.walSegments;
export let nodes = lite.nodes;

export type StoreDialect = "sqlite" | "postgres";
let current: StoreDialect = "sqlite";

export const storeDialect = (): StoreDialect => current;

/** The tables of `dialect` from now on. Typed as the SQLite ones: their JavaScript shapes are equal. */
export function useStoreDialect(dialect: StoreDialect): void {
  current = dialect;
  const t = (dialect === "postgres" ? pg : lite) as unknown as typeof lite;
  auditEvents = t.auditEvents;
  dataSources = t.dataSources;
  storageDestinations = t.storageDestinations;
  backupPolicies = t.backupPolicies;
  attachments = t.attachments;
  backupJobs = t.backupJobs;
  orgKeys = t.orgKeys;
  restores = t.restores;
  notificationChannels = t.notificationChannels;
  notificationRules = t.notificationRules;
  notificationDeliveries = t.notificationDeliveries;
  notificationStaleState = t.notificationStaleState;
  restorePlans = t.restorePlans;
  walSegments = t.walSegments;
  nodes = t.nodes;
}
