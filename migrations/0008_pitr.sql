CREATE TABLE `wal_segments` (
	`data_source_id` text NOT NULL,
	`name` text NOT NULL,
	`org_id` text NOT NULL,
	`timeline` integer NOT NULL,
	`segno` integer,
	`start_lsn` text,
	`destination_id` text NOT NULL,
	`object_key` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`stored_bytes` integer NOT NULL,
	`sha256` text NOT NULL,
	`format` text NOT NULL,
	`last_xact_at_us` integer,
	`archived_at` integer NOT NULL,
	PRIMARY KEY(`data_source_id`, `name`)
);
--> statement-breakpoint
CREATE INDEX `wal_segments_source_segno_idx` ON `wal_segments` (`data_source_id`,`segno`);--> statement-breakpoint
ALTER TABLE `backup_jobs` ADD `physical` text;--> statement-breakpoint
ALTER TABLE `backup_policies` ADD `method` text DEFAULT 'logical' NOT NULL;--> statement-breakpoint
ALTER TABLE `backup_policies` ADD `fast_checkpoint` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `restores` ADD `target_time` integer;--> statement-breakpoint
ALTER TABLE `restores` ADD `target_directory` text;