import type { Catalog } from '../catalog/catalog.js';
import type { RequestOutcome } from '../proxy/outcome.js';
import type { Logger } from '../telemetry/logger.js';
import { createBatchWriter } from '../usage/ledger-writer.js';
import { describeDbError } from '../db/db-errors.js';
import { withDeadline } from '../db/deadline.js';
import { contextPlanner, messageTokens, storableMessage, type ContextPlan } from './context-plan.js';
import { messageHash, type ChatMessage } from './message-hash.js';
import { nearestInBlock, vectorBlocks, type Embedder, type VectorBlock } from './embedder.js';
import { RETRIEVAL_SPAN, type HistoryRow, type ItemRow, type NewItem, type ThreadRow, type ThreadStore } from './thread-store.js';
import type { ModelInfo } from '../catalog/catalog.js';

export type MemoryMode = 'off' | 'read' | 'write' | 'readwrite';

export interface MemoryContext {
  workspaceId: string;
  threadId: string;
  mode: MemoryMode;
  /** ok: memory was read; unavailable: it could not be (forwarded without); off: not asked for. */
  status: 'ok' | 'unavailable' | 'off';
  plan: ContextPlan | null;
  /** Set once the exchange was handed to the store (committed before the response ended, or after). */
  written?: boolean;
}

/** What storing an exchange reads of a request's outcome (available before the outcome itself). */
export type ExchangeSource = Pick<
  RequestOutcome,
  'requestId' | 'status' | 'text' | 'toolCalls' | 'truncatedChars' | 'servedModel' | 'requestedModel' | 'usage' | 'generationId' | 'request'
>;

/** What a plan reads of the thread row (a cached view is used only while these hold). */
function sameFacts(a: ThreadRow | undefined, b: ThreadRow): boolean {
  return (
    !!a &&
    a.version === b.version &&
    a.createdAt.getTime() === b.createdAt.getTime() &&
    a.summary === b.summary &&
    a.summaryUptoSeq === b.summaryUptoSeq &&
    a.nextSeq === b.nextSeq
  );
}

/** The longest a response waits for its exchange to be committed before it ends (then the durable writer takes it). */
const COMMIT_WAIT_MS = 1_000;

/** Older messages fetched by retrieval per request (the budget decides how many go in). */
const RETRIEVAL_CANDIDATES = 20;
/** The longest a request waits for its query's embedding (then lexical retrieval answers alone). */
const QUERY_EMBED_MS = 500;
/** How long a thread span's decoded vectors are reused, and for how many spans. */
const VECTOR_CACHE_MS = 10_000;
const VECTOR_CACHE_ENTRIES = 200;
/** How far below its span a thread's vectors are loaded (the span moves up as the thread grows). */
const VECTOR_SLACK = 256;

interface Exchange {
  /** The gateway's id of the request that produced it (for logs; absent in older spill files). */
  requestId?: string;
  workspaceId: string;
  threadId: string;
  items: NewItem[];
  supersedeSeqs: number[];
  /** The memory budget of the request (absent in older spill files). */
  budget?: number;
}

export interface MemoryServiceOptions {
  store: ThreadStore;
  catalog: Catalog;
  logger: Logger;
  dataDir: string;
  defaultMaxTokens: number;
  redactEmails: boolean;
  /** Inline data larger than this is stored as a placeholder (MEMORY_MAX_INLINE_BYTES, default 64 KiB). */
  maxInlineBytes?: number;
  /** Present when MEMORY_EMBEDDING_MODEL is set: vector retrieval beside the lexical one. */
  embedder?: Embedder;
  /** The share of memory's budget retrieved items may take (MEMORY_RETRIEVAL_SHARE; 0: no retrieval). */
  retrievalShare?: number;
  /** The most of a reply stored (UTF-8 bytes); a longer one is stored cut there and marked (default 1 MiB). */
  maxReplyBytes?: number;
  /** Called after an exchange is stored (summaries hook in here), with the memory budget of the request that wrote it. */
  onStored?: (workspaceId: string, threadId: string, budgetTokens?: number) => void;
}

/**
 * Thread memory around a proxied request: `prepare` reads the thread and builds what is forwarded
 * (never failing the request: a read error forwards without memory); `record` stores the new
 * messages and the reply after the response through a durable, retrying writer.
 */
