ALTER TABLE `backup_jobs` ADD `parts` text;--> statement-breakpoint
ALTER TABLE `data_sources` ADD `exclude_databases` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `restores` ADD `databases` text;--> statement-breakpoint
ALTER TABLE `restores` ADD `notes` text;