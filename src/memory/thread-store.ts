import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, getTableColumns, gt, inArray, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { runRaw } from '../db/raw.js';
import { arrayElement } from '../usage/ledger-store.js';
import { storableDeep, storableOrNull, storableText } from '../db/storable.js';
import { memoryJobs, threadItems, threads } from '../db/schema/index.js';
import { contentText } from '../tokens/count-tokens.js';
import {
  Dictionary,
  compactDictionary,
  docAt,
  heldPart,
  indexedDoc,
  parseTsvector,
  rankSpan,
  withFetched,
  withoutSeqs,
  type SpanIndex,
} from './lexical-index.js';

export type ThreadRow = typeof threads.$inferSelect;
// Every column but `search` (the stemmed vector, generated in the database and only ever searched
// there): reading or returning it would ship several times an item's size for nothing.
const { search: _search, ...itemColumns } = getTableColumns(threadItems);
type RawItem = Omit<typeof threadItems.$inferSelect, 'search'>;
type JsonFields = 'content' | 'toolCalls' | 'usage';
/** An item with its JSON fields decoded (they are stored as JSON text, see the schema). */
export type ItemRow = Omit<RawItem, JsonFields> & { content: unknown; toolCalls: unknown; usage: unknown };
export type NewItem = Omit<typeof threadItems.$inferInsert, 'workspaceId' | 'threadId' | 'seq' | 'id' | JsonFields> & {
  id?: string;
  content?: unknown;
  toolCalls?: unknown;
  usage?: unknown;
};
/** What context assembly reads of the recent history (a narrow, fast query). */
export type HistoryRow = Pick<ItemRow, 'seq' | 'role' | 'content' | 'toolCalls' | 'toolCallId' | 'name' | 'contentHash' | 'tokens'>;

