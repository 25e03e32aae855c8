import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { JobErrorCode, RestoreErrorCode } from "../lib/failure-codes.ts";

/**
 * The metadata store's tables. Ids are prefixed ULIDs (src/lib/ids.ts), so ordering by id
 * is ordering by creation time; every list index starts with org_id and ends with id to
 * serve keyset pages newest first.
 */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    occurredAt: integer("occurred_at").notNull(), // ms since epoch
    actorType: text("actor_type", { enum: ["user", "system"] }).notNull(),
    actorId: text("actor_id").notNull(),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id").notNull(),
    requestId: text("request_id"),
    ip: text("ip"),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  },
  (t) => [
    index("audit_events_org_id_idx").on(t.orgId, t.id),
    index("audit_events_org_action_idx").on(t.orgId, t.action, t.id),
    index("audit_events_org_target_idx").on(t.orgId, t.targetId, t.id),
    index("audit_events_org_actor_idx").on(t.orgId, t.actorId, t.id),
  ],
);

/**
 * One file of a whole-server backup job. `kind: "globals"` holds the server's roles/users and
 * grants; each database is its own `kind: "database"` file. A database that disappeared while
 * the job ran is kept as a skipped part (`objectKey` null, `note` says why). `charset` and
 * `collation` (MySQL/MariaDB) are what a restore creates the database with.
 */
export interface StoredPart {
  name: string;
  kind: "globals" | "database";
  objectKey: string | null;
  sizeBytes: number | null;
  storedBytes: number | null;
  sha256: string | null;
  note?: string;
  charset?: string | null;
  collation?: string | null;
}

const createdAt = () => integer("created_at").notNull();
const updatedAt = () => integer("updated_at").notNull();

/** A database snapdb backs up. Credentials are AES-256-GCM ciphertext under the master key. */
export const dataSources = sqliteTable(
  "data_sources",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    name: text("name").notNull(),
    engine: text("engine", { enum: ["postgres", "mysql", "mariadb", "sqlite"] }).notNull(),
    host: text("host"),
    port: integer("port"),
    database: text("database"),
    path: text("path"),
    options: text("options", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    /** `database: "*"` (the whole server): names or globs of databases not backed up. */
    excludeDatabases: text("exclude_databases", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    credentialsUsername: text("credentials_username"),
    /** base64 of nonce ‖ ciphertext ‖ tag, see src/crypto/secrets.ts */
    credentialsCiphertext: text("credentials_ciphertext"),
    credentialsKeyId: text("credentials_key_id"),
    credentialsUpdatedAt: integer("credentials_updated_at"),
    lastVerify: text("last_verify", { mode: "json" }).$type<Record<string, unknown> | null>(),
    /** Fleet: its jobs run only on nodes carrying these labels (a SQLite file, a local socket live on one host). */
    runOn: text("run_on", { mode: "json" }).$type<{ labels: Record<string, string> } | null>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("data_sources_org_name_uq").on(t.orgId, t.name), index("data_sources_org_id_idx").on(t.orgId, t.id)],
);

/** Where backups are stored: the org's managed destination, a bring-your-own S3 bucket, or a local directory. */
export const storageDestinations = sqliteTable(
  "storage_destinations",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    kind: text("kind", { enum: ["managed", "s3", "local"] }).notNull(),
    name: text("name").notNull(),
    /** Non-secret settings of the kind (endpoint, region, bucket, prefix, path, auth type, key id, role ARN…). */
    settings: text("settings", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    secretCiphertext: text("secret_ciphertext"),
    secretKeyId: text("secret_key_id"),
    lastVerify: text("last_verify", { mode: "json" }).$type<Record<string, unknown> | null>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("storage_destinations_org_id_idx").on(t.orgId, t.id),
    uniqueIndex("storage_destinations_org_name_uq").on(t.orgId, t.name),
    // One managed destination per org: `ensure` relies on this to be idempotent under races.
    uniqueIndex("storage_destinations_managed_uq").on(t.orgId).where(sql`kind = 'managed'`),
  ],
);

/** A reusable schedule + retention + destination + compression + encryption. */
export const backupPolicies = sqliteTable(
  "backup_policies",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    name: text("name").notNull(),
    scheduleCron: text("schedule_cron").notNull(),
    timezone: text("timezone").notNull(),
    destinationId: text("destination_id")
      .notNull()
      .references(() => storageDestinations.id, { onDelete: "restrict" }),
    retention: text("retention", { mode: "json" }).$type<Record<string, number | null>>().notNull(),
    compression: text("compression", { mode: "json" }).$type<{ algorithm: string; level: number }>().notNull(),
    encryption: text("encryption", { mode: "json" }).$type<{ enabled: boolean; recipients: string[] }>().notNull(),
    timeoutSeconds: integer("timeout_seconds").notNull(),
    retries: integer("retries").notNull(),
    /** Record per-table row counts in the dump's own snapshot (restore drills compare against them). */
    fingerprint: integer("fingerprint", { mode: "boolean" }).notNull().default(false),
    /** `logical` (a dump tool) or `physical` (pg_basebackup + continuous WAL archiving, PostgreSQL only). */
    method: text("method", { enum: ["logical", "physical"] })
      .notNull()
      .default("logical"),
    /** Physical only: pg_basebackup --checkpoint=fast (an immediate checkpoint instead of a spread one). */
    fastCheckpoint: integer("fast_checkpoint", { mode: "boolean" }).notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("backup_policies_org_name_uq").on(t.orgId, t.name), index("backup_policies_org_id_idx").on(t.orgId, t.id)],
);

