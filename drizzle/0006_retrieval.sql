ALTER TABLE "thread_items" ADD COLUMN "search_text" text;--> statement-breakpoint
-- Items stored before retrieval: their JSON text is close enough to their words for the index.
UPDATE "thread_items" SET "search_text" = left("content", 65536) WHERE "content" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "thread_items" ADD COLUMN "search" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', coalesce(search_text, ''))) STORED;--> statement-breakpoint
CREATE INDEX "thread_items_search_idx" ON "thread_items" USING gin ("search");