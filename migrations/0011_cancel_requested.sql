ALTER TABLE `backup_jobs` ADD `cancel_requested_at` integer;--> statement-breakpoint
ALTER TABLE `restores` ADD `cancel_requested_at` integer;