CREATE TABLE `nodes` (
	`id` text PRIMARY KEY NOT NULL,
	`hostname` text NOT NULL,
	`labels` text DEFAULT '{}' NOT NULL,
	`version` text NOT NULL,
	`master_key_fingerprint` text NOT NULL,
	`started_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`stopped_at` integer
);
--> statement-breakpoint
ALTER TABLE `backup_jobs` ADD `node_id` text;--> statement-breakpoint
ALTER TABLE `backup_jobs` ADD `lease_until` integer;--> statement-breakpoint
ALTER TABLE `backup_jobs` ADD `scheduled_for` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `backup_jobs_attachment_slot_uq` ON `backup_jobs` (`attachment_id`,`scheduled_for`);--> statement-breakpoint
ALTER TABLE `data_sources` ADD `run_on` text;--> statement-breakpoint
ALTER TABLE `restores` ADD `node_id` text;--> statement-breakpoint
ALTER TABLE `restores` ADD `lease_until` integer;