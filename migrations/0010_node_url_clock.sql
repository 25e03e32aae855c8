ALTER TABLE `nodes` ADD `url` text;--> statement-breakpoint
ALTER TABLE `nodes` ADD `clock_offset_ms` integer;