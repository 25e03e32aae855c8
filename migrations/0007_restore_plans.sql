CREATE TABLE `restore_plans` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`data_source_id` text NOT NULL,
	`mode` text NOT NULL,
	`schedule_cron` text NOT NULL,
	`timezone` text NOT NULL,
	`target_data_source_id` text NOT NULL,
	`target_database` text,
	`checks` text DEFAULT '[]' NOT NULL,
	`enabled` integer NOT NULL,
	`last_scheduled_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`data_source_id`) REFERENCES `data_sources`(`id`) ON UPDATE no action ON DELETE restrict,
	FOREIGN KEY (`target_data_source_id`) REFERENCES `data_sources`(`id`) ON UPDATE no action ON DELETE restrict
);
--> statement-breakpoint
CREATE UNIQUE INDEX `restore_plans_org_name_uq` ON `restore_plans` (`org_id`,`name`);--> statement-breakpoint
CREATE INDEX `restore_plans_org_id_idx` ON `restore_plans` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `restore_plans_source_idx` ON `restore_plans` (`data_source_id`);--> statement-breakpoint
CREATE INDEX `restore_plans_target_idx` ON `restore_plans` (`target_data_source_id`);--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_restores` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`backup_job_id` text,
	`source_data_source_id` text NOT NULL,
	`target_data_source_id` text NOT NULL,
	`target_database` text,
	`clean` integer DEFAULT false NOT NULL,
	`status` text NOT NULL,
	`queued_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`bytes_read` integer DEFAULT 0 NOT NULL,
	`bytes_written` integer DEFAULT 0 NOT NULL,
	`error` text,
	`databases` text,
	`notes` text,
	`plan_id` text,
	`mode` text,
	`trigger` text DEFAULT 'manual' NOT NULL,
	`verification` text
);
--> statement-breakpoint
-- Only the columns the old table has (drizzle-kit also listed the new ones, which SQLite would read as string literals).
INSERT INTO `__new_restores`("id", "org_id", "backup_job_id", "source_data_source_id", "target_data_source_id", "target_database", "clean", "status", "queued_at", "started_at", "finished_at", "bytes_read", "bytes_written", "error", "databases", "notes") SELECT "id", "org_id", "backup_job_id", "source_data_source_id", "target_data_source_id", "target_database", "clean", "status", "queued_at", "started_at", "finished_at", "bytes_read", "bytes_written", "error", "databases", "notes" FROM `restores`;--> statement-breakpoint
DROP TABLE `restores`;--> statement-breakpoint
ALTER TABLE `__new_restores` RENAME TO `restores`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `restores_org_id_idx` ON `restores` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `restores_org_plan_idx` ON `restores` (`org_id`,`plan_id`,`id`);--> statement-breakpoint
CREATE INDEX `restores_org_target_idx` ON `restores` (`org_id`,`target_data_source_id`,`id`);--> statement-breakpoint
CREATE INDEX `restores_org_source_idx` ON `restores` (`org_id`,`source_data_source_id`,`id`);--> statement-breakpoint
CREATE INDEX `restores_org_status_idx` ON `restores` (`org_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `restores_status_idx` ON `restores` (`status`,`queued_at`);--> statement-breakpoint
ALTER TABLE `backup_jobs` ADD `fingerprint` text;--> statement-breakpoint
ALTER TABLE `backup_policies` ADD `fingerprint` integer DEFAULT false NOT NULL;