import { setMaxListeners } from 'node:events';
import OpenAI from 'openai';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { openTestDatabase } from './helpers/databases.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

// The upstream used well: retries that never multiply, no hidden connection cap, bounded waits and
// bounded bodies. Real SDK clients keep their default retries here (maxRetries 2).

const chatCalls = (fake: FakeOpenRouter) => fake.requests.filter((r) => r.path.endsWith('/chat/completions'));

async function sdkError(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

const metric = async (gw: TestGateway, name: string) => {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm'));
  return m ? Number(m[1]) : undefined;
};

describe('retries that never multiply (the SDK with its default retries)', () => {
  const env = useProxyEnv({ config: { upstreamMaxBodyBytes: 4_096 } });
  const sdk = () => new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, timeout: 10_000 }); // maxRetries: 2, the default

  it('one upstream 500: 3 upstream attempts in all, the SDK told not to retry the gateway’s answer', async () => {
    const err = await sdkError(
      sdk().chat.completions.create({ model: MODEL, messages: [user('x')], fake: { mode: 'error', status: 500 } } as any),
    );
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(chatCalls(env.fake)).toHaveLength(3);
    expect(env.gw.outcomes).toHaveLength(1);
  });

  it('an upstream that drops the connection before answering: 3 attempts, not 3 × 3', async () => {
    const err = await sdkError(sdk().chat.completions.create({ model: MODEL, messages: [user('x')], fake: { mode: 'drop' } } as any));
    expect(err).toMatchObject({ status: 503, code: 'upstream_unavailable' });
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(chatCalls(env.fake)).toHaveLength(3);
    expect(env.gw.outcomes.map((o) => o.status)).toEqual(['upstream_error']);
  });

  it('a body cut after a 200 is never retried, by the gateway or the SDK: one generation, one record', async () => {
    const err = await sdkError(
      sdk().chat.completions.create({ model: MODEL, messages: [user('x')], fake: { mode: 'drop_after_headers' } } as any),
    );
    expect(err.status).toBeGreaterThanOrEqual(500);
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(chatCalls(env.fake)).toHaveLength(1);
    expect(env.gw.outcomes).toHaveLength(1);
    expect(env.gw.outcomes[0]).toMatchObject({ status: 'upstream_error' });
  });

  it('a 200 carrying an error is not run again by the SDK', async () => {
    const err = await sdkError(
      sdk().chat.completions.create({ model: MODEL, messages: [user('x')], fake: { mode: 'nonstream_error_200' } } as any),
    );
    expect(err.status).toBe(502);
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(chatCalls(env.fake)).toHaveLength(1);
  });

  it('a non-stream upstream body over UPSTREAM_MAX_BODY_BYTES is a clear 502, not retried, recorded once', async () => {
    const err = await sdkError(
      sdk().chat.completions.create({ model: MODEL, messages: [user('x')], fake: { reply: 'y'.repeat(10_000) } } as any),
    );
    expect(err).toMatchObject({ status: 502, code: 'upstream_error' });
    expect(err.error.message).toMatch(/larger than the gateway's limit of 4096 bytes \(UPSTREAM_MAX_BODY_BYTES\)/);
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(chatCalls(env.fake)).toHaveLength(1);
    expect(env.gw.outcomes.map((o) => [o.status, o.httpStatus])).toEqual([['upstream_error', 502]]);
    // Under the cap, the same reply passes.
    const ok = await sdk().chat.completions.create({ model: MODEL, messages: [user('x')], fake: { reply: 'y'.repeat(1_000) } } as any);
    expect(ok.choices[0].message.content).toBe('y'.repeat(1_000));
  });
});

