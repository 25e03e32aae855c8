CREATE TABLE `restores` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`backup_job_id` text NOT NULL,
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
	`error` text
);
--> statement-breakpoint
CREATE INDEX `restores_org_id_idx` ON `restores` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `restores_org_target_idx` ON `restores` (`org_id`,`target_data_source_id`,`id`);--> statement-breakpoint
CREATE INDEX `restores_org_source_idx` ON `restores` (`org_id`,`source_data_source_id`,`id`);--> statement-breakpoint
CREATE INDEX `restores_org_status_idx` ON `restores` (`org_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `restores_status_idx` ON `restores` (`status`,`queued_at`);