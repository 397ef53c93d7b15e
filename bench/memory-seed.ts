// Seeds a 10,000-item thread straight into the database for bench/memory.ts, and measures, in this
// process, the two parts of thread memory's read path (loadView, planContext) for the notes.

import { sql } from 'drizzle-orm';
import { openDatabase } from '../src/db/client.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Catalog } from '../src/catalog/catalog.js';
import type { ContextPlan } from '../src/memory/context-plan.js';
import { createMemoryService } from '../src/memory/memory-service.js';
import { RETRIEVAL_SPAN, createThreadStore } from '../src/memory/thread-store.js';
import { createLogger } from '../src/telemetry/logger.js';
import { countTextTokens } from '../src/tokens/count-tokens.js';
import { percentile } from './report.js';

export const THREAD_ID = 'bench-thread';
/** The worst case for lexical retrieval: every message shares the question's words. */
export const UNIFORM_THREAD_ID = 'bench-thread-uniform';
const SENTENCE =
  'we went over the quarterly numbers again and agreed that shipping delays in the northern region explain most of the gap, so the next step is to confirm supplier contracts before Friday.';
/**
 * A working conversation's topics, each ~20 tokens: a message is two of them (chosen by a fixed
 * hash of its seq), so a word of one topic is in ~2 of every 25 messages. The bench's question
 * ("What did we agree about the supplier contracts?") shares words with two of the 25.
 */
const TOPICS = [
  'the supplier contracts for the northern warehouse still need a signature from legal before Friday',
  'we agreed to move the weekly planning call to Tuesday mornings starting next month',
  'shipping delays in the northern region explain most of the gap in the quarterly numbers',
  'the new onboarding checklist is in the shared drive, please review the security section',
  'the staging cluster ran out of disk again overnight, so the nightly build failed twice',
  'marketing wants the launch banner in three languages and a shorter tagline for mobile',
  'the customer in Rotterdam asked for a discount on the second year of their subscription',
  'our hiring plan adds two backend engineers and a designer in the first quarter',
  'the office heating will be serviced on Thursday, so bring a sweater to the morning standup',
  'the invoice template still shows the old address; finance asked us to fix it this week',
  'latency on the search page doubled after the last release; the cache key looks wrong',
  'the offsite is booked at the lake hotel, with a budget of two hundred euros per person',
  'the mobile app review came back with two crashes on older Android phones',
  'the data retention policy says logs older than ninety days must be deleted automatically',
  'the board deck needs one slide on churn and one on the pricing experiment results',
  'the vendor sent a revised quote for the laptops, about eight percent cheaper than before',
  'the support queue is back under fifty tickets after the weekend rotation',
  'the translation files for Portuguese are missing the checkout strings again',
  'the pricing experiment raised conversion slightly but lowered the average order value',
  'we should archive the old wiki pages that still describe the retired billing system',
  'the conference talk proposal is due on the fifteenth; the abstract needs a stronger title',
  'the warehouse scanners need a firmware update before the holiday peak',
  'the accessibility audit flagged low contrast on the settings page and missing labels',
  'the security team rotated the API tokens, so the integration tests need the new ones',
  'the coffee machine on the third floor is broken again; facilities has been told',
];

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, any>[];

export interface SeedInfo {
  workspaceId: string;
  items: number;
  contentTokens: number;
  seedMs: number;
}

/**
 * The bench workspace's id (made through the admin API), then the thread and its items: varied
 * (two of TOPICS per message) or uniform (every message SENTENCE, so every message matches the
 * bench's question: lexical retrieval's worst case).
 */
export async function seedThread(
  url: string,
  items: number,
  embeddingDims = 0,
  shape: 'varied' | 'uniform' = 'varied',
  threadId = shape === 'varied' ? THREAD_ID : UNIFORM_THREAD_ID,
): Promise<SeedInfo> {
  const database = await openDatabase({ url }, { migrate: false, poolSize: 1 });
  try {
    const db = database.db;
    const [ws] = rowsOf(await db.execute(sql`select id from workspaces where name = 'bench'`));
    if (!ws) throw new Error('workspace "bench" not found');
    const workspaceId = String(ws.id);
    const t0 = performance.now();
    await db.execute(sql`insert into threads (workspace_id, id, next_seq) values (${workspaceId}, ${threadId}, ${items + 1})`);
    // Two topics per message (varied), picked by multiplicative hashes of the seq; or SENTENCE.
    const text =
      shape === 'uniform'
        ? sql`'Turn ' || g || ': ' || ${SENTENCE}::text`
        : sql`'Turn ' || g || ': ' || t.topics[1 + (g * 7919) % ${TOPICS.length}::int] || '; and ' || t.topics[1 + (g * 104729 + 11) % ${TOPICS.length}::int] || '.'`;
    await db.execute(sql`
      insert into thread_items (id, workspace_id, thread_id, seq, kind, role, content, search_text, content_hash, tokens, status)
      select ${threadId} || '_' || g, ${workspaceId}, ${threadId}, g, 'message', case when g % 2 = 1 then 'user' else 'assistant' end,
        to_jsonb(${text}), ${text}, ${threadId} || '-hash-' || g, 45, 'complete'
      from generate_series(1, ${items}::int) g, (select string_to_array(${TOPICS.join('')}::text, ${''}::text) as topics) t`);
    if (embeddingDims > 0) {
      // Every item embedded (one fixed vector: the comparison costs the same whatever the values).
      const f = new Float32Array(Array.from({ length: embeddingDims }, (_, i) => Math.cos(i)));
      const vector = Buffer.from(f.buffer).toString('base64');
      await db.execute(sql`
        insert into thread_item_embeddings (item_id, workspace_id, thread_id, seq, model, dims, embedding)
        select ${threadId} || '_' || g, ${workspaceId}, ${threadId}, g, 'bench/embed', ${embeddingDims}, ${vector}
        from generate_series(1, ${items}::int) g`);
    }
    await db.execute(sql`analyze thread_items`);
    await db.execute(sql`analyze threads`);
    const sample =
      shape === 'uniform' ? [`Turn 5000: ${SENTENCE}`] : TOPICS.map((t, i) => `Turn 5000: ${t}; and ${TOPICS[(i + 7) % TOPICS.length]}.`);
    const contentTokens = Math.round(sample.reduce((n, t) => n + countTextTokens(t), 0) / sample.length);
    return { workspaceId, items, contentTokens, seedMs: performance.now() - t0 };
  } finally {
    await database.close();
  }
}

