CREATE TABLE `attachments` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`data_source_id` text NOT NULL,
	`policy_id` text NOT NULL,
	`enabled` integer NOT NULL,
	`last_scheduled_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`data_source_id`) REFERENCES `data_sources`(`id`) ON UPDATE no action ON DELETE restrict,
	FOREIGN KEY (`policy_id`) REFERENCES `backup_policies`(`id`) ON UPDATE no action ON DELETE restrict
);
--> statement-breakpoint
CREATE UNIQUE INDEX `attachments_policy_source_uq` ON `attachments` (`policy_id`,`data_source_id`);--> statement-breakpoint
CREATE INDEX `attachments_org_id_idx` ON `attachments` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `attachments_source_idx` ON `attachments` (`data_source_id`);--> statement-breakpoint
CREATE TABLE `backup_jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`data_source_id` text NOT NULL,
	`policy_id` text,
	`attachment_id` text,
	`destination_id` text,
	`trigger` text NOT NULL,
	`status` text NOT NULL,
	`attempt` integer DEFAULT 1 NOT NULL,
	`queued_at` integer NOT NULL,
	`not_before` integer,
	`started_at` integer,
	`finished_at` integer,
	`bytes_in` integer DEFAULT 0 NOT NULL,
	`bytes_stored` integer DEFAULT 0 NOT NULL,
	`size_bytes` integer,
	`stored_bytes` integer,
	`sha256` text,
	`object_key` text,
	`format` text,
	`error` text,
	`file_deleted_at` integer,
	FOREIGN KEY (`data_source_id`) REFERENCES `data_sources`(`id`) ON UPDATE no action ON DELETE restrict
);
--> statement-breakpoint
CREATE INDEX `backup_jobs_org_id_idx` ON `backup_jobs` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `backup_jobs_org_source_idx` ON `backup_jobs` (`org_id`,`data_source_id`,`id`);--> statement-breakpoint
CREATE INDEX `backup_jobs_org_status_idx` ON `backup_jobs` (`org_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `backup_jobs_status_idx` ON `backup_jobs` (`status`,`queued_at`);--> statement-breakpoint
CREATE TABLE `backup_policies` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`schedule_cron` text NOT NULL,
	`timezone` text NOT NULL,
	`destination_id` text NOT NULL,
	`retention` text NOT NULL,
	`compression` text NOT NULL,
	`encryption` text NOT NULL,
	`timeout_seconds` integer NOT NULL,
	`retries` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`destination_id`) REFERENCES `storage_destinations`(`id`) ON UPDATE no action ON DELETE restrict
);
--> statement-breakpoint
CREATE UNIQUE INDEX `backup_policies_org_name_uq` ON `backup_policies` (`org_id`,`name`);--> statement-breakpoint
CREATE INDEX `backup_policies_org_id_idx` ON `backup_policies` (`org_id`,`id`);--> statement-breakpoint
CREATE TABLE `data_sources` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`engine` text NOT NULL,
	`host` text,
	`port` integer,
	`database` text,
	`path` text,
	`options` text DEFAULT '{}' NOT NULL,
	`labels` text DEFAULT '{}' NOT NULL,
	`credentials_username` text,
	`credentials_ciphertext` text,
	`credentials_key_id` text,
	`credentials_updated_at` integer,
	`last_verify` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `data_sources_org_name_uq` ON `data_sources` (`org_id`,`name`);--> statement-breakpoint
CREATE INDEX `data_sources_org_id_idx` ON `data_sources` (`org_id`,`id`);--> statement-breakpoint
CREATE TABLE `storage_destinations` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`kind` text NOT NULL,
	`name` text NOT NULL,
	`settings` text DEFAULT '{}' NOT NULL,
	`secret_ciphertext` text,
	`secret_key_id` text,
	`last_verify` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `storage_destinations_org_id_idx` ON `storage_destinations` (`org_id`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `storage_destinations_org_name_uq` ON `storage_destinations` (`org_id`,`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `storage_destinations_managed_uq` ON `storage_destinations` (`org_id`) WHERE kind = 'managed';