describe('the retry budget', () => {
  const env = useProxyEnv({ config: { upstreamRetryBudgetPercent: 0 } });

  it('caps the retries an outage adds (a floor of a few per second), and the refused ones say not to retry', async () => {
    const N = 24;
    const answers = await Promise.all(
      Array.from({ length: N }, () =>
        env.post('/v1/chat/completions', { model: MODEL, messages: [user('x')], fake: { mode: 'error', status: 502 } }),
      ),
    );
    for (const a of answers) {
      expect(a.status).toBe(502);
      expect(a.headers.get('x-should-retry')).toBe('false');
      await a.text();
    }
    // Without a budget: 3 attempts each (72). With it: the requests themselves, plus the floor.
    const attempts = chatCalls(env.fake).length;
    expect(attempts).toBeGreaterThanOrEqual(N);
    expect(attempts).toBeLessThanOrEqual(N + 8);
    expect(await metric(env.gw, 'cmg_upstream_retries_denied_total')).toBeGreaterThan(0);
  });
});

describe('no hidden connection cap', () => {
  let fake: FakeOpenRouter;
  let database: Database;
  let gw: TestGateway;
  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    database = await openTestDatabase('pglite');
    gw = await startTestGateway({ database, upstreamUrl: fake.baseUrl }); // the defaults
  });
  afterAll(async () => {
    await gw?.close();
    await database?.close();
    await fake?.close();
  });

  it('300 open streams all reach the upstream at once', async () => {
    const { key } = await gw.createKey({ rpm: 10_000 });
    const agent = new Agent({ connections: null });
    const N = 300;
    const ac = new AbortController();
    setMaxListeners(N + 10, ac.signal); // one listener per request on the shared signal
    const opened = Array.from({ length: N }, () =>
      request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: agent,
        signal: ac.signal,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, stream: true, messages: [user('x')], fake: { mode: 'stall' } }),
      }).then(
        (res) => {
          res.body.on('error', () => {});
          res.body.resume();
          return res.statusCode;
        },
        () => 0,
      ),
    );
    try {
      // Each stalled stream holds its upstream connection: with a cap of 256, the rest would wait.
      await eventually(() => chatCalls(fake).length === N, 15_000);
      expect(chatCalls(fake).filter((r) => !r.finished && !r.aborted)).toHaveLength(N);
      expect(await metric(gw, 'cmg_upstream_requests_active')).toBe(N);
      expect(await metric(gw, 'cmg_upstream_requests_queued')).toBe(0);
      expect(new Set(await Promise.all(opened))).toEqual(new Set([200]));
    } finally {
      ac.abort();
      await agent.close().catch(() => {});
    }
    await eventually(() => gw.outcomes.length === N, 10_000);
    expect(new Set(gw.outcomes.map((o) => o.status))).toEqual(new Set(['client_aborted']));
  }, 40_000);
});

const post = (gw: TestGateway, key: string, body: object, signal?: AbortSignal) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    signal,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [user('x')], ...body }),
  });

describe('a configured connection cap', () => {
  describe('with a deadline shorter than the queue', () => {
    const env = useProxyEnv({ config: { upstreamMaxConnections: 1, upstreamQueueTimeoutMs: 1_500, upstreamTimeoutMs: 700 } });

    it('queues visibly, and the wait for a connection does not eat the upstream deadline', async () => {
      // Each takes 450 ms upstream; the third waits ~900 ms for the one connection, longer than the
      // 700 ms deadline: it still succeeds, because its deadline starts once it has the connection.
      const pending = [0, 1, 2].map(() => post(env.gw, env.key, { fake: { delayMs: 450 } }));
      let queued: number | undefined;
      for (let i = 0; i < 40 && queued !== 2; i++) {
        queued = await metric(env.gw, 'cmg_upstream_requests_queued');
        if (queued !== 2) await new Promise((r) => setTimeout(r, 10));
      }
      expect(queued).toBe(2);
      expect(chatCalls(env.fake)).toHaveLength(1);
      const answers = await Promise.all(pending);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(chatCalls(env.fake)).toHaveLength(3);
      expect(env.gw.outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'ok']);
    });
  });

  describe('with a short queue timeout', () => {
    const env = useProxyEnv({ config: { upstreamMaxConnections: 1, upstreamQueueTimeoutMs: 400 } });

    it('a request that cannot get a connection in UPSTREAM_QUEUE_TIMEOUT_MS is a clear 503, recorded', async () => {
      const ac = new AbortController();
      // A stalled stream holds the one connection until its client leaves.
      const holder = await post(env.gw, env.key, { stream: true, fake: { mode: 'stall' } }, ac.signal);
      expect(holder.status).toBe(200);
      const t0 = performance.now();
      const refused = await post(env.gw, env.key, {});
      const ms = performance.now() - t0;
      expect(refused.status).toBe(503);
      const body = await refused.json();
      expect(body.error.code).toBe('upstream_unavailable');
      expect(body.error.message).toMatch(/All 1 upstream connections stayed busy.*UPSTREAM_MAX_CONNECTIONS/);
      expect(ms).toBeGreaterThan(350);
      expect(ms).toBeLessThan(2_000);
      expect(await metric(env.gw, 'cmg_upstream_queue_timeouts_total')).toBe(1);
      expect(chatCalls(env.fake)).toHaveLength(1);
      ac.abort();
      await eventually(() => env.gw.outcomes.length === 2, 3_000);
      expect(env.gw.outcomes.map((o) => [o.status, o.httpStatus]).sort()).toEqual([
        ['client_aborted', 200],
        ['upstream_error', 503],
      ]);
      // The connection is free again.
      expect((await post(env.gw, env.key, {})).status).toBe(200);
    });
  });
});

