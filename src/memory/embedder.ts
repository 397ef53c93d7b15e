import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';
import { Aborter } from '../proxy/aborter.js';
import { parseUsage, type OutcomeSink, type RequestOutcome } from '../proxy/outcome.js';
import type { UpstreamClient } from '../proxy/upstream-client.js';
import type { Logger } from '../telemetry/logger.js';
import { vectorLiteral } from './thread-store.js';

/** The key id under which the gateway's own embedding calls are recorded (on the workspace that caused them). */
export const EMBEDDING_KEY_ID = 'gateway:memory-embedding';

const BATCH = 64;
const CLAIM_SECONDS = 60;
const MAX_ATTEMPTS = 5;
const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, any>[];

/** A vector as stored: float32 little-endian, base64. */
export function encodeVector(v: number[]): string {
  const f = new Float32Array(v);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

export function decodeVector(text: string): Float32Array {
  const b = Buffer.from(text, 'base64');
  const copy = new Uint8Array(b.length);
  copy.set(b);
  return new Float32Array(copy.buffer, 0, Math.floor(b.length / 4));
}

/** A vector's Euclidean length. */
export function norm(v: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  return Math.sqrt(n);
}

/**
 * Cosine similarity when both lengths are known (a span's stored vectors have theirs computed once,
 * when decoded): one multiply-add per dimension instead of three. 0 when either is all zeros or the
 * lengths differ.
 */
export function cosineWithNorms(a: Float32Array, aNorm: number, b: Float32Array, bNorm: number): number {
  if (a.length !== b.length || a.length === 0 || !aNorm || !bNorm) return 0;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot / (aNorm * bNorm);
}

/** A span's stored vectors of one size side by side in one array, by ascending seq, with their lengths. */
export interface VectorBlock {
  dims: number;
  seqs: Int32Array;
  data: Float32Array;
  norms: Float64Array;
}

/** Stored vectors (base64 float32) as blocks by size: decoded, laid out and measured once. */
export function vectorBlocks(rows: readonly { seq: number; embedding: string }[]): Map<number, VectorBlock> {
  const bySize = new Map<number, { seq: number; v: Float32Array }[]>();
  for (const r of rows) {
    const v = decodeVector(r.embedding);
    if (!v.length) continue;
    let list = bySize.get(v.length);
    if (!list) bySize.set(v.length, (list = []));
    list.push({ seq: r.seq, v });
  }
  const blocks = new Map<number, VectorBlock>();
  for (const [dims, list] of bySize) {
    list.sort((a, b) => a.seq - b.seq);
    const data = new Float32Array(list.length * dims);
    const norms = new Float64Array(list.length);
    list.forEach((r, i) => {
      data.set(r.v, i * dims);
      norms[i] = norm(r.v);
    });
    blocks.set(dims, { dims, seqs: Int32Array.from(list, (r) => r.seq), data, norms });
  }
  return blocks;
}

/**
 * The seqs (within [lo, hi)) of the `limit` vectors of a block most similar to `q` (cosine > 0),
 * most similar first, ties newest first: one pass over the block, the best kept in a short sorted list.
 */
export function nearestInBlock(block: VectorBlock, q: Float32Array, limit: number, lo = -Infinity, hi = Infinity): number[] {
  const qn = norm(q);
  if (!qn || q.length !== block.dims || limit <= 0) return [];
  const { dims, data, norms, seqs } = block;
  const best: { seq: number; score: number }[] = [];
  // Only seqs in [lo, hi); newest first, so that of equal scores the newer one is kept ahead.
  let end = seqs.length;
  while (end > 0 && seqs[end - 1] >= hi) end--;
  for (let i = end - 1; i >= 0 && seqs[i] >= lo; i--) {
    if (!norms[i]) continue;
    let dot = 0;
    const base = i * dims;
    for (let k = 0; k < dims; k++) dot += q[k] * data[base + k];
    const score = dot / (qn * norms[i]);
    if (!(score > 0) || (best.length === limit && score <= best[limit - 1].score)) continue;
    let at = best.length;
    while (at > 0 && best[at - 1].score < score) at--;
    best.splice(at, 0, { seq: seqs[i], score });
    if (best.length > limit) best.pop();
  }
  return best.map((b) => b.seq);
}

export interface EmbedderOptions {
  db: Db;
  /** The database has pgvector (thread_item_embeddings.vec): vectors are written there too. */
  vectors?: boolean;
  upstream: UpstreamClient;
  model: string;
  /** Requested vector size (`dimensions`; models that fix their own size answer with it). */
  dimensions: number;
  record: OutcomeSink;
  logger: Logger;
  now: () => number;
  /** How often the queue is polled (it is also kicked after every memory write). */
  pollMs?: number;
}

/**
 * Embeds thread items off the request path: jobs (written with the items, in their transaction)
 * are claimed in batches with FOR UPDATE SKIP LOCKED, so each runs once across instances and a
 * restart loses none; the upstream's /embeddings is asked per workspace, its usage recorded as the
 * gateway's own on that workspace; failures back off and give up after five attempts. It also
 * embeds a request's query (on the request path, under the caller's deadline).
 */
export function createEmbedder(opts: EmbedderOptions) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  let warnedAt = -Infinity;

  async function embed(workspaceId: string, inputs: string[], signalMs: number): Promise<number[][]> {
    const requestId = `emb_${randomBytes(12).toString('hex')}`;
    const started = performance.now();
    const base: Omit<
      RequestOutcome,
      | 'status'
      | 'httpStatus'
      | 'errorCode'
      | 'usage'
      | 'servedModel'
      | 'text'
      | 'toolCalls'
      | 'generationId'
      | 'upstreamHeadersMs'
      | 'totalMs'
    > = {
      requestId,
      route: 'embeddings',
      workspaceId,
      keyId: EMBEDDING_KEY_ID,
      requestedModel: opts.model,
      stream: false,
      finishReason: null,
      provider: null,
      startedAt: new Date(opts.now()),
      firstByteMs: null,
      request: null,
    };
    const abort = new Aborter();
    const timer = setTimeout(() => abort.abort(new Error('embedding deadline')), signalMs);
    try {
      const res = await opts.upstream.send({
        path: '/embeddings',
        method: 'POST',
        body: JSON.stringify({ model: opts.model, input: inputs, dimensions: opts.dimensions }),
        headers: { 'x-request-id': requestId },
        signal: abort,
      });
      const json: any = JSON.parse(await res.body.text());
      const data: any[] = Array.isArray(json?.data) ? json.data : [];
      const vectors = inputs.map((_, i) => data.find((d) => d?.index === i)?.embedding ?? data[i]?.embedding);
      if (!vectors.every((v) => Array.isArray(v) && v.length > 0)) throw new Error('the upstream answered without embeddings');
      opts.record({
        ...base,
        status: 'ok',
        httpStatus: 200,
        errorCode: null,
        usage: parseUsage(json.usage),
        servedModel: typeof json.model === 'string' ? json.model : null,
        text: '',
        toolCalls: [],
        generationId: null,
        upstreamHeadersMs: res.headersAt,
        totalMs: performance.now() - started,
      });
      return vectors as number[][];
    } catch (err) {
      opts.record({
        ...base,
        status: 'upstream_error',
        httpStatus: 502,
        errorCode: 'embedding_failed',
        usage: null,
        servedModel: null,
        text: '',
        toolCalls: [],
        generationId: null,
        upstreamHeadersMs: null,
        totalMs: performance.now() - started,
      });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Claims and runs one batch; returns how many jobs it claimed. */
  async function runBatch(): Promise<number> {
    const claimed = rowsOf(
      await opts.db.execute(sql`
        with due as (
          select id from memory_jobs
          where run_after <= now() and (claimed_until is null or claimed_until < now())
          order by id limit ${BATCH} for update skip locked)
        update memory_jobs j set claimed_until = now() + make_interval(secs => ${CLAIM_SECONDS}), attempts = j.attempts + 1
        from due where j.id = due.id
        returning j.id, j.workspace_id, j.thread_id, j.item_id, j.attempts`),
    );
    if (claimed.length === 0) return 0;
    const items = rowsOf(
      await opts.db.execute(sql`
        select id, workspace_id, thread_id, seq, search_text from thread_items
        where id in (${sql.join(
          claimed.map((j) => sql`${String(j.item_id)}`),
          sql`, `,
        )}) and search_text is not null`),
    );
    const byId = new Map(items.map((i) => [String(i.id), i]));
    const done: number[] = [];
    const failed: { id: number; attempts: number }[] = [];
    const byWorkspace = new Map<string, Record<string, any>[]>();
    for (const job of claimed) {
      const item = byId.get(String(job.item_id));
      if (!item)
        done.push(Number(job.id)); // the item is gone: nothing to embed
      else byWorkspace.set(String(job.workspace_id), [...(byWorkspace.get(String(job.workspace_id)) ?? []), job]);
    }
    for (const [workspaceId, jobs] of byWorkspace) {
      try {
        const vectors = await embed(
          workspaceId,
          jobs.map((j) => String(byId.get(String(j.item_id))!.search_text).slice(0, 8_000)),
          30_000,
        );
        for (let k = 0; k < jobs.length; k++) {
          const item = byId.get(String(jobs[k].item_id))!;
          const v = vectors[k];
          await opts.db.execute(
            opts.vectors
              ? sql`
                insert into thread_item_embeddings (item_id, workspace_id, thread_id, seq, model, dims, embedding, vec)
                values (${String(item.id)}, ${String(item.workspace_id)}, ${String(item.thread_id)}, ${Number(item.seq)}, ${opts.model}, ${v.length}, ${encodeVector(v)}, ${vectorLiteral(v)}::vector)
                on conflict (item_id) do nothing`
              : sql`
                insert into thread_item_embeddings (item_id, workspace_id, thread_id, seq, model, dims, embedding)
                values (${String(item.id)}, ${String(item.workspace_id)}, ${String(item.thread_id)}, ${Number(item.seq)}, ${opts.model}, ${v.length}, ${encodeVector(v)})
                on conflict (item_id) do nothing`,
          );
          done.push(Number(jobs[k].id));
        }
      } catch (err) {
        opts.logger.warn(
          { err: (err as Error).message, workspace_id: workspaceId, jobs: jobs.length },
          'memory embeddings failed; retried later',
        );
        for (const j of jobs) failed.push({ id: Number(j.id), attempts: Number(j.attempts) });
      }
    }
    const giveUp = failed.filter((f) => f.attempts >= MAX_ATTEMPTS).map((f) => f.id);
    const retry = failed.filter((f) => f.attempts < MAX_ATTEMPTS);
    if (giveUp.length) opts.logger.error({ jobs: giveUp.length }, 'memory embeddings given up after 5 attempts');
    const remove = [...done, ...giveUp];
    if (remove.length)
      await opts.db.execute(
        sql`delete from memory_jobs where id in (${sql.join(
          remove.map((n) => sql`${n}`),
          sql`, `,
        )})`,
      );
    for (const f of retry) {
      await opts.db.execute(
        sql`update memory_jobs set claimed_until = null, run_after = now() + make_interval(secs => ${2 ** f.attempts}) where id = ${f.id}`,
      );
    }
    return claimed.length;
  }

  /**
   * Embeddings stored before the database had pgvector get their `vec` (once, at start, in
   * batches): the stored float32 text is the source, so nothing is asked of the upstream again.
   */
  async function backfill(): Promise<void> {
    if (!opts.vectors) return;
    for (;;) {
      const rows = rowsOf(await opts.db.execute(sql`select item_id, embedding from thread_item_embeddings where vec is null limit 200`));
      if (rows.length === 0 || stopped) return;
      for (const r of rows) {
        await opts.db.execute(
          sql`update thread_item_embeddings set vec = ${vectorLiteral(decodeVector(String(r.embedding)))}::vector where item_id = ${String(r.item_id)}`,
        );
      }
    }
  }
  let backfilled = false;

  async function drain(): Promise<void> {
    do {
      again = false;
      try {
        if (!backfilled) {
          await backfill();
          backfilled = true;
        }
        while (!stopped && (await runBatch()) === BATCH);
      } catch (err) {
        // A database outage would say this every poll: once a minute is enough.
        if (opts.now() - warnedAt >= 60_000) {
          warnedAt = opts.now();
          opts.logger.warn({ err: (err as Error).message }, 'memory embedding queue unavailable; retried later');
        }
      }
    } while (again && !stopped);
  }

  const kick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = drain().finally(() => (running = null));
  };

  return {
    /** Embeds a request's query (the caller bounds the wait); records the call as the gateway's own. */
    embedQuery: async (workspaceId: string, text: string, deadlineMs: number) =>
      (await embed(workspaceId, [text.slice(0, 8_000)], deadlineMs))[0],
    kick,
    start() {
      timer = setInterval(kick, opts.pollMs ?? 1_000);
      timer.unref?.();
      kick();
    },
    /** Resolves when no batch is running and none is due (tests). */
    async idle(): Promise<void> {
      for (let i = 0; i < 200; i++) {
        if (running) await running;
        const [{ n }] = rowsOf(await opts.db.execute(sql`select count(*)::int as n from memory_jobs where run_after <= now()`)) as {
          n: number;
        }[];
        if (!running && Number(n) === 0) return;
        kick();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    /** Stops polling; a batch in flight gets 2 s (its claimed jobs expire and are taken up again otherwise). */
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (running) await withDeadline(running, 2_000, 'embedding batch').catch(() => {});
    },
  };
}

export type Embedder = ReturnType<typeof createEmbedder>;