/** A policy on a data source. The unique index makes "the same policy twice" a 409 even under races. */
export const attachments = sqliteTable(
  "attachments",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    dataSourceId: text("data_source_id")
      .notNull()
      .references(() => dataSources.id, { onDelete: "restrict" }),
    policyId: text("policy_id")
      .notNull()
      .references(() => backupPolicies.id, { onDelete: "restrict" }),
    enabled: integer("enabled", { mode: "boolean" }).notNull(),
    /** The last scheduled minute acted on (ms): a missed run is detected from it at start. */
    lastScheduledAt: integer("last_scheduled_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("attachments_policy_source_uq").on(t.policyId, t.dataSourceId), index("attachments_org_id_idx").on(t.orgId, t.id), index("attachments_source_idx").on(t.dataSourceId)],
);

/**
 * One backup run. Jobs are history: they keep policy/attachment/destination ids after
 * those are detached or deleted, so only the data source is a foreign key.
 */
export const backupJobs = sqliteTable(
  "backup_jobs",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    dataSourceId: text("data_source_id")
      .notNull()
      .references(() => dataSources.id, { onDelete: "restrict" }),
    policyId: text("policy_id"),
    attachmentId: text("attachment_id"),
    destinationId: text("destination_id"),
    trigger: text("trigger", { enum: ["schedule", "manual"] }).notNull(),
    status: text("status", { enum: ["queued", "running", "succeeded", "failed", "canceled"] }).notNull(),
    attempt: integer("attempt").notNull().default(1),
    queuedAt: integer("queued_at").notNull(),
    /** Not picked up before this time (retry backoff), ms. */
    notBefore: integer("not_before"),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
    bytesIn: integer("bytes_in").notNull().default(0),
    bytesStored: integer("bytes_stored").notNull().default(0),
    sizeBytes: integer("size_bytes"),
    storedBytes: integer("stored_bytes"),
    sha256: text("sha256"),
    objectKey: text("object_key"),
    format: text("format", { mode: "json" }).$type<Record<string, unknown> | null>(),
    error: text("error", { mode: "json" }).$type<{ code: JobErrorCode; message: string } | null>(),
    fileDeletedAt: integer("file_deleted_at"),
    /** A whole-server backup's files (one per database, one for the globals); null for one-file jobs. */
    parts: text("parts", { mode: "json" }).$type<StoredPart[] | null>(),
    /** Row counts per table taken in the dump's snapshot (policy `fingerprint: true`); takenAt in ms. */
    fingerprint: text("fingerprint", { mode: "json" }).$type<{ tables: Record<string, number>; takenAt: number } | null>(),
    /** A physical base backup's WAL range, timeline and label (runner/physical-backup.ts); null for dumps. */
    physical: text("physical", { mode: "json" }).$type<Record<string, unknown> | null>(),
    /** The node that claimed it (fleet) and until when its claim holds unless renewed, ms. */
    nodeId: text("node_id"),
    leaseUntil: integer("lease_until"),
    /** A cancel asked of a node that is not running it: the running node sees it at its next progress write. */
    cancelRequestedAt: integer("cancel_requested_at"),
    /** A scheduled run's minute (ms): with the attachment, unique, so a tick fires once whatever fires it. */
    scheduledFor: integer("scheduled_for"),
  },
  (t) => [
    index("backup_jobs_org_id_idx").on(t.orgId, t.id),
    index("backup_jobs_org_source_idx").on(t.orgId, t.dataSourceId, t.id),
    index("backup_jobs_org_status_idx").on(t.orgId, t.status, t.id),
    index("backup_jobs_status_idx").on(t.status, t.queuedAt),
    uniqueIndex("backup_jobs_attachment_slot_uq").on(t.attachmentId, t.scheduledFor),
  ],
);

