CREATE TABLE "thread_items" (
	"id" text PRIMARY KEY NOT NULL,
	"workspace_id" text NOT NULL,
	"thread_id" text NOT NULL,
	"seq" integer NOT NULL,
	"kind" text NOT NULL,
	"role" text,
	"content" jsonb,
	"tool_calls" jsonb,
	"tool_call_id" text,
	"name" text,
	"content_hash" text NOT NULL,
	"tokens" integer NOT NULL,
	"pinned" boolean DEFAULT false NOT NULL,
	"status" text NOT NULL,
	"model" text,
	"usage" jsonb,
	"generation_id" text,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "threads" (
	"workspace_id" text NOT NULL,
	"id" text NOT NULL,
	"title" text,
	"metadata" jsonb,
	"next_seq" integer DEFAULT 1 NOT NULL,
	"summary" text,
	"summary_upto_seq" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "threads_workspace_id_id_pk" PRIMARY KEY("workspace_id","id")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "thread_items_thread_seq_idx" ON "thread_items" USING btree ("workspace_id","thread_id","seq");--> statement-breakpoint
CREATE INDEX "thread_items_pinned_idx" ON "thread_items" USING btree ("workspace_id","thread_id") WHERE "thread_items"."pinned";--> statement-breakpoint
CREATE INDEX "threads_ws_updated_idx" ON "threads" USING btree ("workspace_id","updated_at" DESC NULLS LAST);