export function createMemoryService(opts: MemoryServiceOptions) {
  const redact = { emails: opts.redactEmails };
  const writer = createBatchWriter<Exchange>({
    spillDir: opts.dataDir,
    spillName: 'memory-spill',
    logger: opts.logger,
    batchSize: 50,
    describe: (ex) => ({ workspace_id: ex.workspaceId, thread: ex.threadId, request_id: ex.requestId }),
    async persist(batch) {
      for (const ex of batch) {
        await opts.store.appendItems(ex.workspaceId, ex.threadId, ex.items, ex.supersedeSeqs);
        opts.onStored?.(ex.workspaceId, ex.threadId, ex.budget);
      }
    },
  });

  // Writes not yet in the database, per thread, on this instance: a thread's next request waits for
  // them (bounded) before it reads, and a thread's writes go in the order their requests ended.
  const pending = new Map<string, Promise<void>>();
  const threadKey = (workspaceId: string, threadId: string) => `${workspaceId}\u0000${threadId}`;

  /** Writes an exchange now (after the thread's earlier writes); if that fails or hangs, the durable writer retries it. */
  function write(ex: Exchange): Promise<void> {
    const key = threadKey(ex.workspaceId, ex.threadId);
    const before = pending.get(key);
    const attempt = () =>
      withDeadline(opts.store.appendItems(ex.workspaceId, ex.threadId, ex.items, ex.supersedeSeqs), COMMIT_WAIT_MS, 'thread memory write');
    const done: Promise<void> = (before ? before.then(attempt) : attempt()).then(
      () => {
        opts.embedder?.kick();
        opts.onStored?.(ex.workspaceId, ex.threadId, ex.budget);
      },
      (err) => {
        // Idempotent by item id: should the first attempt land after all, the retry skips it.
        opts.logger.warn(
          { ...describeDbError(err), thread: ex.threadId, request_id: ex.requestId },
          'memory write deferred to the durable writer',
        );
        writer.enqueue(ex);
      },
    );
    const tracked = done.finally(() => {
      if (pending.get(key) === tracked) pending.delete(key);
    });
    pending.set(key, tracked);
    return tracked;
  }

  /** The exchange to store for a request, or null when there is nothing to store. */
  function exchangeOf(outcome: ExchangeSource, ctx: MemoryContext): Exchange | null {
    if (ctx.mode !== 'write' && ctx.mode !== 'readwrite') return null;
    const plan = ctx.plan;
    const text = keptReply(outcome.text, outcome.truncatedChars ?? 0, opts.maxReplyBytes ?? 1_048_576);
    const replyMessage: ChatMessage | null =
      text || outcome.toolCalls.length
        ? { role: 'assistant', content: text || null, ...(outcome.toolCalls.length ? { tool_calls: outcome.toolCalls } : {}) }
        : null;
    const complete = outcome.status === 'ok';
    if (!complete && !replyMessage) return null; // nothing happened worth remembering
    const newMessages = plan
      ? plan.newMessages
      : ((outcome.request?.messages as ChatMessage[]) ?? [])
          .filter((m) => m.role !== 'system' && m.role !== 'developer')
          .map((m) => storableMessage(m, redact, opts.maxInlineBytes));
    const items: NewItem[] = newMessages.map((m, i) => toItem(m, `itm_${outcome.requestId}_${i}`, 'complete', outcome));
    if (replyMessage) {
      const reply = storableMessage(replyMessage, redact, opts.maxInlineBytes);
      items.push(toItem(reply, `itm_${outcome.requestId}_r`, complete ? 'complete' : 'incomplete', outcome, true));
    }
    return {
      requestId: outcome.requestId,
      workspaceId: ctx.workspaceId,
      threadId: ctx.threadId,
      items,
      supersedeSeqs: plan?.supersedeSeqs ?? [],
      budget: plan?.budget,
    };
  }

  /**
   * What a request on a thread forwards and stores: the one function behind both a real request
   * (`prepare`) and the dry run (`POST /v1/threads/{id}/context`).
   */
  async function plan(args: {
    workspaceId: string;
    threadId: string;
    body: Record<string, any>;
    inject: boolean;
    maxTokens?: number;
    deadlineMs?: number;
  }): Promise<ContextPlan> {
    const share = opts.retrievalShare ?? 0.3;
    const inputOf = (view: { thread: ThreadRow | undefined; recent: HistoryRow[]; pinned: ItemRow[] }, model: ModelInfo | undefined) => ({
      body: args.body,
      model,
      thread: view.thread,
      recent: view.recent,
      pinned: view.pinned,
      inject: args.inject,
      cap: args.maxTokens ?? opts.defaultMaxTokens,
      redact,
      maxInlineBytes: opts.maxInlineBytes,
    });
    /** Whether a plan leaves older messages out that retrieval may bring back. */
    const wantsRetrieval = (first: ContextPlan) => share > 0 && first.retrievalBefore !== null && !!first.query;
    /**
     * Recall beyond recency: older messages that share words (or meaning) with the request, when
     * some were left out. `lexical`: the lexical search's hits when they came with the view.
     */
    const retrieve = async (
      first: ContextPlan,
      started: { lexical?: HistoryRow[]; vector?: Promise<number[]> } = {},
    ): Promise<HistoryRow[] | null> => {
      if (!wantsRetrieval(first)) return null;
      const below = first.retrievalBefore!;
      const [words, vector] = await Promise.all([
        started.lexical ?? opts.store.searchItems(args.workspaceId, args.threadId, first.query, below, RETRIEVAL_CANDIDATES),
        started.vector ??
          (opts.embedder ? vectorSearch(args.workspaceId, args.threadId, first.query, below) : Promise.resolve([] as number[])),
      ]);
      return vector.length ? fuse(args.workspaceId, args.threadId, words, vector) : words;
    };
    const finish = (planner: ReturnType<typeof contextPlanner>, first: ContextPlan, found: HistoryRow[] | null) =>
      found?.length ? planner.plan(found, share) : first;

    const work = async () => {
      // An exchange of this thread still being written on this instance is waited for first
      // (read-your-writes: an earlier request that ended is seen).
      const before = pending.get(threadKey(args.workspaceId, args.threadId));
      if (before) await before;
      const modelId = String(args.body.model ?? args.body.models?.[0]);
      // Retrieval starts from this instance's cached view, unchecked: the lexical search goes with
      // the thread's version check in one statement (the vector search beside it), and when the
      // check confirms the view (the usual case), retrieval is done by the time the view is.
      const peek = share > 0 && opts.catalog.isLoaded() ? opts.store.peekView(args.workspaceId, args.threadId) : undefined;
      const planner0 = peek && contextPlanner(inputOf(peek, opts.catalog.peek(modelId)));
      const first0 = planner0 && planner0.plan();
      const searching = !!first0 && wantsRetrieval(first0);
      // vectorSearch never rejects (a failure is logged and means lexical retrieval only).
      const vector =
        searching && opts.embedder ? vectorSearch(args.workspaceId, args.threadId, first0.query, first0.retrievalBefore!) : undefined;
      const [loaded, model] = await Promise.all([
        searching
          ? opts.store.loadViewSearching(args.workspaceId, args.threadId, {
              query: first0.query,
              beforeSeq: first0.retrievalBefore!,
              limit: RETRIEVAL_CANDIDATES,
            })
          : opts.store.loadView(args.workspaceId, args.threadId).then((view) => ({ view, found: undefined })),
        modelInfo(modelId),
      ]);
      const view = loaded.view;
      if (planner0 && first0 && view.recent === peek.recent && view.pinned === peek.pinned && sameFacts(view.thread, peek.thread)) {
        return finish(planner0, first0, await retrieve(first0, { lexical: loaded.found, vector }));
      }
      const planner = contextPlanner(inputOf(view, model));
      const first = planner.plan();
      return finish(planner, first, await retrieve(first));
    };
    return args.deadlineMs ? withDeadline(work(), args.deadlineMs, 'thread memory') : work();
  }

  /**
   * Vector retrieval: the query embedded (under a short deadline: past it, lexical retrieval alone
   * answers), compared with the stored embeddings of the RETRIEVAL_SPAN messages before `before`.
   * Returns seqs, most similar first.
   */
  // Decoded vectors of a thread's span, by thread, kept briefly: they never change once written, and
  // decoding a span is most of vector retrieval's cost. A thread's entry covers the seqs [from, to)
  // it was loaded for (a little below the span too, so the span moving up by a turn still fits).
  // Past VECTOR_CACHE_MS, or when the span has moved past it, it is reloaded in the background while
  // requests go on comparing with what it holds (new embeddings show after at most a reload); only a
  // thread's first request waits. One load per thread at a time: requests that miss together share it.
  type SpanRows = Map<number, VectorBlock>;
  interface VectorEntry {
    at: number;
    from: number;
    to: number;
    rows: Promise<SpanRows>;
    /** The loaded rows, once they are (what requests use while a reload runs). */
    ready?: SpanRows;
    reloading?: boolean;
  }
  const vectorCache = new Map<string, VectorEntry>();
  function loadVectors(key: string, workspaceId: string, threadId: string, from: number, to: number, previous?: VectorEntry): VectorEntry {
    const rows = opts.store.embeddingsBetween(workspaceId, threadId, from, to).then(vectorBlocks);
    const entry: VectorEntry = { at: performance.now(), from, to, rows };
    rows.then(
      (loaded) => {
        entry.ready = loaded;
        if (vectorCache.get(key) === previous || !vectorCache.has(key)) {
          vectorCache.delete(key);
          if (vectorCache.size >= VECTOR_CACHE_ENTRIES) vectorCache.delete(vectorCache.keys().next().value!);
          vectorCache.set(key, entry);
        }
      },
      // A failed load is not kept: the next request tries again (a failed reload leaves the old rows in use).
      () => {
        if (previous) previous.reloading = false;
        if (vectorCache.get(key) === entry) vectorCache.delete(key);
      },
    );
    return entry;
  }
  function spanVectors(workspaceId: string, threadId: string, lo: number, hi: number): Promise<SpanRows> {
    const key = threadKey(workspaceId, threadId);
    const hit = vectorCache.get(key);
    const fits = !!hit && hit.from <= lo && hit.to >= hi && performance.now() - hit.at < VECTOR_CACHE_MS;
    if (hit && (fits || hit.reloading || !hit.ready)) return hit.ready ? Promise.resolve(hit.ready) : hit.rows;
    const from = Math.max(0, lo - VECTOR_SLACK);
    if (!hit) {
      const entry = loadVectors(key, workspaceId, threadId, from, hi);
      if (vectorCache.size >= VECTOR_CACHE_ENTRIES) vectorCache.delete(vectorCache.keys().next().value!);
      vectorCache.set(key, entry);
      return entry.rows;
    }
    hit.reloading = true;
    loadVectors(key, workspaceId, threadId, from, hi, hit);
    return Promise.resolve(hit.ready!);
  }

  async function vectorSearch(workspaceId: string, threadId: string, query: string, before: number): Promise<number[]> {
    try {
      const embedQuery = () =>
        withDeadline(opts.embedder!.embedQuery(workspaceId, query, QUERY_EMBED_MS), QUERY_EMBED_MS + 100, 'query embedding');
      // pgvector: the database ranks the span by cosine distance.
      if (opts.store.vectorSearch) {
        const nearest = await opts.store.nearestItems(
          workspaceId,
          threadId,
          await embedQuery(),
          before - RETRIEVAL_SPAN,
          before,
          RETRIEVAL_CANDIDATES,
        );
        return nearest.filter((r) => r.score > 0).map((r) => r.seq);
      }
      // Without it, the query's embedding and the stored vectors are fetched at once and compared here.
      const lo = before - RETRIEVAL_SPAN;
      const [embedded, blocks] = await Promise.all([embedQuery(), spanVectors(workspaceId, threadId, lo, before)]);
      const q = Float32Array.from(embedded);
      const block = blocks.get(q.length);
      return block ? nearestInBlock(block, q, RETRIEVAL_CANDIDATES, lo, before) : [];
    } catch (err) {
      opts.logger.warn({ err: (err as Error).message, thread: threadId }, 'vector retrieval skipped; lexical retrieval only');
      return [];
    }
  }

  /** Hybrid ranking: reciprocal rank fusion of the lexical and the vector lists (k = 60), best first. */
  async function fuse(workspaceId: string, threadId: string, lexical: HistoryRow[], vector: number[]): Promise<HistoryRow[]> {
    const score = new Map<number, number>();
    lexical.forEach((r, i) => score.set(r.seq, (score.get(r.seq) ?? 0) + 1 / (60 + i + 1)));
    vector.forEach((seq, i) => score.set(seq, (score.get(seq) ?? 0) + 1 / (60 + i + 1)));
    const order = [...score]
      .sort((a, b) => b[1] - a[1] || b[0] - a[0])
      .slice(0, RETRIEVAL_CANDIDATES)
      .map(([seq]) => seq);
    const known = new Map(lexical.map((r) => [r.seq, r]));
    const missing = order.filter((seq) => !known.has(seq));
    for (const r of await opts.store.historyRows(workspaceId, threadId, missing)) known.set(r.seq, r);
    return order.map((seq) => known.get(seq)).filter((r): r is HistoryRow => r !== undefined);
  }

  async function modelInfo(modelId: string) {
    if (!opts.catalog.isLoaded()) await opts.catalog.get().catch(() => undefined);
    return opts.catalog.peek(modelId);
  }

  return {
    plan,
    /** How retrieval runs: lexical (Postgres full-text search) and, with an embedding model, vectors in the database or here. */
    retrieval: {
      lexical: (opts.retrievalShare ?? 0.3) > 0,
      vector:
        (opts.retrievalShare ?? 0.3) <= 0 || !opts.embedder
          ? null
          : opts.store.vectorSearch
            ? ('pgvector' as const)
            : ('in_gateway' as const),
    },

    /** Builds the forwarded body for a request on a thread. */
    async prepare(args: { workspaceId: string; threadId: string; mode: MemoryMode; body: Record<string, any>; maxTokens?: number }) {
      const ctx: MemoryContext = { workspaceId: args.workspaceId, threadId: args.threadId, mode: args.mode, status: 'off', plan: null };
      if (args.mode === 'off') return { body: args.body, ctx };
      try {
        // A hung database must not hold the request: past 1 s it goes on without memory.
        const planned = await plan({ ...args, inject: args.mode === 'read' || args.mode === 'readwrite', deadlineMs: 1_000 });
        ctx.plan = planned;
        ctx.status = 'ok';
        return { body: { ...args.body, messages: planned.messages }, ctx };
      } catch (err) {
        opts.logger.warn({ ...describeDbError(err), thread: args.threadId }, 'memory unavailable; forwarding without it');
        ctx.status = 'unavailable';
        return { body: args.body, ctx };
      }
    },

    /**
     * Stores the exchange before the response ends (the caller awaits it, bounded by ~1 s): a
     * request that starts after this one ended, on any instance, reads it from the database.
     */
    async commit(source: ExchangeSource, ctx: MemoryContext): Promise<void> {
      if (ctx.written) return;
      ctx.written = true;
      const ex = exchangeOf(source, ctx);
      if (!ex) return;
      const written = write(ex);
      // The database just failed this request's read: the write goes on, but nobody waits for it.
      if (ctx.status !== 'ok') return;
      await withDeadline(written, COMMIT_WAIT_MS, 'thread memory commit').catch(() => {});
    },

    /** Stores the exchange once the request is over, unless `commit` already did. A reply cut short is kept as incomplete. */
    record(outcome: RequestOutcome, ctx: MemoryContext): void {
      if (ctx.written) return;
      ctx.written = true;
      const ex = exchangeOf(outcome, ctx);
      if (ex) void write(ex);
    },

    /** Writes not yet in the database (tests and shutdown wait on these). */
    pendingWrites: () => pending.size,

    flush: async (timeoutMs?: number) => {
      await Promise.all([...pending.values()]);
      return writer.flush(timeoutMs);
    },
    close: async (timeoutMs?: number) => {
      await withDeadline(Promise.all([...pending.values()]), timeoutMs ?? 5_000, 'memory writes').catch(() => {});
      return writer.close(timeoutMs);
    },
    stats: () => writer.stats(),
  };
}