/**
 * Each org's age X25519 identity: backups are encrypted to its recipient (plus a policy's
 * extra recipients); the identity itself is sealed under the master key.
 */
export const orgKeys = sqliteTable("org_keys", {
  orgId: text("org_id").primaryKey(),
  recipient: text("recipient").notNull(),
  identityCiphertext: text("identity_ciphertext").notNull(),
  identityKeyId: text("identity_key_id").notNull(),
  createdAt: createdAt(),
});

/**
 * Restores (issue 7): a backup job's file streamed back into a data source. Ids are plain
 * text, not foreign keys: a restore is history and stays when its job or sources are deleted.
 */
export const restores = sqliteTable(
  "restores",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    /** Null only for a restore plan's run that found no successful backup (failed NO_BACKUP). */
    backupJobId: text("backup_job_id"),
    /** The data source the backup was taken of. */
    sourceDataSourceId: text("source_data_source_id").notNull(),
    targetDataSourceId: text("target_data_source_id").notNull(),
    /** The database written (network engines); null for SQLite (the target's path). */
    targetDatabase: text("target_database"),
    clean: integer("clean", { mode: "boolean" }).notNull().default(false),
    status: text("status", { enum: ["queued", "running", "succeeded", "failed", "canceled"] }).notNull(),
    queuedAt: integer("queued_at").notNull(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
    /** Bytes of the stored object read so far. */
    bytesRead: integer("bytes_read").notNull().default(0),
    /** Bytes of the dump (decrypted, decompressed) handed to the restore tool or file. */
    bytesWritten: integer("bytes_written").notNull().default(0),
    error: text("error", { mode: "json" }).$type<{ code: RestoreErrorCode; message: string } | null>(),
    /** A whole-server backup's restore: the databases it restores (null for one-file backups). */
    databases: text("databases", { mode: "json" }).$type<string[] | null>(),
    /** What the restore tolerated on the way (roles that already existed, …). */
    notes: text("notes", { mode: "json" }).$type<string[] | null>(),
    /** The restore plan that queued this run (a drill or a refresh); null for a restore asked for directly. */
    planId: text("plan_id"),
    mode: text("mode", { enum: ["drill", "refresh"] }),
    trigger: text("trigger", { enum: ["schedule", "manual"] })
      .notNull()
      .default("manual"),
    /** A plan run's verification (src/runner/verify-restore.ts), written with its final status. */
    verification: text("verification", { mode: "json" }).$type<Record<string, unknown> | null>(),
    /** Point-in-time restores: the instant recovered to (ms); null for a restore of a dump. */
    targetTime: integer("target_time"),
    /** Point-in-time restores: the PostgreSQL data directory built (under storage.allowedRestoreRoots). */
    targetDirectory: text("target_directory"),
    /** Point-in-time restores: how PostgreSQL gets the WAL (`copy` into the directory, or `fetch` with `snapdb wal-fetch`); null for a restore of a dump. */
    walDelivery: text("wal_delivery", { enum: ["copy", "fetch"] }),
    /** As on backup_jobs: the claiming node and its lease (ms). */
    nodeId: text("node_id"),
    leaseUntil: integer("lease_until"),
    /** A cancel asked of a node that is not running it: the running node sees it at its next progress write. */
    cancelRequestedAt: integer("cancel_requested_at"),
  },
  (t) => [
    index("restores_org_id_idx").on(t.orgId, t.id),
    index("restores_org_plan_idx").on(t.orgId, t.planId, t.id),
    index("restores_org_target_idx").on(t.orgId, t.targetDataSourceId, t.id),
    index("restores_org_source_idx").on(t.orgId, t.sourceDataSourceId, t.id),
    index("restores_org_status_idx").on(t.orgId, t.status, t.id),
    index("restores_status_idx").on(t.status, t.queuedAt),
  ],
);

