import { describe, expect, it } from 'vitest';
import { formatDecimal, parseDecimal } from '../src/usage/decimal.js';
import { parseUsage } from '../src/proxy/outcome.js';
import { expectedUsage } from './fake-openrouter/server.js';
import { dbKinds } from './helpers/databases.js';
import { useProxyEnv } from './helpers/proxy-env.js';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, user } from './helpers/proxy-env.js';

const TOTAL = 500;
type Kind = 'nonstream' | 'stream' | 'stream_usage' | 'upstream_error' | 'abort' | 'budget';
const KINDS: Kind[] = ['nonstream', 'stream', 'stream_usage', 'upstream_error', 'abort', 'nonstream', 'stream_usage', 'budget'];

/** The exact decimal text of every `"cost":…` the upstream sent in a body. */
const costsIn = (raw: string) => [...raw.matchAll(/"cost":([0-9.eE+-]+)/g)].map((m) => m[1]);

/** JSON number text to exact decimal units (exponent form like 3.3e-7 included). */
const unitsOf = (numberText: string) => parseDecimal(parseUsage({ cost: Number(numberText) })!.cost!);

describe.each(dbKinds())('reconciliation over %d mixed requests on %s'.replace('%d', String(TOTAL)), (kind) => {
  const env = useProxyEnv({ db: kind });

  it('records exactly one row per request; costs, JSON, CSV and raw sums agree to the last digit', async () => {
    const main = await env.gw.createKey();
    const ws = (await env.gw.deps.keys.findWorkspace(main.workspace))!;
    // A second key in the same workspace with a tiny budget, so some requests are rejected.
    const budgetKey = (
      await (
        await env.gw.admin('/admin/keys', {
          body: { workspace: main.workspace, name: 'tight', budget_usd: '0.00001', budget_period: 'day' },
        })
      ).json()
    ).key;
    let upstreamCost = 0n;
    const statuses: Record<string, number> = {};
    const run = async (i: number) => {
      const kind = KINDS[i % KINDS.length];
      const key = kind === 'budget' ? budgetKey : main.key;
      const controller = new AbortController();
      const body: Record<string, unknown> = {
        model: i % 3 === 0 ? 'anthropic/claude-3.5-haiku' : MODEL,
        messages: [user(`request number ${i} ${'word '.repeat(i % 7)}`)],
      };
      if (kind.startsWith('stream') || kind === 'abort') body.stream = true;
      if (kind === 'stream_usage') body.stream_options = { include_usage: true };
      if (kind === 'upstream_error') body.fake = { mode: 'error', status: i % 2 ? 400 : 502 };
      if (kind === 'abort') body.fake = { mode: 'slow', delayMs: 40 };
      const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (kind === 'abort') {
        const reader = res.body!.getReader();
        await reader.read();
        controller.abort();
        await reader.read().catch(() => undefined);
        return;
      }
      const raw = await res.text();
      if (res.status === 200 && (kind === 'nonstream' || kind === 'stream_usage' || kind === 'budget')) {
        const costs = costsIn(raw);
        expect(costs).toHaveLength(1);
        upstreamCost += unitsOf(costs[0]);
      }
    };
    const queue = Array.from({ length: TOTAL }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) await run(i);
      }),
    );
    const deadline = Date.now() + 10_000;
    while (env.gw.outcomes.length < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(env.gw.outcomes).toHaveLength(TOTAL);
    await env.gw.deps.usage.flush(20_000);

    const get = (path: string) => fetch(env.gw.url + path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const range = `from=${today}&to=${tomorrow}&workspace=${ws.id}`;

    // Raw records: page through all of them.
    const records: any[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 20; page++) {
      const res: any = await (await get(`/admin/usage/requests?${range}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`)).json();
      records.push(...res.data);
      cursor = res.next_cursor;
      if (!cursor) break;
    }
    expect(records).toHaveLength(TOTAL);
    expect(new Set(records.map((r) => r.request_id)).size).toBe(TOTAL);
    const byStatus = (s: string) => records.filter((r) => r.status === s).length;
    expect(byStatus('rejected')).toBeGreaterThan(0);
    const planned = (k: Kind) => Array.from({ length: TOTAL }, (_, i) => KINDS[i % KINDS.length]).filter((x) => x === k).length;
    expect(byStatus('client_aborted')).toBe(planned('abort'));
    expect(byStatus('upstream_error')).toBe(planned('upstream_error'));
    expect(byStatus('ok') + byStatus('rejected') + byStatus('client_aborted') + byStatus('upstream_error')).toBe(TOTAL);

    // Completed requests: the recorded cost is the upstream's usage.cost, exactly, for every one of
    // them (the fake's own figure per request, matched by the request id the gateway sent upstream).
    const okRecords = records.filter((r) => r.status === 'ok');
    expect(okRecords.every((r) => r.cost_source === 'upstream' && !r.estimated)).toBe(true);
    const recordedOk = okRecords.reduce((s, r) => s + parseDecimal(r.cost_usd), 0n);
    let billedOk = 0n;
    for (const r of okRecords) {
      const sent = env.fake.requests.filter((q) => q.headers['x-request-id'] === r.request_id).at(-1);
      expect(sent, r.request_id).toBeDefined();
      billedOk += parseDecimal(parseUsage({ cost: expectedUsage(sent!.body).cost })!.cost!);
    }
    expect(formatDecimal(recordedOk)).toBe(formatDecimal(billedOk));
    // What clients saw of usage.cost (non-stream bodies, include_usage chunks) is part of that sum.
    expect(upstreamCost).toBeGreaterThan(0n);
    expect(upstreamCost).toBeLessThanOrEqual(recordedOk);
    const allRecorded = records.reduce((s, r) => s + parseDecimal(r.cost_usd), 0n);

    // JSON report (from the rollups) = raw sums; CSV totals = JSON totals.
    const json = await (await get(`/admin/usage?${range}&group_by=key,model`)).json();
    expect(json.totals.requests).toBe(TOTAL);
    expect(json.totals.errors).toBe(TOTAL - byStatus('ok'));
    expect(json.totals.cost_usd).toBe(formatDecimal(allRecorded));
    expect(json.totals.prompt_tokens).toBe(records.reduce((s, r) => s + r.prompt_tokens, 0));
    expect(json.totals.completion_tokens).toBe(records.reduce((s, r) => s + r.completion_tokens, 0));
    const csv = (await (await get(`/admin/usage?${range}&group_by=key,model&format=csv`)).text()).trimEnd().split('\r\n');
    const header = csv[0].split(',');
    const col = (name: string) => header.indexOf(name);
    const csvRows = csv.slice(1).map((l) => l.split(','));
    expect(csvRows.reduce((s, r) => s + Number(r[col('requests')]), 0)).toBe(TOTAL);
    expect(formatDecimal(csvRows.reduce((s, r) => s + parseDecimal(r[col('cost_usd')]), 0n))).toBe(json.totals.cost_usd);
  }, 120_000);
});
