-- Edited by hand after drizzle-kit generate (later migrations must do the same):
-- * every text column is COLLATE "C", so comparisons and ORDER BY id are bytewise like
--   SQLite's BINARY collation whatever the database's locale (keyset pages over ULID ids);
-- * foreign keys name their table without "public.", so the store may live in any schema
--   (the first one on the connection's search_path);
-- * the audit log is append-only (triggers at the end), as in the SQLite store.
CREATE TABLE "attachments" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"data_source_id" text COLLATE "C" NOT NULL,
	"policy_id" text COLLATE "C" NOT NULL,
	"enabled" boolean NOT NULL,
	"last_scheduled_at" bigint,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"occurred_at" bigint NOT NULL,
	"actor_type" text COLLATE "C" NOT NULL,
	"actor_id" text COLLATE "C" NOT NULL,
	"action" text COLLATE "C" NOT NULL,
	"target_type" text COLLATE "C" NOT NULL,
	"target_id" text COLLATE "C" NOT NULL,
	"request_id" text COLLATE "C",
	"ip" text COLLATE "C",
	"metadata" text COLLATE "C" DEFAULT '{}' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "backup_jobs" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"data_source_id" text COLLATE "C" NOT NULL,
	"policy_id" text COLLATE "C",
	"attachment_id" text COLLATE "C",
	"destination_id" text COLLATE "C",
	"trigger" text COLLATE "C" NOT NULL,
	"status" text COLLATE "C" NOT NULL,
	"attempt" bigint DEFAULT 1 NOT NULL,
	"queued_at" bigint NOT NULL,
	"not_before" bigint,
	"started_at" bigint,
	"finished_at" bigint,
	"bytes_in" bigint DEFAULT 0 NOT NULL,
	"bytes_stored" bigint DEFAULT 0 NOT NULL,
	"size_bytes" bigint,
	"stored_bytes" bigint,
	"sha256" text COLLATE "C",
	"object_key" text COLLATE "C",
	"format" text COLLATE "C",
	"error" text COLLATE "C",
	"file_deleted_at" bigint,
	"parts" text COLLATE "C",
	"fingerprint" text COLLATE "C",
	"physical" text COLLATE "C"
);
--> statement-breakpoint
CREATE TABLE "backup_policies" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"schedule_cron" text COLLATE "C" NOT NULL,
	"timezone" text COLLATE "C" NOT NULL,
	"destination_id" text COLLATE "C" NOT NULL,
	"retention" text COLLATE "C" NOT NULL,
	"compression" text COLLATE "C" NOT NULL,
	"encryption" text COLLATE "C" NOT NULL,
	"timeout_seconds" bigint NOT NULL,
	"retries" bigint NOT NULL,
	"fingerprint" boolean DEFAULT false NOT NULL,
	"method" text COLLATE "C" DEFAULT 'logical' NOT NULL,
	"fast_checkpoint" boolean DEFAULT false NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "data_sources" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"engine" text COLLATE "C" NOT NULL,
	"host" text COLLATE "C",
	"port" bigint,
	"database" text COLLATE "C",
	"path" text COLLATE "C",
	"options" text COLLATE "C" DEFAULT '{}' NOT NULL,
	"labels" text COLLATE "C" DEFAULT '{}' NOT NULL,
	"exclude_databases" text COLLATE "C" DEFAULT '[]' NOT NULL,
	"credentials_username" text COLLATE "C",
	"credentials_ciphertext" text COLLATE "C",
	"credentials_key_id" text COLLATE "C",
	"credentials_updated_at" bigint,
	"last_verify" text COLLATE "C",
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_channels" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"type" text COLLATE "C" NOT NULL,
	"settings" text COLLATE "C" DEFAULT '{}' NOT NULL,
	"secret_ciphertext" text COLLATE "C",
	"secret_key_id" text COLLATE "C",
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_deliveries" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"channel_id" text COLLATE "C" NOT NULL,
	"channel_type" text COLLATE "C" NOT NULL,
	"rule_id" text COLLATE "C",
	"event" text COLLATE "C" NOT NULL,
	"occurred_at" bigint NOT NULL,
	"data" text COLLATE "C" NOT NULL,
	"status" text COLLATE "C" NOT NULL,
	"attempts" bigint DEFAULT 0 NOT NULL,
	"next_attempt_at" bigint,
	"last_attempt_at" bigint,
	"last_error" text COLLATE "C",
	"delivered_at" bigint
);
--> statement-breakpoint
CREATE TABLE "notification_rules" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"channel_id" text COLLATE "C" NOT NULL,
	"events" text COLLATE "C" NOT NULL,
	"data_source_id" text COLLATE "C",
	"policy_id" text COLLATE "C",
	"stale_after_seconds" bigint,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_stale_state" (
	"rule_id" text COLLATE "C" NOT NULL,
	"data_source_id" text COLLATE "C" NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"stale_since" bigint NOT NULL,
	"notified_at" bigint NOT NULL,
	CONSTRAINT "notification_stale_state_rule_id_data_source_id_pk" PRIMARY KEY("rule_id","data_source_id")
);
--> statement-breakpoint
CREATE TABLE "org_keys" (
	"org_id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"recipient" text COLLATE "C" NOT NULL,
	"identity_ciphertext" text COLLATE "C" NOT NULL,
	"identity_key_id" text COLLATE "C" NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "restore_plans" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"data_source_id" text COLLATE "C" NOT NULL,
	"mode" text COLLATE "C" NOT NULL,
	"schedule_cron" text COLLATE "C" NOT NULL,
	"timezone" text COLLATE "C" NOT NULL,
	"target_data_source_id" text COLLATE "C" NOT NULL,
	"target_database" text COLLATE "C",
	"checks" text COLLATE "C" DEFAULT '[]' NOT NULL,
	"enabled" boolean NOT NULL,
	"last_scheduled_at" bigint,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "restores" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"backup_job_id" text COLLATE "C",
	"source_data_source_id" text COLLATE "C" NOT NULL,
	"target_data_source_id" text COLLATE "C" NOT NULL,
	"target_database" text COLLATE "C",
	"clean" boolean DEFAULT false NOT NULL,
	"status" text COLLATE "C" NOT NULL,
	"queued_at" bigint NOT NULL,
	"started_at" bigint,
	"finished_at" bigint,
	"bytes_read" bigint DEFAULT 0 NOT NULL,
	"bytes_written" bigint DEFAULT 0 NOT NULL,
	"error" text COLLATE "C",
	"databases" text COLLATE "C",
	"notes" text COLLATE "C",
	"plan_id" text COLLATE "C",
	"mode" text COLLATE "C",
	"trigger" text COLLATE "C" DEFAULT 'manual' NOT NULL,
	"verification" text COLLATE "C",
	"target_time" bigint,
	"target_directory" text COLLATE "C"
);
--> statement-breakpoint
CREATE TABLE "storage_destinations" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"kind" text COLLATE "C" NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"settings" text COLLATE "C" DEFAULT '{}' NOT NULL,
	"secret_ciphertext" text COLLATE "C",
	"secret_key_id" text COLLATE "C",
	"last_verify" text COLLATE "C",
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "wal_segments" (
	"data_source_id" text COLLATE "C" NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"org_id" text COLLATE "C" NOT NULL,
	"timeline" bigint NOT NULL,
	"segno" bigint,
	"start_lsn" text COLLATE "C",
	"destination_id" text COLLATE "C" NOT NULL,
	"object_key" text COLLATE "C" NOT NULL,
	"size_bytes" bigint NOT NULL,
	"stored_bytes" bigint NOT NULL,
	"sha256" text COLLATE "C" NOT NULL,
	"format" text COLLATE "C" NOT NULL,
	"last_xact_at_us" bigint,
	"archived_at" bigint NOT NULL,
	CONSTRAINT "wal_segments_data_source_id_name_pk" PRIMARY KEY("data_source_id","name")
);
--> statement-breakpoint
ALTER TABLE "attachments" ADD CONSTRAINT "attachments_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "data_sources"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "attachments" ADD CONSTRAINT "attachments_policy_id_backup_policies_id_fk" FOREIGN KEY ("policy_id") REFERENCES "backup_policies"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_jobs" ADD CONSTRAINT "backup_jobs_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "data_sources"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_policies" ADD CONSTRAINT "backup_policies_destination_id_storage_destinations_id_fk" FOREIGN KEY ("destination_id") REFERENCES "storage_destinations"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_rules" ADD CONSTRAINT "notification_rules_channel_id_notification_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "notification_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_stale_state" ADD CONSTRAINT "notification_stale_state_rule_id_notification_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "notification_rules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "restore_plans" ADD CONSTRAINT "restore_plans_data_source_id_data_sources_id_fk" FOREIGN KEY ("data_source_id") REFERENCES "data_sources"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "restore_plans" ADD CONSTRAINT "restore_plans_target_data_source_id_data_sources_id_fk" FOREIGN KEY ("target_data_source_id") REFERENCES "data_sources"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "attachments_policy_source_uq" ON "attachments" USING btree ("policy_id","data_source_id");--> statement-breakpoint
CREATE INDEX "attachments_org_id_idx" ON "attachments" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "attachments_source_idx" ON "attachments" USING btree ("data_source_id");--> statement-breakpoint
CREATE INDEX "audit_events_org_id_idx" ON "audit_events" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "audit_events_org_action_idx" ON "audit_events" USING btree ("org_id","action","id");--> statement-breakpoint
CREATE INDEX "audit_events_org_target_idx" ON "audit_events" USING btree ("org_id","target_id","id");--> statement-breakpoint
CREATE INDEX "audit_events_org_actor_idx" ON "audit_events" USING btree ("org_id","actor_id","id");--> statement-breakpoint
CREATE INDEX "backup_jobs_org_id_idx" ON "backup_jobs" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "backup_jobs_org_source_idx" ON "backup_jobs" USING btree ("org_id","data_source_id","id");--> statement-breakpoint
CREATE INDEX "backup_jobs_org_status_idx" ON "backup_jobs" USING btree ("org_id","status","id");--> statement-breakpoint
CREATE INDEX "backup_jobs_status_idx" ON "backup_jobs" USING btree ("status","queued_at");--> statement-breakpoint
CREATE UNIQUE INDEX "backup_policies_org_name_uq" ON "backup_policies" USING btree ("org_id","name");--> statement-breakpoint
CREATE INDEX "backup_policies_org_id_idx" ON "backup_policies" USING btree ("org_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "data_sources_org_name_uq" ON "data_sources" USING btree ("org_id","name");--> statement-breakpoint
CREATE INDEX "data_sources_org_id_idx" ON "data_sources" USING btree ("org_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "notification_channels_org_name_uq" ON "notification_channels" USING btree ("org_id","name");--> statement-breakpoint
CREATE INDEX "notification_channels_org_id_idx" ON "notification_channels" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_org_id_idx" ON "notification_deliveries" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_org_channel_idx" ON "notification_deliveries" USING btree ("org_id","channel_id","id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_org_status_idx" ON "notification_deliveries" USING btree ("org_id","status","id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_org_event_idx" ON "notification_deliveries" USING btree ("org_id","event","id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_due_idx" ON "notification_deliveries" USING btree ("status","next_attempt_at");--> statement-breakpoint
CREATE INDEX "notification_rules_org_id_idx" ON "notification_rules" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "notification_rules_channel_idx" ON "notification_rules" USING btree ("channel_id");--> statement-breakpoint
CREATE INDEX "notification_stale_state_source_idx" ON "notification_stale_state" USING btree ("data_source_id");--> statement-breakpoint
CREATE UNIQUE INDEX "restore_plans_org_name_uq" ON "restore_plans" USING btree ("org_id","name");--> statement-breakpoint
CREATE INDEX "restore_plans_org_id_idx" ON "restore_plans" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "restore_plans_source_idx" ON "restore_plans" USING btree ("data_source_id");--> statement-breakpoint
CREATE INDEX "restore_plans_target_idx" ON "restore_plans" USING btree ("target_data_source_id");--> statement-breakpoint
CREATE INDEX "restores_org_id_idx" ON "restores" USING btree ("org_id","id");--> statement-breakpoint
CREATE INDEX "restores_org_plan_idx" ON "restores" USING btree ("org_id","plan_id","id");--> statement-breakpoint
CREATE INDEX "restores_org_target_idx" ON "restores" USING btree ("org_id","target_data_source_id","id");--> statement-breakpoint
CREATE INDEX "restores_org_source_idx" ON "restores" USING btree ("org_id","source_data_source_id","id");--> statement-breakpoint
CREATE INDEX "restores_org_status_idx" ON "restores" USING btree ("org_id","status","id");--> statement-breakpoint
CREATE INDEX "restores_status_idx" ON "restores" USING btree ("status","queued_at");--> statement-breakpoint
CREATE INDEX "storage_destinations_org_id_idx" ON "storage_destinations" USING btree ("org_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "storage_destinations_org_name_uq" ON "storage_destinations" USING btree ("org_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "storage_destinations_managed_uq" ON "storage_destinations" USING btree ("org_id") WHERE kind = 'managed';--> statement-breakpoint
CREATE INDEX "wal_segments_source_segno_idx" ON "wal_segments" USING btree ("data_source_id","segno");--> statement-breakpoint
CREATE FUNCTION "audit_events_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only';
END;
$$;--> statement-breakpoint
CREATE TRIGGER "audit_events_no_update" BEFORE UPDATE ON "audit_events" FOR EACH ROW EXECUTE FUNCTION "audit_events_append_only"();--> statement-breakpoint
CREATE TRIGGER "audit_events_no_delete" BEFORE DELETE ON "audit_events" FOR EACH ROW EXECUTE FUNCTION "audit_events_append_only"();--> statement-breakpoint
CREATE TRIGGER "audit_events_no_truncate" BEFORE TRUNCATE ON "audit_events" FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_append_only"();