export type MemoryService = ReturnType<typeof createMemoryService>;

/**
 * The reply as stored: whole, or (longer than `maxBytes`, or already cut by the stream tap) its
 * first `maxBytes` followed by a marker saying so, so neither a reader nor the model takes it for
 * the whole reply.
 */
export function keptReply(text: string, truncatedChars: number, maxBytes: number): string {
  if (truncatedChars === 0 && text.length <= maxBytes / 3) return text; // cannot exceed maxBytes in UTF-8
  const bytes = Buffer.from(text, 'utf8');
  if (truncatedChars === 0 && bytes.length <= maxBytes) return text;
  // Cut on a character boundary: back off continuation bytes (10xxxxxx).
  let end = Math.min(maxBytes, bytes.length);
  while (end > 0 && end < bytes.length && (bytes[end] & 0xc0) === 0x80) end--;
  return `${bytes.subarray(0, end).toString('utf8')}\n\n[truncated by the gateway: the reply was longer than the ${maxBytes} bytes kept in memory]`;
}

function toItem(m: ChatMessage, id: string, status: string, outcome: ExchangeSource, isReply = false): NewItem {
  return {
    id,
    kind: 'message',
    role: m.role,
    content: m.content ?? null,
    toolCalls: m.tool_calls ?? null,
    toolCallId: m.tool_call_id ?? null,
    name: m.name ?? null,
    contentHash: messageHash(m),
    tokens: messageTokens(m),
    status,
    requestId: outcome.requestId,
    ...(isReply ? { model: outcome.servedModel ?? outcome.requestedModel, usage: outcome.usage, generationId: outcome.generationId } : {}),
  };
}
