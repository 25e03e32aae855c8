-- Edited by hand after drizzle-kit generate: every text column COLLATE "C" (see 0000_initial.sql).
CREATE TABLE "nodes" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"hostname" text COLLATE "C" NOT NULL,
	"labels" text COLLATE "C" DEFAULT '{}' NOT NULL,
	"version" text COLLATE "C" NOT NULL,
	"master_key_fingerprint" text COLLATE "C" NOT NULL,
	"started_at" bigint NOT NULL,
	"last_seen_at" bigint NOT NULL,
	"stopped_at" bigint
);
--> statement-breakpoint
ALTER TABLE "backup_jobs" ADD COLUMN "node_id" text COLLATE "C";--> statement-breakpoint
ALTER TABLE "backup_jobs" ADD COLUMN "lease_until" bigint;--> statement-breakpoint
ALTER TABLE "backup_jobs" ADD COLUMN "scheduled_for" bigint;--> statement-breakpoint
ALTER TABLE "data_sources" ADD COLUMN "run_on" text COLLATE "C";--> statement-breakpoint
ALTER TABLE "restores" ADD COLUMN "node_id" text COLLATE "C";--> statement-breakpoint
ALTER TABLE "restores" ADD COLUMN "lease_until" bigint;--> statement-breakpoint
CREATE UNIQUE INDEX "backup_jobs_attachment_slot_uq" ON "backup_jobs" USING btree ("attachment_id","scheduled_for");