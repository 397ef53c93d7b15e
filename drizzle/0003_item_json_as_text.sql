ALTER TABLE "thread_items" ALTER COLUMN "content" SET DATA TYPE text USING "content"::text;--> statement-breakpoint
ALTER TABLE "thread_items" ALTER COLUMN "tool_calls" SET DATA TYPE text USING "tool_calls"::text;--> statement-breakpoint
ALTER TABLE "thread_items" ALTER COLUMN "usage" SET DATA TYPE text USING "usage"::text;