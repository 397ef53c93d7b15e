CREATE TABLE "responses" (
	"workspace_id" text NOT NULL,
	"id" text NOT NULL,
	"thread_id" text NOT NULL,
	"previous_response_id" text,
	"conversation_id" text,
	"model" text,
	"status" text NOT NULL,
	"input_count" integer NOT NULL,
	"body" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "responses_workspace_id_id_pk" PRIMARY KEY("workspace_id","id")
);
--> statement-breakpoint
ALTER TABLE "thread_items" ADD COLUMN "response_id" text;--> statement-breakpoint
ALTER TABLE "thread_items" ADD COLUMN "raw" text;--> statement-breakpoint
ALTER TABLE "thread_items" ADD COLUMN "item_ref" text;--> statement-breakpoint
CREATE INDEX "responses_thread_idx" ON "responses" USING btree ("workspace_id","thread_id");--> statement-breakpoint
CREATE INDEX "thread_items_response_idx" ON "thread_items" USING btree ("workspace_id","response_id","seq") WHERE "thread_items"."response_id" is not null;--> statement-breakpoint
CREATE INDEX "thread_items_ref_idx" ON "thread_items" USING btree ("workspace_id","item_ref") WHERE "thread_items"."item_ref" is not null;