import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, gt, inArray, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { threadItems, threads } from '../db/schema/index.js';

export type ThreadRow = typeof threads.$inferSelect;
export type ItemRow = typeof threadItems.$inferSelect;
export type NewItem = Omit<typeof threadItems.$inferInsert, 'workspaceId' | 'threadId' | 'seq' | 'id'> & { id?: string };

export const newItemId = () => `itm_${randomBytes(12).toString('base64url')}`;

/** Threads and their items. Every query is scoped by workspace: a thread id alone finds nothing. */
export function createThreadStore(db: Db) {
  const inThread = (workspaceId: string, threadId: string) => and(eq(threadItems.workspaceId, workspaceId), eq(threadItems.threadId, threadId));

  return {
    async getThread(workspaceId: string, threadId: string): Promise<ThreadRow | undefined> {
      const [row] = await db
        .select()
        .from(threads)
        .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId)))
        .limit(1);
      return row;
    },

    /** What context assembly needs: the thread, its newest active messages (oldest first) and pinned items. */
    async loadView(workspaceId: string, threadId: string, limit: number) {
      const [thread, recent, pinned] = await Promise.all([
        this.getThread(workspaceId, threadId),
        db
          .select()
          .from(threadItems)
          .where(and(inThread(workspaceId, threadId), eq(threadItems.kind, 'message'), eq(threadItems.status, 'complete')))
          .orderBy(desc(threadItems.seq))
          .limit(limit),
        db
          .select()
          .from(threadItems)
          .where(and(inThread(workspaceId, threadId), eq(threadItems.pinned, true), ne(threadItems.status, 'superseded')))
          .orderBy(asc(threadItems.seq)),
      ]);
      return { thread, recent: recent.reverse(), pinned };
    },

    /**
     * Appends items under one reserved range of sequence numbers and marks superseded ones, in one
     * transaction. The reservation is an atomic update of the thread's counter (which also creates
     * the thread on first use), so concurrent writers, on any instance, never interleave or collide.
     * Idempotent: an exchange whose first item already exists is skipped.
     */
    async appendItems(workspaceId: string, threadId: string, items: NewItem[], supersedeSeqs: number[] = []): Promise<ItemRow[]> {
      if (items.length === 0 && supersedeSeqs.length === 0) return [];
      return db.transaction(async (tx) => {
        if (items[0]?.id) {
          const [exists] = await tx.select({ id: threadItems.id }).from(threadItems).where(eq(threadItems.id, items[0].id)).limit(1);
          if (exists) return [];
        }
        const [reserved] = await tx
          .insert(threads)
          .values({ workspaceId, id: threadId, nextSeq: 1 + items.length })
          .onConflictDoUpdate({
            target: [threads.workspaceId, threads.id],
            set: { nextSeq: sql`${threads.nextSeq} + ${items.length}`, updatedAt: sql`now()` },
          })
          .returning({ nextSeq: threads.nextSeq });
        const first = reserved.nextSeq - items.length;
        if (supersedeSeqs.length) {
          await tx
            .update(threadItems)
            .set({ status: 'superseded' })
            .where(and(inThread(workspaceId, threadId), inArray(threadItems.seq, supersedeSeqs)));
        }
        if (items.length === 0) return [];
        return tx
          .insert(threadItems)
          .values(items.map((item, i) => ({ ...item, id: item.id ?? newItemId(), workspaceId, threadId, seq: first + i })))
          .returning();
      });
    },

    async ensureThread(workspaceId: string, threadId: string, fields: { title?: string | null; metadata?: Record<string, unknown> | null } = {}) {
      const [row] = await db
        .insert(threads)
        .values({ workspaceId, id: threadId, title: fields.title ?? null, metadata: fields.metadata ?? null })
        .onConflictDoNothing()
        .returning();
      return row ?? (await this.getThread(workspaceId, threadId));
    },

    async listThreads(workspaceId: string, limit: number, after?: string) {
      return db
        .select()
        .from(threads)
        .where(and(eq(threads.workspaceId, workspaceId), after ? gt(threads.id, after) : undefined))
        .orderBy(asc(threads.id))
        .limit(limit);
    },

    async updateThread(workspaceId: string, threadId: string, set: { title?: string | null; metadata?: Record<string, unknown> | null }) {
      const [row] = await db
        .update(threads)
        .set({ ...set, updatedAt: sql`now()` })
        .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId)))
        .returning();
      return row;
    },

    async deleteThread(workspaceId: string, threadId: string): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx.delete(threadItems).where(inThread(workspaceId, threadId));
        const gone = await tx
          .delete(threads)
          .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId)))
          .returning({ id: threads.id });
        return gone.length > 0;
      });
    },

    async listItems(workspaceId: string, threadId: string, limit: number, afterSeq: number) {
      return db
        .select()
        .from(threadItems)
        .where(and(inThread(workspaceId, threadId), gt(threadItems.seq, afterSeq)))
        .orderBy(asc(threadItems.seq))
        .limit(limit);
    },

    async getItem(workspaceId: string, threadId: string, itemId: string) {
      const [row] = await db
        .select()
        .from(threadItems)
        .where(and(inThread(workspaceId, threadId), eq(threadItems.id, itemId)))
        .limit(1);
      return row;
    },

    async updateItem(workspaceId: string, threadId: string, itemId: string, set: Partial<Pick<ItemRow, 'content' | 'pinned' | 'status' | 'contentHash' | 'tokens'>>) {
      const [row] = await db
        .update(threadItems)
        .set(set)
        .where(and(inThread(workspaceId, threadId), eq(threadItems.id, itemId)))
        .returning();
      return row;
    },

    async deleteItem(workspaceId: string, threadId: string, itemId: string): Promise<boolean> {
      const gone = await db
        .delete(threadItems)
        .where(and(inThread(workspaceId, threadId), eq(threadItems.id, itemId)))
        .returning({ id: threadItems.id });
      return gone.length > 0;
    },

    /** Items eligible for the next summary: complete messages after the summarized range, oldest first. */
    async unsummarized(workspaceId: string, threadId: string, afterSeq: number, limit: number) {
      return db
        .select()
        .from(threadItems)
        .where(and(inThread(workspaceId, threadId), eq(threadItems.kind, 'message'), eq(threadItems.status, 'complete'), gt(threadItems.seq, afterSeq)))
        .orderBy(asc(threadItems.seq))
        .limit(limit);
    },

    /** Stores a new summary only if it moves forward (a concurrent job may have been faster). */
    async saveSummary(workspaceId: string, threadId: string, summary: string, uptoSeq: number, previousUpto: number): Promise<boolean> {
      const rows = await db
        .update(threads)
        .set({ summary, summaryUptoSeq: uptoSeq, updatedAt: sql`now()` })
        .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId), eq(threads.summaryUptoSeq, previousUpto)))
        .returning({ id: threads.id });
      return rows.length > 0;
    },
  };
}

export type ThreadStore = ReturnType<typeof createThreadStore>;
