import { sql } from "drizzle-orm";
import { bigint, boolean, customType, index, pgTable, primaryKey, text, uniqueIndex } from "drizzle-orm/pg-core";
import type { JobErrorCode, RestoreErrorCode } from "../lib/failure-codes.ts";
import type { StoredPart } from "./schema-sqlite.ts";

export type { StoredPart };

/**
 * The metadata store on PostgreSQL (`store.url = postgres://…`): the same tables as
 * src/db/schema-sqlite.ts, column for column, with the same exported names; read that file for
 * what each table and column means. test/unit/schema-drift.test.ts keeps the two in step.
 *
 * Types are chosen so both engines hand back identical JS values:
 * - SQLite `integer` → `bigint` in number mode: ms timestamps and byte sizes outgrow int4.
 * - SQLite boolean integers → `boolean`.
 * - SQLite JSON text → `jsonText` below: JSON kept in a `text` column, not `jsonb`. drizzle's
 *   bun-sql driver has known jsonb double-encoding issues, and text keeps the stored bytes
 *   identical between engines (jsonb would reorder keys and drop duplicates).
 *
 * Collation: every text column is created `COLLATE "C"` by the migrations in migrations-pg/
 * (drizzle-kit cannot express it, so generated SQL gets it by hand; test/integration/
 * pg-migrate.test.ts fails on a text column without it). Ids are prefixed ULIDs and the API
 * pages by `id < cursor ORDER BY id DESC`: with "C" that order is bytewise, as SQLite's
 * BINARY collation, whatever locale the operator's database was created with.
 */
const jsonText = customType<{ data: unknown; driverData: string }>({
  dataType: () => "text",
  toDriver: (value) => JSON.stringify(value),
  fromDriver: (value) => JSON.parse(value),
});

/** SQLite's `integer` as a JS number: int8 on the server, values up to 2^53 in JS. */
const int = <N extends string>(name: N) => bigint(name, { mode: "number" });

export const auditEvents = pgTable(
  "audit_events",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    occurredAt: int("occurred_at").notNull(),
    actorType: text("actor_type", { enum: ["user", "system"] }).notNull(),
    actorId: text("actor_id").notNull(),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id").notNull(),
    requestId: text("request_id"),
    ip: text("ip"),
    metadata: jsonText("metadata").$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  },
  (t) => [
    index("audit_events_org_id_idx").on(t.orgId, t.id),
    index("audit_events_org_action_idx").on(t.orgId, t.action, t.id),
    index("audit_events_org_target_idx").on(t.orgId, t.targetId, t.id),
    index("audit_events_org_actor_idx").on(t.orgId, t.actorId, t.id),
  ],
);

const createdAt = () => int("created_at").notNull();
const updatedAt = () => int("updated_at").notNull();

export const dataSources = pgTable(
  "data_sources",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    name: text("name").notNull(),
    engine: text("engine", { enum: ["postgres", "mysql", "mariadb", "sqlite"] }).notNull(),
    host: text("host"),
    port: int("port"),
    database: text("database"),
    path: text("path"),
    options: jsonText("options").$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    labels: jsonText("labels").$type<Record<string, string>>().notNull().default(sql`'{}'`),
    excludeDatabases: jsonText("exclude_databases").$type<string[]>().notNull().default(sql`'[]'`),
    credentialsUsername: text("credentials_username"),
    credentialsCiphertext: text("credentials_ciphertext"),
    credentialsKeyId: text("credentials_key_id"),
    credentialsUpdatedAt: int("credentials_updated_at"),
    lastVerify: jsonText("last_verify").$type<Record<string, unknown> | null>(),
    runOn: jsonText("run_on").$type<{ labels: Record<string, string> } | null>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("data_sources_org_name_uq").on(t.orgId, t.name), index("data_sources_org_id_idx").on(t.orgId, t.id)],
);

export const storageDestinations = pgTable(
  "storage_destinations",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    kind: text("kind", { enum: ["managed", "s3", "local"] }).notNull(),
    name: text("name").notNull(),
    settings: jsonText("settings").$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    secretCiphertext: text("secret_ciphertext"),
    secretKeyId: text("secret_key_id"),
    lastVerify: jsonText("last_verify").$type<Record<string, unknown> | null>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("storage_destinations_org_id_idx").on(t.orgId, t.id),
    uniqueIndex("storage_destinations_org_name_uq").on(t.orgId, t.name),
    uniqueIndex("storage_destinations_managed_uq").on(t.orgId).where(sql`kind = 'managed'`),
  ],
);

