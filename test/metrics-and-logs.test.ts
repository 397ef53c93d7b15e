import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually } from './helpers/gateway.js';
import { MODEL, readSse, useProxyEnv, user } from './helpers/proxy-env.js';

const env = useProxyEnv({ config: { upstreamMaxRetries: 1 } });

const EMBEDDING_MODEL = 'openai/text-embedding-3-small';
// Distinctive texts that must never reach a log line or a metric.
const SECRET_TEXTS = {
  nonStream: 'zebra-papaya-4471 my card number',
  failing: 'quokka-lantern-9182 private diagnosis',
  stream: 'narwhal-teapot-3310 salary figures',
  aborted: 'a b c d e f g h i j k l m n o p walrus-cactus-7754',
  embedding: 'platypus-violin-6626 home address',
  badKey: 'axolotl-harbor-5090 unauthenticated secret',
  thread: 'ocelot-meadow-8843 thread secret',
};
const BAD_KEY = `cmg_${'Q'.repeat(20)}badkeysecret${'Z'.repeat(11)}`;
const THREAD_ID = 'thread-mauve-2718';

/** Sums the values of every series of `name` whose labels include `labels`. */
function sum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('GET /metrics and the access log', () => {
  it('count traffic with errors by bounded labels, log one line per request, and leak no secret', async () => {
    const ids: Record<string, string> = {};
    const remember = (name: string, res: Response) => {
      ids[name] = res.headers.get('x-request-id')!;
      expect(ids[name]).toBeTruthy();
      return res;
    };

    // 401: an unknown key.
    const badKey = remember(
      'badKey',
      await fetch(`${env.gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${BAD_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [user(SECRET_TEXTS.badKey)] }),
      }),
    );
    expect(badKey.status).toBe(401);
    await badKey.text();

    // 200 non-stream.
    const ok = remember('nonStream', await env.post('/v1/chat/completions', { model: MODEL, messages: [user(SECRET_TEXTS.nonStream)] }));
    expect(ok.status).toBe(200);
    await ok.json();

    // The upstream answers 500 (after the retry).
    const failing = remember(
      'failing',
      await env.post('/v1/chat/completions', {
        model: MODEL,
        messages: [user(SECRET_TEXTS.failing)],
        fake: { mode: 'error', status: 500 },
      }),
    );
    const failingStatus = failing.status;
    expect(failingStatus).toBeGreaterThanOrEqual(500);
    await failing.text();

    // A whole stream.
    const stream = remember(
      'stream',
      await env.post('/v1/chat/completions', { model: MODEL, stream: true, messages: [user(SECRET_TEXTS.stream)] }),
    );
    expect(stream.status).toBe(200);
    expect((await readSse(stream)).data.at(-1)).toBe('[DONE]');

    // A stream the client walks away from.
    const controller = new AbortController();
    const aborted = remember(
      'aborted',
      await env.post(
        '/v1/chat/completions',
        { model: MODEL, stream: true, messages: [user(SECRET_TEXTS.aborted)], fake: { mode: 'slow', delayMs: 200 } },
        { signal: controller.signal },
      ),
    );
    const reader = aborted.body!.getReader();
    await reader.read();
    controller.abort();

    // Embeddings.
    const emb = remember('embedding', await env.post('/v1/embeddings', { model: EMBEDDING_MODEL, input: SECRET_TEXTS.embedding }));
    expect(emb.status).toBe(200);
    await emb.json();

    // The thread-in-path form of the API.
    const threaded = remember(
      'thread',
      await env.post(`/t/${THREAD_ID}/v1/chat/completions`, { model: MODEL, messages: [user(SECRET_TEXTS.thread)] }),
    );
    expect(threaded.status).toBe(200);
    await threaded.json();

    // Not proxied: an unknown URL and the health check.
    const missing = remember(
      'missing',
      await fetch(`${env.gw.url}/v1/no-such-thing/${THREAD_ID}`, { headers: { authorization: `Bearer ${env.key}` } }),
    );
    expect(missing.status).toBe(404);
    await missing.text();
    const health = remember('health', await fetch(`${env.gw.url}/health`));
    await health.text();

    // Every request, the aborted stream included, is over and logged before the scrape.
    await eventually(() => env.gw.outcomes.length === 6, 5_000);
    await eventually(() => env.gw.deps.requestLog.pending === 0, 5_000);

    const scrape = await fetch(`${env.gw.url}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const metrics = await scrape.text();

    // Requests by route, status, model and outcome.
    const chat = { route: '/v1/chat/completions', method: 'POST' };
    expect(sum(metrics, 'cmg_requests_total', { ...chat, status: '401', model: 'none', outcome: 'none' })).toBe(1);
    expect(sum(metrics, 'cmg_requests_total', { ...chat, status: '200', model: MODEL, outcome: 'ok' })).toBe(3); // non-stream, stream, thread
    expect(sum(metrics, 'cmg_requests_total', { ...chat, status: '200', model: MODEL, outcome: 'client_aborted' })).toBe(1);
    expect(sum(metrics, 'cmg_requests_total', { ...chat, status: String(failingStatus), model: MODEL, outcome: 'upstream_error' })).toBe(1);
    expect(sum(metrics, 'cmg_requests_total', { route: '/v1/embeddings', status: '200', model: EMBEDDING_MODEL, outcome: 'ok' })).toBe(1);
    expect(sum(metrics, 'cmg_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(sum(metrics, 'cmg_requests_total', { route: '/health', method: 'GET', status: '200' })).toBe(1);
    expect(sum(metrics, 'cmg_requests_total', { route: '/admin/keys', status: '201' })).toBe(1);
    // The thread in the path is folded into the plain route.
    expect(metrics).not.toContain(':thread');

    // Latency, upstream TTFB and gateway overhead histograms (the upstream answered 5 of them).
    expect(sum(metrics, 'cmg_request_duration_seconds_count', chat)).toBe(6);
    expect(sum(metrics, 'cmg_upstream_ttfb_seconds_count')).toBe(5);
    expect(sum(metrics, 'cmg_gateway_overhead_seconds_count')).toBe(5);
    expect(sum(metrics, 'cmg_upstream_ttfb_seconds_bucket', { route: '/v1/embeddings', le: '+Inf' })).toBe(1);
    const overheadSum = sum(metrics, 'cmg_gateway_overhead_seconds_sum');
    expect(overheadSum).toBeGreaterThan(0);
    expect(overheadSum).toBeLessThan(sum(metrics, 'cmg_request_duration_seconds_sum'));

    // Tokens and cost, agreeing with the outcomes.
    const outcomeTokens = (kind: 'promptTokens' | 'completionTokens') => env.gw.outcomes.reduce((n, o) => n + (o.usage?.[kind] ?? 0), 0);
    expect(sum(metrics, 'cmg_tokens_total', { type: 'prompt' })).toBe(outcomeTokens('promptTokens'));
    expect(sum(metrics, 'cmg_tokens_total', { type: 'completion' })).toBe(outcomeTokens('completionTokens'));
    expect(outcomeTokens('completionTokens')).toBeGreaterThan(0);
    expect(sum(metrics, 'cmg_cost_usd_total')).toBeGreaterThan(0);

    // Gauges read at scrape time.
    expect(metrics).toMatch(/^cmg_open_streams 0$/m);
    expect(metrics).toMatch(/^cmg_usage_writer_backlog \d+$/m);
    expect(metrics).toMatch(/^cmg_memory_writer_backlog \d+$/m);

    // One access-log line per request, with ids, model, status and timings.
    const requestLines = env.gw.logs.filter((l) => l.msg === 'request');
    const perId = new Map<unknown, number>();
    for (const l of requestLines) perId.set(l.request_id, (perId.get(l.request_id) ?? 0) + 1);
    expect([...perId.values()].every((n) => n === 1)).toBe(true);
    const line = (name: string) => requestLines.find((l) => l.request_id === ids[name])!;
    for (const name of Object.keys(ids)) {
      expect(line(name), name).toBeDefined();
      expect(typeof line(name).ms).toBe('number');
      expect(typeof line(name).status).toBe('number');
    }
    const [workspace, keyId] = [line('nonStream').workspace_id, line('nonStream').key_id];
    expect(workspace).toEqual(expect.any(String));
    expect(keyId).toEqual(expect.any(String));
    for (const name of ['nonStream', 'failing', 'stream', 'aborted', 'embedding', 'thread']) {
      expect(line(name), name).toMatchObject({ workspace_id: workspace, key_id: keyId, route: expect.stringMatching(/^\/v1\//) });
      expect(line(name).model, name).toBe(name === 'embedding' ? EMBEDDING_MODEL : MODEL);
    }
    expect(line('nonStream')).toMatchObject({
      status: 200,
      outcome: 'ok',
      stream: false,
      upstream_ttfb_ms: expect.any(Number),
      overhead_ms: expect.any(Number),
    });
    expect(line('failing')).toMatchObject({ status: failingStatus, outcome: 'upstream_error' });
    expect(line('stream')).toMatchObject({ status: 200, outcome: 'ok', stream: true, first_byte_ms: expect.any(Number) });
    // The stream's line is written at its end: its time covers the whole stream.
    expect(line('stream').ms).toBeGreaterThanOrEqual(line('stream').first_byte_ms as number);
    expect(line('aborted')).toMatchObject({ status: 200, outcome: 'client_aborted', stream: true });
    expect(line('badKey')).toMatchObject({ status: 401, route: '/v1/chat/completions' });
    expect(line('badKey').key_id).toBeUndefined();
    expect(line('thread').route).toBe('/v1/chat/completions');
    expect(line('missing')).toMatchObject({ status: 404, route: 'unmatched' });
    expect(line('health')).toMatchObject({ status: 200, route: '/health', method: 'GET' });

    // No secret, no message text, and no unbounded id anywhere in the metrics; no secret in logs.
    const logs = env.gw.logText();
    const secrets = [env.key, BAD_KEY, 'sk-or-v1-fake', ADMIN_TOKEN, ...Object.values(SECRET_TEXTS), 'walrus-cactus'];
    for (const secret of secrets) {
      expect(logs.includes(secret), `log contains ${secret}`).toBe(false);
      expect(metrics.includes(secret), `metrics contain ${secret}`).toBe(false);
    }
    for (const id of [...Object.values(ids), keyId as string, workspace as string, THREAD_ID]) {
      expect(metrics.includes(id), `metrics contain ${id}`).toBe(false);
    }
    expect(logs).not.toMatch(/authorization|bearer/i);
  });
});
