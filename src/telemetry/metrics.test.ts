import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

/** The value of one series line, e.g. `cmg_requests_total{route="/x",...}`. */
function valueOf(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

const sample = { route: '/v1/chat/completions', method: 'POST', status: 200, model: 'openai/gpt-4o-mini', outcome: 'ok', durationMs: 120 };

describe('createMetrics', () => {
  it('reports the event-loop delay since the last scrape, including a blocked loop', async () => {
    const m = createMetrics();
    await m.render(); // starts a fresh interval
    await new Promise((r) => setTimeout(r, 30));
    const until = Date.now() + 60;
    while (Date.now() < until) {
      // block the loop for 60 ms
    }
    await new Promise((r) => setTimeout(r, 30));
    const text = await m.render();
    expect(valueOf(text, 'cmg_event_loop_delay_seconds', { quantile: '1' })).toBeGreaterThanOrEqual(0.04);
    expect(valueOf(text, 'cmg_event_loop_delay_seconds', { quantile: '0.5' })).toBeLessThan(0.01);
    await m.shutdown();
  });

  it('counts requests by route, method, status, model and outcome, with duration histograms', async () => {
    const m = createMetrics();
    m.recordRequest(sample);
    m.recordRequest(sample);
    m.recordRequest({ ...sample, status: 502, outcome: 'upstream_error', durationMs: 7 });
    m.recordRequest({ route: '/health', method: 'GET', status: 200, model: null, durationMs: 1 });
    const text = await m.render();
    expect(text).toContain('# TYPE cmg_requests_total counter');
    expect(
      valueOf(text, 'cmg_requests_total', { route: '/v1/chat/completions', status: '200', outcome: 'ok', model: 'openai/gpt-4o-mini' }),
    ).toBe(2);
    expect(valueOf(text, 'cmg_requests_total', { status: '502', outcome: 'upstream_error' })).toBe(1);
    expect(valueOf(text, 'cmg_requests_total', { route: '/health', model: 'none', outcome: 'none' })).toBe(1);
    expect(text).toContain('# TYPE cmg_request_duration_seconds histogram');
    expect(valueOf(text, 'cmg_request_duration_seconds_count', { route: '/v1/chat/completions', status: '200' })).toBe(2);
    expect(valueOf(text, 'cmg_request_duration_seconds_sum', { route: '/v1/chat/completions', status: '200' })).toBeCloseTo(0.24, 6);
    expect(valueOf(text, 'cmg_request_duration_seconds_bucket', { route: '/v1/chat/completions', status: '200', le: '0.1' })).toBe(0);
    expect(valueOf(text, 'cmg_request_duration_seconds_bucket', { route: '/v1/chat/completions', status: '200', le: '0.25' })).toBe(2);
    await m.shutdown();
  });

  it('records upstream TTFB and gateway overhead only when known', async () => {
    const m = createMetrics();
    m.recordRequest({ ...sample, upstreamTtfbMs: 40, overheadMs: 1.5 });
    m.recordRequest({ ...sample, upstreamTtfbMs: null, overheadMs: null });
    m.recordRequest({ ...sample, overheadMs: -3 });
    const text = await m.render();
    expect(valueOf(text, 'cmg_upstream_ttfb_seconds_count', { route: '/v1/chat/completions' })).toBe(1);
    expect(valueOf(text, 'cmg_upstream_ttfb_seconds_sum')).toBeCloseTo(0.04, 6);
    expect(valueOf(text, 'cmg_gateway_overhead_seconds_count', { route: '/v1/chat/completions' })).toBe(2);
    expect(valueOf(text, 'cmg_gateway_overhead_seconds_sum')).toBeCloseTo(0.0015, 6); // negative clamps to 0
    expect(valueOf(text, 'cmg_gateway_overhead_seconds_bucket', { le: '0.001' })).toBe(1);
  });

  it('counts tokens by type and cost in USD', async () => {
    const m = createMetrics();
    m.recordUsage({ model: 'a/b', promptTokens: 10, completionTokens: 5, costUsd: '0.00012' });
    m.recordUsage({ model: 'a/b', promptTokens: 3, completionTokens: 0, costUsd: null });
    const text = await m.render();
    expect(valueOf(text, 'cmg_tokens_total', { type: 'prompt', model: 'a/b' })).toBe(13);
    expect(valueOf(text, 'cmg_tokens_total', { type: 'completion', model: 'a/b' })).toBe(5);
    expect(valueOf(text, 'cmg_cost_usd_total', { model: 'a/b' })).toBeCloseTo(0.00012, 10);
  });

  it('bounds model labels: unknown to the catalog, too long, or past the cap become other', async () => {
    const m = createMetrics({ maxModels: 3, knownModel: (id) => !id.startsWith('bogus/') });
    for (let i = 0; i < 10; i++) m.recordRequest({ ...sample, model: `vendor/model-${i}` });
    m.recordRequest({ ...sample, model: 'bogus/secret-looking-thing' });
    m.recordRequest({ ...sample, model: 'x'.repeat(500) });
    m.recordRequest({ ...sample, model: 'vendor/model-0' });
    const text = await m.render();
    const models = new Set([...text.matchAll(/cmg_requests_total\{[^}]*model="([^"]*)"/g)].map((x) => x[1]));
    expect(models).toEqual(new Set(['vendor/model-0', 'vendor/model-1', 'vendor/model-2', 'other']));
    expect(valueOf(text, 'cmg_requests_total', { model: 'other' })).toBe(9);
    expect(valueOf(text, 'cmg_requests_total', { model: 'vendor/model-0' })).toBe(2);
    expect(text).not.toContain('bogus');
  });

  it('labels odd statuses and limiter kinds safely', async () => {
    const m = createMetrics();
    m.recordRequest({ ...sample, status: 99999 });
    m.limiterFallback('redis_unavailable');
    m.limiterFallback('redis_unavailable');
    m.limiterFallback('Not A Kind {"x"}');
    for (let i = 0; i < 30; i++) m.limiterFallback(`kind_${i}`);
    const text = await m.render();
    expect(valueOf(text, 'cmg_requests_total', { status: 'other' })).toBe(1);
    expect(valueOf(text, 'cmg_limiter_fallbacks_total', { kind: 'redis_unavailable' })).toBe(2);
    expect(valueOf(text, 'cmg_limiter_fallbacks_total', { kind: 'other' })).toBeGreaterThanOrEqual(1);
    expect(text.match(/^cmg_limiter_fallbacks_total\{/gm)!.length).toBeLessThanOrEqual(21);
  });

  it('reads gauges at scrape time and survives a failing source', async () => {
    let open = 2;
    const m = createMetrics({ gauges: { openStreams: () => open } });
    m.observeGauges({
      usageBacklog: () => 7,
      memoryBacklog: () => {
        throw new Error('boom');
      },
    });
    expect(valueOf(await m.render(), 'cmg_open_streams')).toBe(2);
    open = 5;
    const text = await m.render();
    expect(valueOf(text, 'cmg_open_streams')).toBe(5);
    expect(valueOf(text, 'cmg_usage_writer_backlog')).toBe(7);
    expect(valueOf(text, 'cmg_memory_writer_backlog')).toBeUndefined();
  });

  it('keeps instances apart (no global provider)', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.recordRequest(sample);
    expect(valueOf(await a.render(), 'cmg_requests_total')).toBe(1);
    expect(valueOf(await b.render(), 'cmg_requests_total')).toBeUndefined();
  });
});