/**
 * Where notifications go. `settings` holds the non-secret part of the type's config (a
 * webhook's URL, an ntfy topic, e-mail addresses, the host of a chat webhook); the secret
 * part (webhook signing secret, chat webhook URL, ntfy token) is sealed like credentials.
 */
export const notificationChannels = sqliteTable(
  "notification_channels",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    name: text("name").notNull(),
    type: text("type", { enum: ["webhook", "slack", "discord", "teams", "ntfy", "email"] }).notNull(),
    settings: text("settings", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    secretCiphertext: text("secret_ciphertext"),
    secretKeyId: text("secret_key_id"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("notification_channels_org_name_uq").on(t.orgId, t.name), index("notification_channels_org_id_idx").on(t.orgId, t.id)],
);

/**
 * Which events of which data source (or policy, or the whole org) go to a channel. Source
 * and policy ids are plain text, not foreign keys: a rule of a deleted source matches nothing.
 */
export const notificationRules = sqliteTable(
  "notification_rules",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    channelId: text("channel_id")
      .notNull()
      .references(() => notificationChannels.id, { onDelete: "cascade" }),
    events: text("events", { mode: "json" }).$type<string[]>().notNull(),
    dataSourceId: text("data_source_id"),
    policyId: text("policy_id"),
    staleAfterSeconds: integer("stale_after_seconds"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("notification_rules_org_id_idx").on(t.orgId, t.id), index("notification_rules_channel_idx").on(t.channelId)],
);

/**
 * The outbox: one row per (event, rule), written in the transaction of the event itself, so
 * a committed event always has its deliveries and a rolled-back one never does. History:
 * a delivery keeps its channel id after the channel is deleted.
 */
export const notificationDeliveries = sqliteTable(
  "notification_deliveries",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    channelId: text("channel_id").notNull(),
    channelType: text("channel_type").notNull(),
    ruleId: text("rule_id"),
    event: text("event").notNull(),
    occurredAt: integer("occurred_at").notNull(),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    status: text("status", { enum: ["pending", "delivered", "failed"] }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at"),
    lastAttemptAt: integer("last_attempt_at"),
    lastError: text("last_error"),
    deliveredAt: integer("delivered_at"),
  },
  (t) => [
    index("notification_deliveries_org_id_idx").on(t.orgId, t.id),
    index("notification_deliveries_org_channel_idx").on(t.orgId, t.channelId, t.id),
    index("notification_deliveries_org_status_idx").on(t.orgId, t.status, t.id),
    index("notification_deliveries_org_event_idx").on(t.orgId, t.event, t.id),
    index("notification_deliveries_due_idx").on(t.status, t.nextAttemptAt),
  ],
);

/**
 * Data sources a rule has announced as stale (`backup.stale` sent, no success since): kept
 * in the store so a restart neither sends it again nor forgets to send `backup.recovered`.
 */
export const notificationStaleState = sqliteTable(
  "notification_stale_state",
  {
    ruleId: text("rule_id")
      .notNull()
      .references(() => notificationRules.id, { onDelete: "cascade" }),
    dataSourceId: text("data_source_id").notNull(),
    orgId: text("org_id").notNull(),
    staleSince: integer("stale_since").notNull(),
    notifiedAt: integer("notified_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ruleId, t.dataSourceId] }), index("notification_stale_state_source_idx").on(t.dataSourceId)],
);

/**
 * Restore plans: on a schedule, restore a data source's newest successful backup and prove
 * it (`drill`: into a scratch database that is dropped afterwards) or refresh another
 * database with it (`refresh`: e.g. production into staging). Each run is a `restores` row.
 */
export const restorePlans = sqliteTable(
  "restore_plans",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    name: text("name").notNull(),
    dataSourceId: text("data_source_id")
      .notNull()
      .references(() => dataSources.id, { onDelete: "restrict" }),
    mode: text("mode", { enum: ["drill", "refresh"] }).notNull(),
    scheduleCron: text("schedule_cron").notNull(),
    timezone: text("timezone").notNull(),
    targetDataSourceId: text("target_data_source_id")
      .notNull()
      .references(() => dataSources.id, { onDelete: "restrict" }),
    /** Refresh only: the database written on the target's server (default: the target's own). */
    targetDatabase: text("target_database"),
    checks: text("checks", { mode: "json" }).$type<{ name: string; sql: string; expect: string }[]>().notNull().default(sql`'[]'`),
    enabled: integer("enabled", { mode: "boolean" }).notNull(),
    /** The last scheduled minute acted on (ms), as for attachments. */
    lastScheduledAt: integer("last_scheduled_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("restore_plans_org_name_uq").on(t.orgId, t.name),
    index("restore_plans_org_id_idx").on(t.orgId, t.id),
    index("restore_plans_source_idx").on(t.dataSourceId),
    index("restore_plans_target_idx").on(t.targetDataSourceId),
  ],
);

/**
 * WAL segments archived from a PostgreSQL source with a physical policy (runner/wal-archiver.ts),
 * one row per stored object. Timeline history files (`00000002.history`) have no segment
 * number. No foreign keys: rows go with their data source in its delete, like its jobs.
 */
export const walSegments = sqliteTable(
  "wal_segments",
  {
    dataSourceId: text("data_source_id").notNull(),
    /** The file name PostgreSQL gives it: `000000010000000000000003`, `00000002.history`. */
    name: text("name").notNull(),
    orgId: text("org_id").notNull(),
    timeline: integer("timeline").notNull(),
    /** The segment's number in the WAL (LSN / segment size); null for a history file. */
    segno: integer("segno"),
    /** The LSN the segment starts at, `0/3000000`. */
    startLsn: text("start_lsn"),
    destinationId: text("destination_id").notNull(),
    objectKey: text("object_key").notNull(),
    /** Bytes of the segment itself, and of the stored object (compressed, encrypted). */
    sizeBytes: integer("size_bytes").notNull(),
    storedBytes: integer("stored_bytes").notNull(),
    sha256: text("sha256").notNull(),
    format: text("format", { mode: "json" }).$type<{ compression: string; encrypted: boolean }>().notNull(),
    /** The commit (or abort) time of the segment's last transaction, microseconds since the epoch; null: none. */
    lastXactAtUs: integer("last_xact_at_us"),
    archivedAt: integer("archived_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.dataSourceId, t.name] }), index("wal_segments_source_segno_idx").on(t.dataSourceId, t.segno)],
);

/**
 * The daemons sharing this store (fleet mode; an embedded store has one). A node renews
 * `lastSeenAt` while it runs; one silent for longer than the lease is `down`. The master
 * key's fingerprint lets `doctor` see a node holding another key.
 */
export const nodes = sqliteTable("nodes", {
  id: text("id").primaryKey(),
  hostname: text("hostname").notNull(),
  labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
  version: text("version").notNull(),
  masterKeyFingerprint: text("master_key_fingerprint").notNull(),
  startedAt: integer("started_at").notNull(),
  lastSeenAt: integer("last_seen_at").notNull(),
  /** Set at a clean shutdown: the node is down at once, not after the lease. */
  stoppedAt: integer("stopped_at"),
  /** Where other nodes reach this one directly (its listen address): they fetch downloads of files on its disk there. */
  url: text("url"),
  /** The store's clock minus the node's, measured at its last heartbeat (doctor reports skew). */
  clockOffsetMs: integer("clock_offset_ms"),
});
