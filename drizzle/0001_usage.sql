CREATE TABLE "usage_daily" (
	"day" date NOT NULL,
	"workspace_id" text NOT NULL,
	"key_id" text NOT NULL,
	"model" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"cached_tokens" bigint NOT NULL,
	"reasoning_tokens" bigint NOT NULL,
	"cost_usd" numeric(24, 10) NOT NULL,
	CONSTRAINT "usage_daily_day_workspace_id_key_id_model_pk" PRIMARY KEY("day","workspace_id","key_id","model")
);
--> statement-breakpoint
CREATE TABLE "usage_records" (
	"request_id" text PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"workspace_id" text NOT NULL,
	"key_id" text NOT NULL,
	"route" text NOT NULL,
	"model_requested" text,
	"model_served" text,
	"model" text NOT NULL,
	"thread_id" text,
	"stream" boolean NOT NULL,
	"status" text NOT NULL,
	"http_status" integer NOT NULL,
	"error_code" text,
	"prompt_tokens" integer NOT NULL,
	"completion_tokens" integer NOT NULL,
	"cached_tokens" integer NOT NULL,
	"reasoning_tokens" integer NOT NULL,
	"cost_usd" numeric(20, 10) NOT NULL,
	"cost_source" text NOT NULL,
	"estimated" boolean NOT NULL,
	"latency_ms" real NOT NULL,
	"ttfb_ms" real,
	"generation_id" text,
	"provider" text
);
--> statement-breakpoint
CREATE INDEX "usage_daily_ws_day_idx" ON "usage_daily" USING btree ("workspace_id","day");--> statement-breakpoint
CREATE INDEX "usage_daily_key_day_idx" ON "usage_daily" USING btree ("key_id","day");--> statement-breakpoint
CREATE INDEX "usage_records_created_idx" ON "usage_records" USING btree ("created_at" DESC NULLS LAST,"request_id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "usage_records_ws_created_idx" ON "usage_records" USING btree ("workspace_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "usage_records_key_created_idx" ON "usage_records" USING btree ("key_id","created_at" DESC NULLS LAST);