const encode = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));
function decode(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
/** A raw history row (snake_case columns, JSON as text) as context assembly reads it. */
const historyRowOf = (r: Record<string, any>): HistoryRow => ({
  seq: Number(r.seq),
  role: r.role,
  content: decode(r.content),
  toolCalls: decode(r.tool_calls),
  toolCallId: r.tool_call_id,
  name: r.name,
  contentHash: r.content_hash,
  tokens: Number(r.tokens),
});
const toRow = (r: RawItem): ItemRow => ({ ...r, content: decode(r.content), toolCalls: decode(r.toolCalls), usage: decode(r.usage) });
/** A raw threads row (snake_case) as the ORM would map it. */
const threadRowOf = (r: Record<string, any>, p = ''): ThreadRow => {
  const at = (v: unknown) => (v instanceof Date ? v : new Date(v as string));
  const metadata = r[`${p}metadata`];
  return {
    workspaceId: r[`${p}workspace_id`],
    id: r[`${p}id`],
    title: r[`${p}title`],
    metadata: typeof metadata === 'string' ? (decode(metadata) as Record<string, unknown>) : (metadata ?? null),
    nextSeq: Number(r[`${p}next_seq`]),
    version: Number(r[`${p}version`]),
    editVersion: Number(r[`${p}edit_version`] ?? 0),
    summary: r[`${p}summary`],
    summaryUptoSeq: Number(r[`${p}summary_upto_seq`]),
    createdAt: at(r[`${p}created_at`]),
    updatedAt: at(r[`${p}updated_at`]),
  };
};
/** What context assembly reads of a thread: its row, newest complete messages and pinned items. */
export interface ThreadView {
  thread: ThreadRow | undefined;
  recent: HistoryRow[];
  pinned: ItemRow[];
}
const rowsOf = (result: unknown) => (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Record<string, any>[];

/** The text lexical retrieval indexes for an item: its text content (and tool names), capped so a huge item cannot fail the write. */
function searchTextOf(item: NewItem): string | null {
  const calls = Array.isArray(item.toolCalls)
    ? (item.toolCalls as { function?: { name?: string } }[]).map((c) => c?.function?.name ?? '').join(' ')
    : '';
  const text = `${contentText(item.content)} ${calls}`.trim();
  return text ? storableText(text.slice(0, SEARCH_TEXT_MAX)) : null;
}
const SEARCH_TEXT_MAX = 65_536;
/** Messages before the injected history that retrieval looks through (1,000: ~1 ms on Postgres when all of them match). */
export const RETRIEVAL_SPAN = 1_000;

export const newItemId = () => `itm_${randomBytes(12).toString('base64url')}`;

const HISTORY_LIMIT = 400;

// The read path's statements, run prepared on the driver (see db/raw.ts): every request on a thread
// runs GET_THREAD (or SPAN_DOCS when retrieval looks); through the query builder each cost
// ~0.6 ms of CPU more, and unprepared, a parse and plan in the database every time.
const GET_THREAD = 'select * from threads where workspace_id = $1 and id = $2 limit 1';
const RECENT_HISTORY = `
  select seq, role, content, tool_calls, tool_call_id, name, content_hash, tokens
  from thread_items
  where workspace_id = $1 and thread_id = $2 and kind = 'message' and status = 'complete'
  order by seq desc
  limit $3`;
// Lexical retrieval's read (see lexical-index.ts): the thread row, the question's stemmed words and
// the complete messages of [$4, $5) (what this instance's index lacks of the span), with their
// stemmed words, in one statement (one snapshot: the row's next_seq bounds what the fetch covers).
// An empty range costs nothing beyond the thread row: the usual request on a long thread.
const SPAN_DOCS = `
  with t as (select * from threads where workspace_id = $1 and id = $2)
  select t.workspace_id as t_workspace_id, t.id as t_id, t.title as t_title, t.metadata as t_metadata,
    t.next_seq as t_next_seq, t.version as t_version, t.edit_version as t_edit_version, t.summary as t_summary,
    t.summary_upto_seq as t_summary_upto_seq, t.created_at as t_created_at, t.updated_at as t_updated_at,
    to_tsvector('english', $3::text)::text as q_lexemes,
    d.seq, d.role, d.content, d.tool_calls, d.tool_call_id, d.name, d.content_hash, d.tokens, d.search::text as lexemes
  from t left join thread_items d on d.workspace_id = $1 and d.thread_id = $2 and d.seq >= $4::int and d.seq < $5::int
    and d.kind = 'message' and d.status = 'complete'
  order by d.seq`;
// appendItems without `within`: the whole append as one prepared statement (one round trip, no
// transaction around it: a statement is atomic). The skip check, the reservation of the thread's
// seqs, the superseded marks, the items and their embedding jobs are CTEs; the items' columns travel
// as array literals in text (as the ledger's do), so the text never changes with the item count.
const APPEND_COLUMNS: readonly [string, string, (item: NewItem) => unknown][] = [
  ['id', 'text', (i) => i.id ?? newItemId()],
  ['kind', 'text', (i) => i.kind],
  ['role', 'text', (i) => i.role],
  ['content', 'text', (i) => encode(i.content)],
  ['tool_calls', 'text', (i) => encode(i.toolCalls)],
  ['tool_call_id', 'text', (i) => i.toolCallId],
  ['name', 'text', (i) => i.name],
  ['content_hash', 'text', (i) => i.contentHash],
  ['tokens', 'int', (i) => i.tokens],
  ['pinned', 'boolean', (i) => i.pinned ?? false],
  ['status', 'text', (i) => i.status],
  ['model', 'text', (i) => i.model],
  ['usage', 'text', (i) => encode(i.usage)],
  ['generation_id', 'text', (i) => i.generationId],
  ['request_id', 'text', (i) => i.requestId],
  ['response_id', 'text', (i) => i.responseId],
  ['raw', 'text', (i) => i.raw],
  ['item_ref', 'text', (i) => i.itemRef],
  ['search_text', 'text', (i) => searchTextOf(i)],
];
const ITEM_COLUMNS_SQL =
  'id, workspace_id, thread_id, seq, kind, role, content, tool_calls, tool_call_id, name, content_hash, tokens, pinned, status, model, usage, generation_id, request_id, created_at, response_id, raw, item_ref, search_text';
const APPEND = `
  with skip as (select exists (select 1 from thread_items where id = $3) as found),
  reserved as (
    insert into threads as t (workspace_id, id, next_seq)
    select $1, $2, 1 + $4::int from skip where not skip.found
    on conflict (workspace_id, id) do update set next_seq = t.next_seq + $4::int, version = t.version + 1,
      edit_version = t.edit_version + (cardinality($5::text::int[]) > 0)::int, updated_at = now()
    returning t.next_seq, t.version, t.edit_version, t.created_at),
  marked as (
    update thread_items set status = 'superseded'
    where workspace_id = $1 and thread_id = $2 and seq = any($5::text::int[]) and exists (select 1 from reserved)
    returning seq),
  added as (
    insert into thread_items (workspace_id, thread_id, seq, ${APPEND_COLUMNS.map(([name]) => name).join(', ')})
    select $1, $2, r.next_seq - $4::int + (u.ord::int - 1), ${APPEND_COLUMNS.map(([name]) => `u.${name}`).join(', ')}
    from reserved r,
      unnest(${APPEND_COLUMNS.map(([, type], c) => `$${c + 7}::text::${type}[]`).join(', ')})
        with ordinality as u(${APPEND_COLUMNS.map(([name]) => name).join(', ')}, ord)
    returning ${ITEM_COLUMNS_SQL}),
  jobs as (
    insert into memory_jobs (workspace_id, thread_id, item_id)
    select $1, $2, id from added where $6::boolean and kind = 'message' and status = 'complete' and search_text is not null
    returning 1)
  select r.next_seq as r_next_seq, r.version as r_version, r.edit_version as r_edit_version, r.created_at as r_created_at, (select count(*) from marked)::int as r_marked,
    (select count(*) from jobs)::int as r_jobs, a.*
  from reserved r left join added a on true
  order by a.seq`;

/** A raw thread_items row (snake_case, JSON as text) as the ORM would map it, then decoded. */
const itemRowOf = (r: Record<string, any>): ItemRow => ({
  ...historyRowOf(r),
  id: r.id,
  workspaceId: r.workspace_id,
  threadId: r.thread_id,
  kind: r.kind,
  pinned: r.pinned === true || r.pinned === 't',
  status: r.status,
  model: r.model,
  usage: decode(r.usage),
  generationId: r.generation_id,
  requestId: r.request_id,
  createdAt: r.created_at instanceof Date ? r.created_at : new Date(r.created_at),
  responseId: r.response_id,
  raw: r.raw,
  itemRef: r.item_ref,
  searchText: r.search_text,
});

const CACHE_THREADS = 2_000;
/** What lexical indexes of thread spans may hold in all by default (MEMORY_INDEX_CACHE_MB; LRU by thread beyond it), and for how many threads. */
const LEXICAL_CACHE_BYTES = 128 * 1024 * 1024;
const LEXICAL_CACHE_THREADS = 2_000;

/** pgvector's text form of a vector: `[0.1,0.2,…]`. */
export function vectorLiteral(v: ArrayLike<number>): string {
  return `[${Array.from(v, (x) => (Number.isFinite(x) ? x : 0)).join(',')}]`;
}

/**
 * Threads and their items. Every query is scoped by workspace: a thread id alone finds nothing.
 * The recent history of busy threads is cached in process and trusted only while the thread's
 * version (bumped by every change, on any instance) is the one it was read at.
 */
export function createThreadStore(db: Db, opts: { embed?: boolean; vectors?: boolean; indexCacheBytes?: number } = {}) {
  const indexCacheBytes = opts.indexCacheBytes ?? LEXICAL_CACHE_BYTES;
  const inThread = (workspaceId: string, threadId: string) =>
    and(eq(threadItems.workspaceId, workspaceId), eq(threadItems.threadId, threadId));
  const cache = new Map<string, { version: string; recent: HistoryRow[]; pinned: ItemRow[]; thread?: ThreadRow }>();
  const cacheKey = (workspaceId: string, threadId: string) => `${workspaceId}\u0000${threadId}`;
  // A version is the counter plus the thread's creation time: a deleted and re-created thread starts again at 1.
  const versionOf = (t: { version: number; createdAt: Date }) => `${t.createdAt.getTime()}:${t.version}`;
  const remember = (key: string, version: string, recent: HistoryRow[], pinned: ItemRow[], thread?: ThreadRow) => {
    cache.delete(key);
    if (cache.size >= CACHE_THREADS) cache.delete(cache.keys().next().value!);
    cache.set(key, { version, recent, pinned, thread });
  };
  // Lexical indexes of threads' spans (lexical-index.ts), by thread; LRU within indexCacheBytes.
  const lexical = new Map<string, SpanIndex>();
  let lexicalBytes = 0;
  const identityOf = (t: { createdAt: Date; editVersion: number }) => `${t.createdAt.getTime()}:${t.editVersion}`;
  const editOf = (identity: string) => Number(identity.slice(identity.indexOf(':') + 1));
  function keepIndex(key: string, next: SpanIndex, base: SpanIndex | undefined): void {
    const current = lexical.get(key);
    // Another request installed a newer identity meanwhile (an edit it saw and this one did not): keep that.
    if (current && current !== base && current.identity !== next.identity) {
      const [c, n] = [current.identity, next.identity];
      if (c.slice(0, c.indexOf(':')) === n.slice(0, n.indexOf(':')) && editOf(c) > editOf(n)) return;
    }
    if (current) {
      lexicalBytes -= current.bytes;
      lexical.delete(key);
    }
    lexical.set(key, next);
    lexicalBytes += next.bytes;
    while ((lexicalBytes > indexCacheBytes || lexical.size > LEXICAL_CACHE_THREADS) && lexical.size > 0) {
      const [oldest, index] = lexical.entries().next().value!;
      lexicalBytes -= index.bytes;
      lexical.delete(oldest);
    }
  }
  const forgetIndex = (key: string) => {
    const current = lexical.get(key);
    if (current) lexicalBytes -= current.bytes;
    lexical.delete(key);
  };

  /**
   * Lexical retrieval with the thread row read in the same statement: the complete messages of the
   * RETRIEVAL_SPAN before `beforeSeq` sharing stemmed words with `query`, ranked (BM25) here over
   * this instance's index of the span; only what the index lacks is read with the row.
   */
  async function searchSpan(
    workspaceId: string,
    threadId: string,
    query: string,
    beforeSeq: number,
    limit: number,
  ): Promise<{ thread: ThreadRow | undefined; found: HistoryRow[] }> {
    const key = cacheKey(workspaceId, threadId);
    const words = /[\p{L}\p{N}]/u.test(query) ? query.slice(0, 2_000) : '';
    const hi = Math.max(0, beforeSeq);
    const lo = Math.max(0, hi - RETRIEVAL_SPAN);
    const stored = lexical.get(key);
    const base = stored && compactDictionary(stored);
    const dict = base?.dict ?? new Dictionary();
    const read = async (held: { from: number; to: number }) => {
      // One range: what the index lacks above or below what it holds (all of the span if both).
      const [from, to] =
        held.to <= held.from
          ? [lo, hi]
          : held.from <= lo
            ? [Math.max(lo, held.to), Math.max(lo, held.to, hi)]
            : held.to >= hi
              ? [lo, Math.min(hi, held.from)]
              : [lo, hi];
      const rows = await runRaw(db, SPAN_DOCS, [workspaceId, threadId, words, from, to]);
      const thread = rows.length ? threadRowOf(rows[0], 't_') : undefined;
      const docs = rows
        .filter((r) => r.seq !== null && r.seq !== undefined)
        .map((r) => {
          const lexemes = String(r.lexemes ?? '');
          const bytes = String(r.content ?? '').length + String(r.tool_calls ?? '').length;
          // Frozen: the index's rows are handed to every request that retrieves them.
          return indexedDoc(Object.freeze(historyRowOf(r)), lexemes, bytes, dict);
        });
      return { thread, docs, terms: rows.length ? [...parseTsvector(String(rows[0].q_lexemes ?? '')).keys()] : [] };
    };
    const held = heldPart(base, lo, hi);
    let got = await read(held);
    if (!got.thread) {
      forgetIndex(key);
      return { thread: undefined, found: [] };
    }
    let identity = identityOf(got.thread);
    // The index was of another identity (items were edited, or the thread re-created): read the whole span.
    if (held.to > held.from && base!.identity !== identity) {
      got = await read({ from: 0, to: 0 });
      if (!got.thread) {
        forgetIndex(key);
        return { thread: undefined, found: [] };
      }
      identity = identityOf(got.thread);
      const index = withFetched(undefined, dict, { from: 0, to: 0 }, identity, lo, hi, got.thread.nextSeq, got.docs);
      keepIndex(key, index, stored);
      return { thread: got.thread, found: ranked(index) };
    }
    const covered = !!base && base.identity === identity && base.from <= lo && base.to >= Math.min(hi, got.thread.nextSeq);
    const index = covered ? base : withFetched(base, dict, held, identity, lo, hi, got.thread.nextSeq, got.docs);
    if (index !== stored) keepIndex(key, index, stored);
    else if (lexical.get(key) === stored) {
      // Used: most recently.
      lexical.delete(key);
      lexical.set(key, stored);
    }
    return { thread: got.thread, found: ranked(index) };

    function ranked(index: SpanIndex) {
      return rankSpan(index, got.terms, lo, hi, limit).map((h) => h.row);
    }
  }

  /** Marks a thread changed (for every instance) after an item edit outside appendItems. */
  const bump = async (workspaceId: string, threadId: string) => {
    cache.delete(cacheKey(workspaceId, threadId));
    forgetIndex(cacheKey(workspaceId, threadId));
    await db
      .update(threads)
      .set({ version: sql`${threads.version} + 1`, editVersion: sql`${threads.editVersion} + 1`, updatedAt: sql`now()` })
      .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId)));
  };

  /** Keeps this instance's cached history current after an append, when nobody else changed the thread meanwhile. */
  function afterAppend(
    workspaceId: string,
    threadId: string,
    written: ItemRow[],
    supersedeSeqs: number[],
    version: number,
    nextSeq: number,
    created: Date | undefined,
    editVersion: number,
  ): void {
    const key = cacheKey(workspaceId, threadId);
    // The span index: this append's supersede marks alone changed the items (its edit_version is
    // the index's plus one) → the index without them; any other change → dropped (read again).
    const index = lexical.get(key);
    if (index && created && supersedeSeqs.length) {
      if (index.identity === identityOf({ createdAt: created, editVersion: editVersion - 1 }))
        keepIndex(key, withoutSeqs(index, supersedeSeqs, identityOf({ createdAt: created, editVersion })), index);
      else forgetIndex(key);
    }
    const cached = cache.get(key);
    if (cached && version && created && cached.version === versionOf({ version: version - 1, createdAt: created })) {
      const superseded = new Set(supersedeSeqs);
      const added = written
        .filter((r) => r.kind === 'message' && r.status === 'complete')
        .map((r) => ({
          seq: r.seq,
          role: r.role,
          content: r.content,
          toolCalls: r.toolCalls,
          toolCallId: r.toolCallId,
          name: r.name,
          contentHash: r.contentHash,
          tokens: r.tokens,
        }));
      const pinned = [
        ...cached.pinned.filter((r) => !superseded.has(r.seq)),
        ...written.filter((r) => r.pinned && r.status !== 'superseded'),
      ];
      const thread = cached.thread && { ...cached.thread, version, nextSeq };
      remember(
        key,
        versionOf({ version, createdAt: created }),
        [...cached.recent.filter((r) => !superseded.has(r.seq)), ...added].slice(-HISTORY_LIMIT),
        pinned,
        thread,
      );
    } else {
      cache.delete(key);
    }
  }

  return {
    /** The thread row (checked by every request on a thread: a prepared statement, no query builder). */
    async getThread(workspaceId: string, threadId: string): Promise<ThreadRow | undefined> {
      const [row] = await runRaw(db, GET_THREAD, [workspaceId, threadId]);
      return row && threadRowOf(row);
    },

    /**
     * What context assembly needs: the thread, its newest active messages (oldest first) and pinned
     * items. While the thread's version is unchanged this is one small query (the thread row); else
     * the history query selects only what assembly reads and skips the ORM's row mapping (on a long
     * thread that mapping cost several times the query itself).
     */
    async loadView(workspaceId: string, threadId: string): Promise<ThreadView> {
      return this.viewOf(workspaceId, threadId, await this.getThread(workspaceId, threadId));
    },

    /**
     * loadView and lexical retrieval (searchItems) in one statement: one round trip for a request
     * whose retrieval could start from this instance's cached view (the caller checks that the
     * view it gets is the one it searched for).
     */
    async loadViewSearching(
      workspaceId: string,
      threadId: string,
      search: { query: string; beforeSeq: number; limit: number },
    ): Promise<{ view: ThreadView; found: HistoryRow[] }> {
      const { thread, found } = await searchSpan(workspaceId, threadId, search.query, search.beforeSeq, search.limit);
      return { view: await this.viewOf(workspaceId, threadId, thread), found };
    },

    /** The view of a thread whose row was just read: the cached history while the version holds, else read now. */
    async viewOf(workspaceId: string, threadId: string, thread: ThreadRow | undefined): Promise<ThreadView> {
      const key = cacheKey(workspaceId, threadId);
      if (!thread) return { thread, recent: [] as HistoryRow[], pinned: [] as ItemRow[] };
      const cached = cache.get(key);
      if (cached && cached.version === versionOf(thread)) {
        cached.thread = thread;
        return { thread, recent: cached.recent, pinned: cached.pinned };
      }
      const [recent, pinned] = await Promise.all([
        runRaw(db, RECENT_HISTORY, [workspaceId, threadId, HISTORY_LIMIT]),
        db
          .select(itemColumns)
          .from(threadItems)
          .where(and(inThread(workspaceId, threadId), eq(threadItems.pinned, true), ne(threadItems.status, 'superseded')))
          .orderBy(asc(threadItems.seq)),
      ]);
      const history: HistoryRow[] = recent.reverse().map(historyRowOf);
      const pinnedRows = pinned.map(toRow);
      remember(key, versionOf(thread), history, pinnedRows, thread);
      return { thread, recent: history, pinned: pinnedRows };
    },

    /**
     * This instance's cached view of a thread, unchecked (no query): what the thread most likely
     * holds, for work that can start before loadView confirms it (retrieval). Undefined when not cached.
     */
    peekView(workspaceId: string, threadId: string): { thread: ThreadRow; recent: HistoryRow[]; pinned: ItemRow[] } | undefined {
      const cached = cache.get(cacheKey(workspaceId, threadId));
      return cached?.thread ? { thread: cached.thread, recent: cached.recent, pinned: cached.pinned } : undefined;
    },

    /**
     * Lexical retrieval: the thread's complete messages older than `beforeSeq` (and among the
     * RETRIEVAL_SPAN before it, which bounds the cost on any thread length) that share stemmed
     * words with `query` (any of them, ranked by BM25 over the span: lexical-index.ts), best first.
     */
    async searchItems(workspaceId: string, threadId: string, query: string, beforeSeq: number, limit: number): Promise<HistoryRow[]> {
      return (await searchSpan(workspaceId, threadId, query, beforeSeq, limit)).found;
    },

    /** What this instance's lexical indexes hold: threads, and bytes as counted (and as their indexes sum). */
    indexStats(): { threads: number; bytes: number; summed: number } {
      let summed = 0;
      for (const index of lexical.values()) summed += index.bytes;
      return { threads: lexical.size, bytes: lexicalBytes, summed };
    },

    /** Stored embeddings of the thread's complete messages with seq in [fromSeq, beforeSeq). */
    async embeddingsBetween(
      workspaceId: string,
      threadId: string,
      fromSeq: number,
      beforeSeq: number,
    ): Promise<{ seq: number; embedding: string }[]> {
      const result = await db.execute(sql`
        select e.seq, e.embedding from thread_item_embeddings e
        join thread_items i on i.id = e.item_id and i.status = 'complete'
        where e.workspace_id = ${workspaceId} and e.thread_id = ${threadId} and e.seq >= ${fromSeq} and e.seq < ${beforeSeq}`);
      return rowsOf(result).map((r) => ({ seq: Number(r.seq), embedding: String(r.embedding) }));
    },

    /** Vector search runs in the database (pgvector); else embeddingsBetween feeds the gateway's own comparison. */
    vectorSearch: opts.vectors === true,

    /**
     * pgvector: the seqs of the thread's complete messages in [fromSeq, beforeSeq) nearest to
     * `query` by cosine distance, nearest first. An exact scan of the thread's span (its index on
     * thread and seq bounds it), so a thread filter never hides a match as an approximate index can.
     */
    async nearestItems(
      workspaceId: string,
      threadId: string,
      query: ArrayLike<number>,
      fromSeq: number,
      beforeSeq: number,
      limit: number,
    ): Promise<{ seq: number; score: number }[]> {
      const literal = vectorLiteral(query);
      const result = await db.execute(sql`
        select e.seq, 1 - (e.vec <=> ${literal}::vector) as score from thread_item_embeddings e
        join thread_items i on i.id = e.item_id and i.status = 'complete'
        where e.workspace_id = ${workspaceId} and e.thread_id = ${threadId} and e.seq >= ${fromSeq} and e.seq < ${beforeSeq}
          and e.dims = ${query.length} and e.vec is not null
        order by e.vec <=> ${literal}::vector, e.seq desc
        limit ${limit}`);
      return rowsOf(result).map((r) => ({ seq: Number(r.seq), score: Number(r.score) }));
    },

    /**
     * The thread's complete messages with these seqs, as history rows: from this instance's lexical
     * index where it covers them (vector retrieval's hits are in the span lexical retrieval just
     * read), else from the database.
     */
    async historyRows(workspaceId: string, threadId: string, wanted: number[]): Promise<HistoryRow[]> {
      const index = lexical.get(cacheKey(workspaceId, threadId));
      const held: HistoryRow[] = [];
      const seqs = index ? [] : wanted;
      if (index) {
        for (const seq of wanted) {
          if (seq < index.from || seq >= index.to) seqs.push(seq);
          else {
            const doc = docAt(index, seq);
            if (doc) held.push(doc.row);
          }
        }
      }
      if (seqs.length === 0) return held;
      const result = await db.execute(sql`
        select seq, role, content, tool_calls, tool_call_id, name, content_hash, tokens from thread_items
        where workspace_id = ${workspaceId} and thread_id = ${threadId} and status = 'complete' and kind = 'message'
          and seq in (${sql.join(
            seqs.map((n) => sql`${n}`),
            sql`, `,
          )})`);
      return held.concat(rowsOf(result).map(historyRowOf));
    },

    /**
     * Appends items under one reserved range of sequence numbers and marks superseded ones, in one
     * transaction. The reservation is an atomic update of the thread's counter (which also creates
     * the thread on first use), so concurrent writers, on any instance, never interleave or collide.
     * Idempotent: an exchange whose first item already exists is skipped.
     */
    async appendItems(
      workspaceId: string,
      threadId: string,
      items: NewItem[],
      supersedeSeqs: number[] = [],
      /** More writes that must commit with the items (a stored response's row), in the same transaction. */
      within?: (tx: Parameters<Parameters<Db['transaction']>[0]>[0], rows: ItemRow[]) => Promise<void>,
    ): Promise<ItemRow[]> {
      if (items.length === 0 && supersedeSeqs.length === 0) return [];
      let version = 0;
      let editVersion = 0;
      let nextSeq = 0;
      let created: Date | undefined;
      const written = await (within ? transactional() : oneStatement());
      afterAppend(workspaceId, threadId, written, supersedeSeqs, version, nextSeq, created, editVersion);
      return written;

      async function oneStatement(): Promise<ItemRow[]> {
        const literal = (values: unknown[]) => `{${values.map(arrayElement).join(',')}}`;
        const rows = await runRaw(db, APPEND, [
          workspaceId,
          threadId,
          items[0]?.id ?? '',
          items.length,
          literal(supersedeSeqs),
          opts.embed === true,
          ...APPEND_COLUMNS.map(([, , value]) => literal(items.map(value))),
        ]);
        if (!rows.length) return []; // skipped: the exchange is stored already
        version = Number(rows[0].r_version);
        editVersion = Number(rows[0].r_edit_version);
        nextSeq = Number(rows[0].r_next_seq);
        created = rows[0].r_created_at instanceof Date ? rows[0].r_created_at : new Date(rows[0].r_created_at as string);
        return rows.filter((r) => r.id !== null && r.id !== undefined).map(itemRowOf);
      }

      async function transactional(): Promise<ItemRow[]> {
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
              set: {
                nextSeq: sql`${threads.nextSeq} + ${items.length}`,
                version: sql`${threads.version} + 1`,
                editVersion: sql`${threads.editVersion} + ${supersedeSeqs.length > 0 ? 1 : 0}`,
                updatedAt: sql`now()`,
              },
            })
            .returning({
              nextSeq: threads.nextSeq,
              version: threads.version,
              editVersion: threads.editVersion,
              createdAt: threads.createdAt,
            });
          const first = reserved.nextSeq - items.length;
          nextSeq = reserved.nextSeq;
          version = reserved.version;
          editVersion = reserved.editVersion;
          created = reserved.createdAt;
          if (supersedeSeqs.length) {
            await tx
              .update(threadItems)
              .set({ status: 'superseded' })
              .where(and(inThread(workspaceId, threadId), inArray(threadItems.seq, supersedeSeqs)));
          }
          if (items.length === 0) return [] as ItemRow[];
          const rows = await tx
            .insert(threadItems)
            .values(
              items.map((item, i) => ({
                ...item,
                // Raw text columns made storable (JSON columns are escaped text already).
                role: storableOrNull(item.role),
                name: storableOrNull(item.name),
                toolCallId: storableOrNull(item.toolCallId),
                model: storableOrNull(item.model),
                generationId: storableOrNull(item.generationId),
                content: encode(item.content),
                searchText: searchTextOf(item),
                toolCalls: encode(item.toolCalls),
                usage: encode(item.usage),
                id: item.id ?? newItemId(),
                workspaceId,
                threadId,
                seq: first + i,
              })),
            )
            .returning(itemColumns);
          // Vector retrieval on: each new message with text gets an embedding job, in the same
          // transaction (so a restart never loses one).
          if (opts.embed) {
            const jobs = rows.filter((r) => r.kind === 'message' && r.status === 'complete' && r.searchText);
            if (jobs.length) await tx.insert(memoryJobs).values(jobs.map((r) => ({ workspaceId, threadId, itemId: r.id })));
          }
          const written = rows.map(toRow);
          if (within) await within(tx, written);
          return written;
        });
      }
    },

    async ensureThread(
      workspaceId: string,
      threadId: string,
      fields: { title?: string | null; metadata?: Record<string, unknown> | null } = {},
    ) {
      const [row] = await db
        .insert(threads)
        .values({ workspaceId, id: threadId, title: storableOrNull(fields.title), metadata: storableDeep(fields.metadata ?? null) })
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
        .set({
          ...(set.title !== undefined ? { title: storableOrNull(set.title) } : {}),
          ...(set.metadata !== undefined ? { metadata: storableDeep(set.metadata) } : {}),
          updatedAt: sql`now()`,
        })
        .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId)))
        .returning();
      return row;
    },

    async deleteThread(workspaceId: string, threadId: string): Promise<boolean> {
      cache.delete(cacheKey(workspaceId, threadId));
      forgetIndex(cacheKey(workspaceId, threadId));
      return db.transaction(async (tx) => {
        await tx.delete(threadItems).where(inThread(workspaceId, threadId));
        const gone = await tx
          .delete(threads)
          .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId)))
          .returning({ id: threads.id });
        return gone.length > 0;
      });
    },

    async listItems(workspaceId: string, threadId: string, limit: number, afterSeq: number): Promise<ItemRow[]> {
      const rows = await db
        .select(itemColumns)
        .from(threadItems)
        .where(and(inThread(workspaceId, threadId), gt(threadItems.seq, afterSeq)))
        .orderBy(asc(threadItems.seq))
        .limit(limit);
      return rows.map(toRow);
    },

    async getItem(workspaceId: string, threadId: string, itemId: string): Promise<ItemRow | undefined> {
      const [row] = await db
        .select(itemColumns)
        .from(threadItems)
        .where(and(inThread(workspaceId, threadId), eq(threadItems.id, itemId)))
        .limit(1);
      return row && toRow(row);
    },

    async updateItem(
      workspaceId: string,
      threadId: string,
      itemId: string,
      set: Partial<Pick<ItemRow, 'content' | 'pinned' | 'status' | 'contentHash' | 'tokens'>>,
    ) {
      const { content, ...rest } = set;
      const [row] = await db
        .update(threadItems)
        // An edited item's Responses form is gone with its old content: it is rebuilt from the chat form.
        .set({
          ...rest,
          ...(content !== undefined ? { content: encode(content), raw: null, searchText: searchTextOf({ content } as NewItem) } : {}),
        })
        .where(and(inThread(workspaceId, threadId), eq(threadItems.id, itemId)))
        .returning(itemColumns);
      if (row) await bump(workspaceId, threadId);
      return row && toRow(row);
    },

    async deleteItem(workspaceId: string, threadId: string, itemId: string): Promise<boolean> {
      const gone = await db
        .delete(threadItems)
        .where(and(inThread(workspaceId, threadId), eq(threadItems.id, itemId)))
        .returning({ id: threadItems.id });
      if (gone.length) await bump(workspaceId, threadId);
      return gone.length > 0;
    },

    /**
     * The items the given responses brought and produced, in thread order, whatever their kind
     * (the Responses API sends reasoning items back too). Superseded items are left out.
     */
    async responseItems(workspaceId: string, responseIds: string[]): Promise<(ItemRow & { raw: string | null })[]> {
      if (responseIds.length === 0) return [];
      const rows = await db
        .select(itemColumns)
        .from(threadItems)
        .where(
          and(eq(threadItems.workspaceId, workspaceId), inArray(threadItems.responseId, responseIds), ne(threadItems.status, 'superseded')),
        )
        .orderBy(asc(threadItems.seq));
      return rows.map(toRow);
    },

    /**
     * The newest `limit` items of a thread as a conversation holds them (every kind the Responses
     * API sends back: messages, tool calls and results, reasoning), oldest first; superseded ones
     * (an abandoned branch) left out.
     */
    async conversationItems(workspaceId: string, threadId: string, limit: number): Promise<ItemRow[]> {
      const rows = await db
        .select(itemColumns)
        .from(threadItems)
        .where(
          and(
            inThread(workspaceId, threadId),
            inArray(threadItems.kind, ['message', 'reasoning', 'item']),
            ne(threadItems.status, 'superseded'),
          ),
        )
        .orderBy(desc(threadItems.seq))
        .limit(limit);
      return rows.reverse().map(toRow);
    },

    /** An item of a thread by its own id, or by the id its Responses form carries (`msg_…`, `fc_…`). */
    async findItem(workspaceId: string, threadId: string, id: string): Promise<ItemRow | undefined> {
      const rows = await db
        .select(itemColumns)
        .from(threadItems)
        .where(and(inThread(workspaceId, threadId), sql`(${threadItems.id} = ${id} or ${threadItems.itemRef} = ${id})`))
        .limit(2);
      const row = rows.find((r) => r.id === id) ?? rows[0];
      return row && toRow(row);
    },

    /** The newest item of the workspace whose Responses form carries this id (what an `item_reference` names). */
    async findByRef(workspaceId: string, ref: string): Promise<ItemRow | undefined> {
      const [row] = await db
        .select(itemColumns)
        .from(threadItems)
        .where(and(eq(threadItems.workspaceId, workspaceId), eq(threadItems.itemRef, ref), ne(threadItems.status, 'superseded')))
        .orderBy(desc(threadItems.createdAt))
        .limit(1);
      return row && toRow(row);
    },

    /** Deletes a response's items from its thread (the response itself is deleted by the caller, in `within`). */
    async deleteResponseItems(
      workspaceId: string,
      threadId: string,
      responseId: string,
      within?: (tx: Parameters<Parameters<Db['transaction']>[0]>[0]) => Promise<void>,
    ): Promise<void> {
      cache.delete(cacheKey(workspaceId, threadId));
      forgetIndex(cacheKey(workspaceId, threadId));
      await db.transaction(async (tx) => {
        await tx.delete(threadItems).where(and(inThread(workspaceId, threadId), eq(threadItems.responseId, responseId)));
        await tx
          .update(threads)
          .set({ version: sql`${threads.version} + 1`, editVersion: sql`${threads.editVersion} + 1`, updatedAt: sql`now()` })
          .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId)));
        if (within) await within(tx);
      });
    },

    /** Items eligible for the next summary: complete messages after the summarized range, oldest first. */
    async unsummarized(workspaceId: string, threadId: string, afterSeq: number, limit: number): Promise<ItemRow[]> {
      const rows = await db
        .select(itemColumns)
        .from(threadItems)
        .where(
          and(
            inThread(workspaceId, threadId),
            eq(threadItems.kind, 'message'),
            eq(threadItems.status, 'complete'),
            gt(threadItems.seq, afterSeq),
          ),
        )
        .orderBy(asc(threadItems.seq))
        .limit(limit);
      return rows.map(toRow);
    },

    /** Stores a new summary only if it moves forward (a concurrent job may have been faster). */
    async saveSummary(workspaceId: string, threadId: string, summary: string, uptoSeq: number, previousUpto: number): Promise<boolean> {
      const rows = await db
        .update(threads)
        .set({ summary: storableText(summary), summaryUptoSeq: uptoSeq, version: sql`${threads.version} + 1`, updatedAt: sql`now()` })
        .where(and(eq(threads.workspaceId, workspaceId), eq(threads.id, threadId), eq(threads.summaryUptoSeq, previousUpto)))
        .returning({ id: threads.id });
      return rows.length > 0;
    },
  };
}

export type ThreadStore = ReturnType<typeof createThreadStore>;
