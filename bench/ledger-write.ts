// The usage writer's sustained rate: createBatchWriter (src/usage/ledger-writer.ts) persisting
// through insertUsageBatch, exactly as src/usage/ledger.ts wires it, fed as fast as it takes records.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import type { Db } from '../src/db/client.js';
import { createLogger } from '../src/telemetry/logger.js';
import { insertUsageBatch } from '../src/usage/ledger-store.js';
import { createBatchWriter } from '../src/usage/ledger-writer.js';
import type { UsageRecord } from '../src/usage/usage-record.js';

const MODELS = [
  'openai/gpt-4o-mini',
  'openai/gpt-4o',
  'openai/o3-mini',
  'anthropic/claude-3.5-haiku',
  'anthropic/claude-sonnet-4',
  'google/gemini-2.0-flash-001',
  'google/gemini-2.5-pro',
  'meta-llama/llama-3.3-70b-instruct',
  'mistralai/mistral-small-3.1',
  'deepseek/deepseek-chat',
];
const PROVIDERS = ['OpenAI', 'Anthropic', 'Google', 'Together', 'DeepInfra'];

/** Deterministic pseudo-random numbers (mulberry32), so every run writes the same kind of data. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` records as the gateway builds them: 3 workspaces, 50 keys, 10 models, spread from the 1st of
 * the current month (UTC) to now; ~3% errors, some streams, some thread ids, upstream costs.
 */
export function makeRecords(n: number, seed: number, now = Date.now()): UsageRecord[] {
  const r = rng(seed);
  const d = new Date(now);
  const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const span = Math.max(1, now - monthStart);
  const tag = randomBytes(3).toString('hex');
  const out: UsageRecord[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const key = Math.floor(r() * 50);
    const model = MODELS[Math.floor(r() * MODELS.length)];
    const failed = r() < 0.03;
    const stream = r() < 0.4;
    const prompt = failed ? 0 : 20 + Math.floor(r() * 4000);
    const completion = failed ? 0 : 5 + Math.floor(r() * 800);
    const latency = 150 + r() * 3000;
    out[i] = {
      requestId: `req_${tag}_${seed}_${i}`,
      createdAt: new Date(monthStart + Math.floor(r() * span)).toISOString(),
      workspaceId: `ws_bench_${key % 3}`,
      keyId: `key_bench_${key}`,
      route: 'chat.completions',
      modelRequested: model,
      modelServed: failed ? null : model,
      model,
      threadId: r() < 0.2 ? `thread-${Math.floor(r() * 500)}` : null,
      stream,
      status: failed ? 'upstream_error' : 'ok',
      httpStatus: failed ? 502 : 200,
      errorCode: failed ? 'upstream_error' : null,
      promptTokens: prompt,
      completionTokens: completion,
      cachedTokens: failed ? 0 : Math.floor(prompt * r() * 0.3),
      reasoningTokens: 0,
      costUsd: failed ? '0' : ((prompt * 0.15 + completion * 0.6) / 1e6).toFixed(10).replace(/0+$/, ''),
      costSource: failed ? 'none' : 'upstream',
      estimated: false,
      latencyMs: Math.round(latency * 1000) / 1000,
      ttfbMs: stream && !failed ? Math.round(latency * 300) / 1000 : null,
      generationId: failed ? null : `gen-${tag}-${i}`,
      provider: failed ? null : PROVIDERS[i % PROVIDERS.length],
    };
  }
  return out;
}

export interface WriteResult {
  batchSize: number;
  records: number;
  seconds: number;
  rate: number;
  rowsInTable: number;
  rolledUpRequests: number;
  costMatches: boolean;
  spilled: number;
  failures: number;
}

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, any>[];

/**
 * Empties the usage tables, then enqueues `records` as fast as the writer takes them (pausing only
 * while its in-memory queue is at maxBuffered, so nothing spills), and times first enqueue → flush().
 */
export async function measureWriter(db: Db, records: UsageRecord[], batchSize: number): Promise<WriteResult> {
  await db.execute(sql`truncate usage_records, usage_daily`);
  const spillDir = mkdtempSync(join(tmpdir(), 'cmg-bench-spill-'));
  const maxBuffered = 20_000; // the writer's default
  const writer = createBatchWriter<UsageRecord>({
    spillDir,
    spillName: 'usage-spill',
    logger: createLogger('warn'),
    batchSize,
    maxBuffered,
    persist: (batch) => insertUsageBatch(db, batch),
  });
  const highWater = maxBuffered - batchSize;
  const t0 = performance.now();
  try {
    for (let i = 0; i < records.length; i++) {
      while (writer.stats().pending >= highWater) await new Promise((r) => setTimeout(r, 1));
      writer.enqueue(records[i]);
    }
    await writer.flush(300_000);
  } finally {
    await writer.close(5_000);
    rmSync(spillDir, { recursive: true, force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  const [check] = rowsOf(
    await db.execute(sql`
      select (select count(*) from usage_records)::bigint as n,
             (select coalesce(sum(requests), 0) from usage_daily)::bigint as rolled,
             (select coalesce(sum(cost_usd), 0) from usage_records) = (select coalesce(sum(cost_usd), 0) from usage_daily) as cost_ok
    `),
  );
  const stats = writer.stats();
  return {
    batchSize,
    records: records.length,
    seconds,
    rate: records.length / seconds,
    rowsInTable: Number(check.n),
    rolledUpRequests: Number(check.rolled),
    costMatches: check.cost_ok === true || check.cost_ok === 't',
    spilled: stats.spilled,
    failures: stats.failures,
  };
}
