// Seeds a 10,000-item thread straight into the database for bench/memory.ts, and measures, in this
// process, the two parts of thread memory's read path (loadView, planContext) for the notes.

import { sql } from 'drizzle-orm';
import { openDatabase } from '../src/db/client.js';
import { planContext } from '../src/memory/context-plan.js';
import { createThreadStore } from '../src/memory/thread-store.js';
import { countTextTokens } from '../src/tokens/count-tokens.js';
import { percentile } from './report.js';

export const THREAD_ID = 'bench-thread';
const SENTENCE =
  'we went over the quarterly numbers again and agreed that shipping delays in the northern region explain most of the gap, so the next step is to confirm supplier contracts before Friday.';

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, any>[];

export interface SeedInfo {
  workspaceId: string;
  items: number;
  contentTokens: number;
  seedMs: number;
}

/** The bench workspace's id (made through the admin API), then the thread and its items. */
export async function seedThread(url: string, items: number, embeddingDims = 0): Promise<SeedInfo> {
  const database = await openDatabase({ url }, { migrate: false, poolSize: 1 });
  try {
    const db = database.db;
    const [ws] = rowsOf(await db.execute(sql`select id from workspaces where name = 'bench'`));
    if (!ws) throw new Error('workspace "bench" not found');
    const workspaceId = String(ws.id);
    const t0 = performance.now();
    await db.execute(sql`insert into threads (workspace_id, id, next_seq) values (${workspaceId}, ${THREAD_ID}, ${items + 1})`);
    await db.execute(sql`
      insert into thread_items (id, workspace_id, thread_id, seq, kind, role, content, search_text, content_hash, tokens, status)
      select 'itm_bench_' || g, ${workspaceId}, ${THREAD_ID}, g, 'message', case when g % 2 = 1 then 'user' else 'assistant' end,
        to_jsonb('Turn ' || g || ': ' || ${SENTENCE}::text), 'Turn ' || g || ': ' || ${SENTENCE}::text, 'bench-hash-' || g, 45, 'complete'
      from generate_series(1, ${items}::int) g`);
    if (embeddingDims > 0) {
      // Every item embedded (one fixed vector: the comparison costs the same whatever the values).
      const f = new Float32Array(Array.from({ length: embeddingDims }, (_, i) => Math.cos(i)));
      const vector = Buffer.from(f.buffer).toString('base64');
      await db.execute(sql`
        insert into thread_item_embeddings (item_id, workspace_id, thread_id, seq, model, dims, embedding)
        select 'itm_bench_' || g, ${workspaceId}, ${THREAD_ID}, g, 'bench/embed', ${embeddingDims}, ${vector}
        from generate_series(1, ${items}::int) g`);
    }
    await db.execute(sql`analyze thread_items`);
    await db.execute(sql`analyze threads`);
    return { workspaceId, items, contentTokens: countTextTokens(`Turn 5000: ${SENTENCE}`), seedMs: performance.now() - t0 };
  } finally {
    await database.close();
  }
}

/** Thread size afterwards, to show `X-Memory: read` did not grow it. */
export async function threadSize(url: string, workspaceId: string): Promise<{ items: number; nextSeq: number }> {
  const database = await openDatabase({ url }, { migrate: false, poolSize: 1 });
  try {
    const [r] = rowsOf(
      await database.db.execute(sql`
        select (select count(*) from thread_items where workspace_id = ${workspaceId} and thread_id = ${THREAD_ID})::int as items,
               (select next_seq from threads where workspace_id = ${workspaceId} and id = ${THREAD_ID}) as next_seq`),
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
  loaded: number;
  injected: number;
  memoryTokens: number;
  forwardedBytes: number;
  plainBytes: number;
}

/** loadView + planContext as memory-service.prepare calls them (400 recent, 16,000-token cap), timed here. */
export async function measureReadPath(url: string, workspaceId: string, body: Record<string, any>, runs = 50): Promise<ReadPathInfo> {
  const database = await openDatabase({ url }, { migrate: false, poolSize: 2 });
  try {
    const store = createThreadStore(database.db);
    const model = { id: String(body.model), contextLength: 128_000, maxCompletionTokens: 16_384, promptPrice: null, completionPrice: null };
    const load: number[] = [];
    const plan: number[] = [];
    let last: ReturnType<typeof planContext> | undefined;
    let loaded = 0;
    for (let i = 0; i < runs + 5; i++) {
      const t0 = performance.now();
      const view = await store.loadView(workspaceId, THREAD_ID);
      const t1 = performance.now();
      last = planContext({
        body,
        model,
        thread: view.thread,
        recent: view.recent,
        pinned: view.pinned,
        inject: true,
        cap: 16_000,
        redact: { emails: false },
      });
      const t2 = performance.now();
      loaded = view.recent.length;
      if (i >= 5) {
        load.push(t1 - t0);
        plan.push(t2 - t1);
      }
    }
    return {
      loadViewP50: percentile(load, 50),
      loadViewP99: percentile(load, 99),
      planP50: percentile(plan, 50),
      planP99: percentile(plan, 99),
      loaded,
      injected: last!.injectedCount,
      memoryTokens: last!.memoryTokens,
      forwardedBytes: Buffer.byteLength(JSON.stringify({ ...body, messages: last!.messages })),
      plainBytes: Buffer.byteLength(JSON.stringify(body)),
    };
  } finally {
    await database.close();
  }
}