describe('upstream waits are bounded', () => {
  const env = useProxyEnv({ config: { upstreamTimeoutMs: 8_000, upstreamIdleTimeoutMs: 500 } });

  it('a stream whose upstream never sends headers ends at the idle bound, not the whole-request one', async () => {
    const t0 = performance.now();
    const res = await env.post('/v1/chat/completions', { model: MODEL, stream: true, messages: [user('x')], fake: { mode: 'hang' } });
    const ms = performance.now() - t0;
    expect(res.status).toBe(504);
    expect((await res.json()).error.code).toBe('upstream_timeout');
    expect(ms).toBeLessThan(2_000);
    expect(env.gw.outcomes.at(-1)).toMatchObject({ status: 'timeout' });
  });
});

describe('bounded memory per request: what is kept of a long reply', () => {
  const env = useProxyEnv({ config: { memoryMaxReplyBytes: 2_048 } });
  const reply = Array.from({ length: 1_500 }, (_, i) => `w${i}`).join(' '); // ~8.4 KB in ~1,500 chunks

  const storedReply = async (thread: string) => {
    let found: any;
    for (let i = 0; i < 100 && !found; i++) {
      const res = await fetch(`${env.gw.url}/v1/threads/${thread}/items?limit=100`, { headers: { authorization: `Bearer ${env.key}` } });
      if (res.status === 200) found = (await res.json()).data.find((it: any) => it.role === 'assistant');
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    return found;
  };

  it.each([true, false])('stream %s: relayed whole, stored cut at MEMORY_MAX_REPLY_BYTES and marked', async (stream) => {
    const thread = `long-${stream}-${Math.random().toString(36).slice(2, 8)}`;
    const res = await env.post(
      '/v1/chat/completions',
      { model: MODEL, stream, messages: [user('say a lot')], fake: { reply } },
      { headers: { 'x-thread-id': thread } },
    );
    expect(res.status).toBe(200);
    let received: string;
    if (stream) {
      const raw = await res.text();
      received = raw
        .split('\n\n')
        .filter((e) => e.startsWith('data: {'))
        .map((e) => JSON.parse(e.slice(6)).choices?.[0]?.delta?.content ?? '')
        .join('');
    } else {
      received = (await res.json()).choices[0].message.content;
    }
    expect(received).toBe(reply); // the client gets all of it
    const item = await storedReply(thread);
    expect(item).toBeDefined();
    const text = typeof item.content === 'string' ? item.content : JSON.stringify(item.content);
    expect(text.startsWith(reply.slice(0, 2_048))).toBe(true);
    expect(text).not.toContain(reply.slice(0, 2_100));
    expect(text).toMatch(/\[truncated by the gateway: the reply was longer than the 2048 bytes kept in memory\]$/);
    expect(env.gw.outcomes.at(-1)).toMatchObject({ status: 'ok' });
  });
});
