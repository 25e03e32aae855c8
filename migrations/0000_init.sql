CREATE TABLE `audit_events` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`occurred_at` integer NOT NULL,
	`actor_type` text NOT NULL,
	`actor_id` text NOT NULL,
	`action` text NOT NULL,
	`target_type` text NOT NULL,
	`target_id` text NOT NULL,
	`request_id` text,
	`ip` text,
	`metadata` text DEFAULT '{}' NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_events_org_id_idx` ON `audit_events` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_org_action_idx` ON `audit_events` (`org_id`,`action`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_org_target_idx` ON `audit_events` (`org_id`,`target_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_org_actor_idx` ON `audit_events` (`org_id`,`actor_id`,`id`);