CREATE TABLE `notification_channels` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`settings` text DEFAULT '{}' NOT NULL,
	`secret_ciphertext` text,
	`secret_key_id` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `notification_channels_org_name_uq` ON `notification_channels` (`org_id`,`name`);--> statement-breakpoint
CREATE INDEX `notification_channels_org_id_idx` ON `notification_channels` (`org_id`,`id`);--> statement-breakpoint
CREATE TABLE `notification_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`channel_id` text NOT NULL,
	`channel_type` text NOT NULL,
	`rule_id` text,
	`event` text NOT NULL,
	`occurred_at` integer NOT NULL,
	`data` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer,
	`last_attempt_at` integer,
	`last_error` text,
	`delivered_at` integer
);
--> statement-breakpoint
CREATE INDEX `notification_deliveries_org_id_idx` ON `notification_deliveries` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `notification_deliveries_org_channel_idx` ON `notification_deliveries` (`org_id`,`channel_id`,`id`);--> statement-breakpoint
CREATE INDEX `notification_deliveries_org_status_idx` ON `notification_deliveries` (`org_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `notification_deliveries_org_event_idx` ON `notification_deliveries` (`org_id`,`event`,`id`);--> statement-breakpoint
CREATE INDEX `notification_deliveries_due_idx` ON `notification_deliveries` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `notification_rules` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`channel_id` text NOT NULL,
	`events` text NOT NULL,
	`data_source_id` text,
	`policy_id` text,
	`stale_after_seconds` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`channel_id`) REFERENCES `notification_channels`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `notification_rules_org_id_idx` ON `notification_rules` (`org_id`,`id`);--> statement-breakpoint
CREATE INDEX `notification_rules_channel_idx` ON `notification_rules` (`channel_id`);--> statement-breakpoint
CREATE TABLE `notification_stale_state` (
	`rule_id` text NOT NULL,
	`data_source_id` text NOT NULL,
	`org_id` text NOT NULL,
	`stale_since` integer NOT NULL,
	`notified_at` integer NOT NULL,
	PRIMARY KEY(`rule_id`, `data_source_id`),
	FOREIGN KEY (`rule_id`) REFERENCES `notification_rules`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `notification_stale_state_source_idx` ON `notification_stale_state` (`data_source_id`);