/** Thread size afterwards, to show `X-Memory: read` did not grow it. */
export async function threadSize(url: string, workspaceId: string, threadId = THREAD_ID): Promise<{ items: number; nextSeq: number }> {
  const database = await openDatabase({ url }, { migrate: false, poolSize: 1 });
  try {
    const [r] = rowsOf(
      await database.db.execute(sql`
        select (select count(*) from thread_items where workspace_id = ${workspaceId} and thread_id = ${threadId})::int as items,
               (select next_seq from threads where workspace_id = ${workspaceId} and id = ${threadId}) as next_seq`),
    );
    return { items: Number(r.items), nextSeq: Number(r.next_seq) };
  } finally {
    await database.close();
  }
}

export interface ReadPathInfo {
  loadViewP50: number;
  loadViewP99: number;
  planP50: number;
  planP99: number;
  searchP50: number;
  searchP99: number;
  /** The lexical search on an instance that has not indexed the thread yet (it reads the span's 1,000 messages): median of 5. */
  coldSearchMs: number;
  /** Messages of the searched span the question matches (what the search ranks). */
  matches: number;
  span: number;
  loaded: number;
  injected: number;
  retrieved: number;
  memoryTokens: number;
  forwardedBytes: number;
  plainBytes: number;
}

/**
 * The read path's parts, timed here against the same database (sequentially, no other load):
 * loadView (the thread row and, on a miss, the newest 400 complete messages), the whole plan as a
 * request on the thread runs it (memory-service.plan: view, retrieval, assembly; 16,000-token cap),
 * and the lexical search alone.
 */
export async function measureReadPath(
  url: string,
  workspaceId: string,
  body: Record<string, any>,
  threadId = THREAD_ID,
  runs = 50,
): Promise<ReadPathInfo> {
  const database = await openDatabase({ url }, { migrate: false, poolSize: 2 });
  const dataDir = mkdtempSync(join(tmpdir(), 'cmg-bench-seed-'));
  try {
    const store = createThreadStore(database.db);
    const model = { id: String(body.model), contextLength: 128_000, maxCompletionTokens: 16_384, promptPrice: null, completionPrice: null };
    const catalog = { isLoaded: () => true, peek: () => model, get: async () => ({}) } as unknown as Catalog;
    const memory = createMemoryService({
      store,
      catalog,
      logger: createLogger('silent'),
      dataDir,
      defaultMaxTokens: 16_000,
      redactEmails: false,
    });
    const load: number[] = [];
    const plan: number[] = [];
    const search: number[] = [];
    let last: ContextPlan | undefined;
    let loaded = 0;
    for (let i = 0; i < runs + 5; i++) {
      const t0 = performance.now();
      const view = await store.loadView(workspaceId, threadId);
      const t1 = performance.now();
      last = await memory.plan({ workspaceId, threadId, body, inject: true });
      const t2 = performance.now();
      if (last.retrievalBefore !== null) await store.searchItems(workspaceId, threadId, last.query, last.retrievalBefore, 20);
      const t3 = performance.now();
      loaded = view.recent.length;
      if (i >= 5) {
        load.push(t1 - t0);
        plan.push(t2 - t1);
        search.push(t3 - t2);
      }
    }
    const before = last!.retrievalBefore ?? 0;
    const cold: number[] = [];
    for (let i = 0; i < 5 && last!.retrievalBefore !== null; i++) {
      const fresh = createThreadStore(database.db);
      const t0 = performance.now();
      await fresh.searchItems(workspaceId, threadId, last!.query, before, 20);
      cold.push(performance.now() - t0);
    }
    const [count] = rowsOf(
      await database.db.execute(sql`
        select count(*)::int as n from thread_items
        where workspace_id = ${workspaceId} and thread_id = ${threadId} and seq < ${before} and seq >= ${before - RETRIEVAL_SPAN}
          and search @@ nullif(replace(plainto_tsquery('english', ${last!.query})::text, ' & ', ' | '), '')::tsquery`),
    );
    await memory.close();
    return {
      loadViewP50: percentile(load, 50),
      loadViewP99: percentile(load, 99),
      planP50: percentile(plan, 50),
      planP99: percentile(plan, 99),
      searchP50: percentile(search, 50),
      searchP99: percentile(search, 99),
      coldSearchMs: percentile(cold, 50),
      matches: Number(count?.n ?? 0),
      span: Math.min(RETRIEVAL_SPAN, Math.max(0, before - 1)),
      loaded,
      injected: last!.injectedCount,
      retrieved: last!.retrievedCount,
      memoryTokens: last!.memoryTokens,
      forwardedBytes: Buffer.byteLength(JSON.stringify({ ...body, messages: last!.messages })),
      plainBytes: Buffer.byteLength(JSON.stringify(body)),
    };
  } finally {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