export const backupPolicies = pgTable(
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
    retention: jsonText("retention").$type<Record<string, number | null>>().notNull(),
    compression: jsonText("compression").$type<{ algorithm: string; level: number }>().notNull(),
    encryption: jsonText("encryption").$type<{ enabled: boolean; recipients: string[] }>().notNull(),
    timeoutSeconds: int("timeout_seconds").notNull(),
    retries: int("retries").notNull(),
    fingerprint: boolean("fingerprint").notNull().default(false),
    method: text("method", { enum: ["logical", "physical"] })
      .notNull()
      .default("logical"),
    fastCheckpoint: boolean("fast_checkpoint").notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("backup_policies_org_name_uq").on(t.orgId, t.name), index("backup_policies_org_id_idx").on(t.orgId, t.id)],
);

export const attachments = pgTable(
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
    enabled: boolean("enabled").notNull(),
    lastScheduledAt: int("last_scheduled_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("attachments_policy_source_uq").on(t.policyId, t.dataSourceId), index("attachments_org_id_idx").on(t.orgId, t.id), index("attachments_source_idx").on(t.dataSourceId)],
);

export const backupJobs = pgTable(
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
    attempt: int("attempt").notNull().default(1),
    queuedAt: int("queued_at").notNull(),
    notBefore: int("not_before"),
    startedAt: int("started_at"),
    finishedAt: int("finished_at"),
    bytesIn: int("bytes_in").notNull().default(0),
    bytesStored: int("bytes_stored").notNull().default(0),
    sizeBytes: int("size_bytes"),
    storedBytes: int("stored_bytes"),
    sha256: text("sha256"),
    objectKey: text("object_key"),
    format: jsonText("format").$type<Record<string, unknown> | null>(),
    error: jsonText("error").$type<{ code: JobErrorCode; message: string } | null>(),
    fileDeletedAt: int("file_deleted_at"),
    parts: jsonText("parts").$type<StoredPart[] | null>(),
    fingerprint: jsonText("fingerprint").$type<{ tables: Record<string, number>; takenAt: number } | null>(),
    physical: jsonText("physical").$type<Record<string, unknown> | null>(),
    nodeId: text("node_id"),
    leaseUntil: int("lease_until"),
    /** A cancel asked of a node that is not running it: the running node sees it at its next progress write. */
    cancelRequestedAt: int("cancel_requested_at"),
    scheduledFor: int("scheduled_for"),
  },
  (t) => [
    index("backup_jobs_org_id_idx").on(t.orgId, t.id),
    index("backup_jobs_org_source_idx").on(t.orgId, t.dataSourceId, t.id),
    index("backup_jobs_org_status_idx").on(t.orgId, t.status, t.id),
    index("backup_jobs_status_idx").on(t.status, t.queuedAt),
    uniqueIndex("backup_jobs_attachment_slot_uq").on(t.attachmentId, t.scheduledFor),
  ],
);

export const orgKeys = pgTable("org_keys", {
  orgId: text("org_id").primaryKey(),
  recipient: text("recipient").notNull(),
  identityCiphertext: text("identity_ciphertext").notNull(),
  identityKeyId: text("identity_key_id").notNull(),
  createdAt: createdAt(),
});

