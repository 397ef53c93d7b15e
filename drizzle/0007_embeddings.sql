CREATE TABLE "memory_jobs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"workspace_id" text NOT NULL,
	"thread_id" text NOT NULL,
	"item_id" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"run_after" timestamp with time zone DEFAULT now() NOT NULL,
	"claimed_until" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "thread_item_embeddings" (
	"item_id" text PRIMARY KEY NOT NULL,
	"workspace_id" text NOT NULL,
	"thread_id" text NOT NULL,
	"seq" integer NOT NULL,
	"model" text NOT NULL,
	"dims" integer NOT NULL,
	"embedding" text NOT NULL
);
--> statement-breakpoint
CREATE INDEX "memory_jobs_due_idx" ON "memory_jobs" USING btree ("run_after");--> statement-breakpoint
CREATE INDEX "thread_item_embeddings_thread_idx" ON "thread_item_embeddings" USING btree ("workspace_id","thread_id","seq");