ALTER TABLE "backup_jobs" ADD COLUMN "cancel_requested_at" bigint;--> statement-breakpoint
ALTER TABLE "restores" ADD COLUMN "cancel_requested_at" bigint;