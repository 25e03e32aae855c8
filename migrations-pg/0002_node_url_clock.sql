ALTER TABLE "nodes" ADD COLUMN "url" text COLLATE "C";--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "clock_offset_ms" bigint;