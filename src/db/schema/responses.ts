import { index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Stored Responses API calls (`store`, the default). The response's items live in its thread
 * (thread_items with this response_id: first its `input_count` new input items, then its output),
 * so responses, conversations and thread memory are one store. The id is the upstream's own
 * (`resp_…`), the one its stream events carry; it is unique per workspace.
 */
export const responses = pgTable(
  'responses',
  {
    workspaceId: text('workspace_id').notNull(),
    id: text('id').notNull(),
    threadId: text('thread_id').notNull(),
    previousResponseId: text('previous_response_id'),
    /** Set when the call named a conversation (the thread is that conversation). */
    conversationId: text('conversation_id'),
    model: text('model'),
    status: text('status').notNull(),
    /** How many of the response's items in the thread are its input (the rest is its output). */
    inputCount: integer('input_count').notNull(),
    /** The response object as the client got it (JSON text). */
    body: text('body').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.id] }), index('responses_thread_idx').on(t.workspaceId, t.threadId)],
);
