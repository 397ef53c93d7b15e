import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/** Postgres full-text search vector (PGlite has it too). */
const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

/**
 * Memory threads. A thread id is the caller's own name for it and lives inside its workspace:
 * (workspace_id, id) is the key, so two workspaces using the same id never share anything.
 */
export const threads = pgTable(
  'threads',
  {
    workspaceId: text('workspace_id').notNull(),
    id: text('id').notNull(),
    title: text('title'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>(),
    /** Next free sequence number; writers reserve ranges from it atomically. */
    nextSeq: integer('next_seq').notNull().default(1),
    /** Bumped by every change to the thread or its items: instances check it before trusting a cached history. */
    version: integer('version').notNull().default(1),
    /**
     * Bumped only when stored items change (superseded, edited, deleted), not on append: an
     * instance's index of a thread's older items stays good while it holds (see lexical-index.ts).
     */
    editVersion: integer('edit_version').notNull().default(0),
    /** Running summary of items up to summary_upto_seq (those are then not injected raw). */
    summary: text('summary'),
    summaryUptoSeq: integer('summary_upto_seq').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.id] }), index('threads_ws_updated_idx').on(t.workspaceId, t.updatedAt.desc())],
);

/** Messages, facts and notes of a thread, in one consistent order (seq). */
export const threadItems = pgTable(
  'thread_items',
  {
    id: text('id').primaryKey(),
    workspaceId: text('workspace_id').notNull(),
    threadId: text('thread_id').notNull(),
    seq: integer('seq').notNull(),
    /** message | fact | note */
    kind: text('kind').notNull(),
    role: text('role'),
    // JSON kept as text: a jsonb string like "42" would come back through the drivers as a number.
    content: text('content'),
    toolCalls: text('tool_calls'),
    toolCallId: text('tool_call_id'),
    name: text('name'),
    contentHash: text('content_hash').notNull(),
    tokens: integer('tokens').notNull(),
    pinned: boolean('pinned').notNull().default(false),
    /** complete | incomplete (reply cut short) | superseded (regenerated or diverged) */
    status: text('status').notNull(),
    model: text('model'),
    usage: text('usage'),
    generationId: text('generation_id'),
    requestId: text('request_id'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** The Responses API call that brought or produced the item (responses.id), when one did. */
    responseId: text('response_id'),
    /** The item exactly as the Responses API carries it (JSON text): what a rebuilt input sends back. */
    raw: text('raw'),
    /** The id the raw item carries (`msg_…`, `fc_…`, `rs_…`), which an `item_reference` names. */
    itemRef: text('item_ref'),
    /** The item's text for lexical retrieval (at most 64 KiB of it); `search` is its stemmed vector. */
    searchText: text('search_text'),
    search: tsvector('search').generatedAlwaysAs(sql`to_tsvector('english', coalesce(search_text, ''))`),
  },
  (t) => [
    uniqueIndex('thread_items_thread_seq_idx').on(t.workspaceId, t.threadId, t.seq),
    // No full-text index: retrieval searches one thread's span of messages (found by seq), and an
    // index over every thread's words only ever misled the planner there (see thread-store.ts).
    index('thread_items_pinned_idx')
      .on(t.workspaceId, t.threadId)
      .where(sql`${t.pinned}`),
    index('thread_items_response_idx')
      .on(t.workspaceId, t.responseId, t.seq)
      .where(sql`${t.responseId} is not null`),
    index('thread_items_ref_idx')
      .on(t.workspaceId, t.itemRef)
      .where(sql`${t.itemRef} is not null`),
  ],
);

/**
 * Background work of thread memory that must survive restarts and run once across instances
 * (today: embedding new items). Claimed with FOR UPDATE SKIP LOCKED; a claim expires, so a job
 * whose instance died is taken up again.
 */
export const memoryJobs = pgTable(
  'memory_jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    workspaceId: text('workspace_id').notNull(),
    threadId: text('thread_id').notNull(),
    itemId: text('item_id').notNull(),
    attempts: integer('attempts').notNull().default(0),
    runAfter: timestamp('run_after', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    claimedUntil: timestamp('claimed_until', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('memory_jobs_due_idx').on(t.runAfter)],
);

/** An item's embedding (float32, little-endian, base64: the same on every driver), for vector retrieval. */
export const threadItemEmbeddings = pgTable(
  'thread_item_embeddings',
  {
    itemId: text('item_id').primaryKey(),
    workspaceId: text('workspace_id').notNull(),
    threadId: text('thread_id').notNull(),
    seq: integer('seq').notNull(),
    model: text('model').notNull(),
    dims: integer('dims').notNull(),
    embedding: text('embedding').notNull(),
  },
  (t) => [index('thread_item_embeddings_thread_idx').on(t.workspaceId, t.threadId, t.seq)],
);
