import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { GatewayError } from '../errors.js';
import { storableText } from '../db/storable.js';
import { responses } from '../db/schema/index.js';
import type { ItemRow, ThreadStore } from '../memory/thread-store.js';
import { itemsOfChatRow, threadItemOf, type ResponseItem, type StorableItemOptions } from './items.js';

export type StoredResponse = typeof responses.$inferSelect;

/** How long a chain may be followed back (a cycle cannot occur, ids come from the upstream; this bounds the walk anyway). */
const MAX_CHAIN = 10_000;
/** The most items of a conversation a rebuilt input reads (the context window then decides how many go). */
const CONVERSATION_LOAD = 2_000;
const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, any>[];

/** A stored item as the Responses API sends it back: its raw form, else (written by chat, or edited) rebuilt from the chat form. */
export function responseItemsOfRow(row: ItemRow & { raw?: string | null }): ResponseItem[] {
  if (row.raw) {
    try {
      return [JSON.parse(row.raw)];
    } catch {
      // an unreadable raw form: fall back to the chat form below
    }
  }
  if (row.kind !== 'message') return [];
  return itemsOfChatRow(row);
}

/**
 * Stored responses. A response's items are thread items (its thread: the conversation it named, or
 * the thread of the response it continued, or a thread of its own named after it), so a
 * conversation, a chain of responses and thread memory are one store with one set of rules.
 */
export function createResponseStore(db: Db, threads: ThreadStore, items: StorableItemOptions) {
  return {
    async get(workspaceId: string, id: string): Promise<StoredResponse | undefined> {
      const [row] = await db
        .select()
        .from(responses)
        .where(and(eq(responses.workspaceId, workspaceId), eq(responses.id, id)))
        .limit(1);
      return row;
    },

    /**
     * Stores a finished response: its new input items, then its output items, appended to its
     * thread, and its row, in one transaction. Before the client has the answer (read-your-writes:
     * a chained call made right after finds it).
     */
    async save(args: {
      workspaceId: string;
      threadId: string;
      response: Record<string, any>;
      input: ResponseItem[];
      output: ResponseItem[];
      previousResponseId: string | null;
      conversationId: string | null;
      requestId: string;
      /** False (`store: false` on a conversation): the turn goes into the thread, but no response row is kept. */
      retrievable?: boolean;
    }): Promise<void> {
      const id = String(args.response.id);
      const rows = [
        ...args.input.map((item) => threadItemOf(item, id, items, { requestId: args.requestId })),
        ...args.output.map((item) =>
          threadItemOf(item, id, items, {
            requestId: args.requestId,
            model: typeof args.response.model === 'string' ? args.response.model : null,
            generationId: id,
          }),
        ),
      ];
      const writeRow = async (tx: Pick<Db, 'insert'>) => {
        if (args.retrievable === false) return;
        await tx
          .insert(responses)
          .values({
            workspaceId: args.workspaceId,
            id,
            threadId: args.threadId,
            previousResponseId: args.previousResponseId,
            conversationId: args.conversationId,
            model: typeof args.response.model === 'string' ? args.response.model : null,
            status: String(args.response.status ?? 'completed'),
            inputCount: args.input.length,
            body: storableText(JSON.stringify(args.response)),
          })
          .onConflictDoNothing();
      };
      // Items and row in one transaction; a response with no items at all is its row alone.
      if (rows.length === 0) await writeRow(db);
      else await threads.appendItems(args.workspaceId, args.threadId, rows, [], writeRow);
    },

    /**
     * The whole input a chained call continues: every response of the chain back from `id`
     * (oldest first), each one's input items and output items, in thread order.
     */
    async chainItems(workspaceId: string, id: string): Promise<{ seq: number; tokens: number; item: ResponseItem }[]> {
      const chain = rowsOf(
        await db.execute(sql`
          with recursive chain (id, prev, depth) as (
            select id, previous_response_id, 0 from responses where workspace_id = ${workspaceId} and id = ${id}
            union all
            select r.id, r.previous_response_id, c.depth + 1 from responses r
            join chain c on r.workspace_id = ${workspaceId} and r.id = c.prev
            where c.depth < ${MAX_CHAIN})
          select id from chain`),
      ).map((r) => String(r.id));
      const rows = await threads.responseItems(workspaceId, chain);
      return rows.flatMap((row) => responseItemsOfRow(row).map((item) => ({ seq: row.seq, tokens: row.tokens, item })));
    },

    /**
     * `item_reference` items replaced by the stored items they name (this workspace's only): the
     * upstream is stateless and could not resolve them. An unknown reference is the client's error.
     */
    async resolveReferences(workspaceId: string, input: ResponseItem[]): Promise<ResponseItem[]> {
      if (!input.some((item) => item.type === 'item_reference')) return input;
      const out: ResponseItem[] = [];
      for (const [i, item] of input.entries()) {
        if (item.type !== 'item_reference') {
          out.push(item);
          continue;
        }
        const row = typeof item.id === 'string' ? await threads.findByRef(workspaceId, item.id) : undefined;
        const resolved = row ? responseItemsOfRow(row) : [];
        if (resolved.length === 0)
          throw new GatewayError('invalid_value', `Item with id '${String(item.id)}' not found.`, { param: `input[${i}].id` });
        out.push(...resolved);
      }
      return out;
    },

    /** The newest items of a conversation (a thread) as a rebuilt input starts with them, oldest first. */
    async threadHistory(workspaceId: string, threadId: string): Promise<{ seq: number; tokens: number; id: string; item: ResponseItem }[]> {
      const rows = await threads.conversationItems(workspaceId, threadId, CONVERSATION_LOAD);
      return rows.flatMap((row) => responseItemsOfRow(row).map((item) => ({ seq: row.seq, tokens: row.tokens, id: row.id, item })));
    },

    /** Appends items to a conversation outside a response (POST /v1/conversations/{id}/items). */
    async appendItems(workspaceId: string, threadId: string, added: ResponseItem[]): Promise<ItemRow[]> {
      return threads.appendItems(
        workspaceId,
        threadId,
        added.map((item) => threadItemOf(item, null, items)),
      );
    },

    /** A response's own input items, with their item ids, oldest first. */
    async inputItems(workspaceId: string, stored: StoredResponse): Promise<{ id: string; item: ResponseItem }[]> {
      const rows = await threads.responseItems(workspaceId, [stored.id]);
      return rows.slice(0, stored.inputCount).flatMap((row) => responseItemsOfRow(row).map((item) => ({ id: row.id, item })));
    },

    /** Deletes a response and its items (a chain through it then starts after it). */
    async delete(workspaceId: string, stored: StoredResponse): Promise<void> {
      await threads.deleteResponseItems(workspaceId, stored.threadId, stored.id, async (tx) => {
        await tx.delete(responses).where(and(eq(responses.workspaceId, workspaceId), eq(responses.id, stored.id)));
      });
    },
  };
}

export type ResponseStore = ReturnType<typeof createResponseStore>;