export const restores = pgTable(
  "restores",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    backupJobId: text("backup_job_id"),
    sourceDataSourceId: text("source_data_source_id").notNull(),
    targetDataSourceId: text("target_data_source_id").notNull(),
    targetDatabase: text("target_database"),
    clean: boolean("clean").notNull().default(false),
    status: text("status", { enum: ["queued", "running", "succeeded", "failed", "canceled"] }).notNull(),
    queuedAt: int("queued_at").notNull(),
    startedAt: int("started_at"),
    finishedAt: int("finished_at"),
    bytesRead: int("bytes_read").notNull().default(0),
    bytesWritten: int("bytes_written").notNull().default(0),
    error: jsonText("error").$type<{ code: RestoreErrorCode; message: string } | null>(),
    databases: jsonText("databases").$type<string[] | null>(),
    notes: jsonText("notes").$type<string[] | null>(),
    planId: text("plan_id"),
    mode: text("mode", { enum: ["drill", "refresh"] }),
    trigger: text("trigger", { enum: ["schedule", "manual"] })
      .notNull()
      .default("manual"),
    verification: jsonText("verification").$type<Record<string, unknown> | null>(),
    targetTime: int("target_time"),
    targetDirectory: text("target_directory"),
    walDelivery: text("wal_delivery", { enum: ["copy", "fetch"] }),
    nodeId: text("node_id"),
    leaseUntil: int("lease_until"),
    /** A cancel asked of a node that is not running it: the running node sees it at its next progress write. */
    cancelRequestedAt: int("cancel_requested_at"),
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

export const notificationChannels = pgTable(
  "notification_channels",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    name: text("name").notNull(),
    type: text("type", { enum: ["webhook", "slack", "discord", "teams", "ntfy", "email"] }).notNull(),
    settings: jsonText("settings").$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    secretCiphertext: text("secret_ciphertext"),
    secretKeyId: text("secret_key_id"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("notification_channels_org_name_uq").on(t.orgId, t.name), index("notification_channels_org_id_idx").on(t.orgId, t.id)],
);

export const notificationRules = pgTable(
  "notification_rules",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    channelId: text("channel_id")
      .notNull()
      .references(() => notificationChannels.id, { onDelete: "cascade" }),
    events: jsonText("events").$type<string[]>().notNull(),
    dataSourceId: text("data_source_id"),
    policyId: text("policy_id"),
    staleAfterSeconds: int("stale_after_seconds"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("notification_rules_org_id_idx").on(t.orgId, t.id), index("notification_rules_channel_idx").on(t.channelId)],
);

export const notificationDeliveries = pgTable(
  "notification_deliveries",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    channelId: text("channel_id").notNull(),
    channelType: text("channel_type").notNull(),
    ruleId: text("rule_id"),
    event: text("event").notNull(),
    occurredAt: int("occurred_at").notNull(),
    data: jsonText("data").$type<Record<string, unknown>>().notNull(),
    status: text("status", { enum: ["pending", "delivered", "failed"] }).notNull(),
    attempts: int("attempts").notNull().default(0),
    nextAttemptAt: int("next_attempt_at"),
    lastAttemptAt: int("last_attempt_at"),
    lastError: text("last_error"),
    deliveredAt: int("delivered_at"),
  },
  (t) => [
    index("notification_deliveries_org_id_idx").on(t.orgId, t.id),
    index("notification_deliveries_org_channel_idx").on(t.orgId, t.channelId, t.id),
    index("notification_deliveries_org_status_idx").on(t.orgId, t.status, t.id),
    index("notification_deliveries_org_event_idx").on(t.orgId, t.event, t.id),
    index("notification_deliveries_due_idx").on(t.status, t.nextAttemptAt),
  ],
);

export const notificationStaleState = pgTable(
  "notification_stale_state",
  {
    ruleId: text("rule_id")
      .notNull()
      .references(() => notificationRules.id, { onDelete: "cascade" }),
    dataSourceId: text("data_source_id").notNull(),
    orgId: text("org_id").notNull(),
    staleSince: int("stale_since").notNull(),
    notifiedAt: int("notified_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ruleId, t.dataSourceId] }), index("notification_stale_state_source_idx").on(t.dataSourceId)],
);

export const restorePlans = pgTable(
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
    targetDatabase: text("target_database"),
    checks: jsonText("checks").$type<{ name: string; sql: string; expect: string }[]>().notNull().default(sql`'[]'`),
    enabled: boolean("enabled").notNull(),
    lastScheduledAt: int("last_scheduled_at"),
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

export const walSegments = pgTable(
  "wal_segments",
  {
    dataSourceId: text("data_source_id").notNull(),
    name: text("name").notNull(),
    orgId: text("org_id").notNull(),
    timeline: int("timeline").notNull(),
    segno: int("segno"),
    startLsn: text("start_lsn"),
    destinationId: text("destination_id").notNull(),
    objectKey: text("object_key").notNull(),
    sizeBytes: int("size_bytes").notNull(),
    storedBytes: int("stored_bytes").notNull(),
    sha256: text("sha256").notNull(),
    format: jsonText("format").$type<{ compression: string; encrypted: boolean }>().notNull(),
    /** Microseconds since the epoch: ~2^51 today, still exact as a JS number. */
    lastXactAtUs: int("last_xact_at_us"),
    archivedAt: int("archived_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.dataSourceId, t.name] }), index("wal_segments_source_segno_idx").on(t.dataSourceId, t.segno)],
);

export const nodes = pgTable("nodes", {
  id: text("id").primaryKey(),
  hostname: text("hostname").notNull(),
  labels: jsonText("labels").$type<Record<string, string>>().notNull().default(sql`'{}'`),
  version: text("version").notNull(),
  masterKeyFingerprint: text("master_key_fingerprint").notNull(),
  startedAt: int("started_at").notNull(),
  lastSeenAt: int("last_seen_at").notNull(),
  stoppedAt: int("stopped_at"),
  /** Where other nodes reach this one directly (its listen address): they fetch downloads of files on its disk there. */
  url: text("url"),
  /** The store's clock minus the node's, measured at its last heartbeat (doctor reports skew). */
  clockOffsetMs: int("clock_offset_ms"),
});
