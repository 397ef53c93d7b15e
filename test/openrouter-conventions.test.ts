import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, readSse, useProxyEnv, user } from './helpers/proxy-env.js';

// OpenRouter's own request conventions (`usage: {include: true}`, the `models` fallback list) and a
// browser's (CORS on both API paths), through a real listening gateway and the fake upstream.

const HAIKU = 'anthropic/claude-3.5-haiku';
const ORIGIN = 'https://app.example';
const EXPOSED = [
  'x-request-id',
  'x-thread-id',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-ratelimit-fallback',
  'x-generation-id',
  'x-memory-status',
  'x-should-retry',
];

const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

function usageChunks(data: string[]) {
  return data
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d))
    .filter((chunk) => chunk.usage);
}

describe('OpenRouter and browser conventions', () => {
  const env = useProxyEnv({ config: { corsOrigins: [ORIGIN] } });

  const ledger = async (workspace: string) => {
    await env.gw.deps.usage.flush();
    const res = await fetch(`${env.gw.url}/admin/usage/requests?workspace=${workspace}&from=${today()}&to=${tomorrow()}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    return (await res.json()).data as Record<string, any>[];
  };

  describe('usage: {include: true} on streams', () => {
    for (const usageShape of ['empty_delta', 'empty_choices', 'no_choices'] as const) {
      it(`delivers exactly one usage chunk, with choices: [], right before [DONE] (upstream shape ${usageShape})`, async () => {
        const res = await env.post('/v1/chat/completions', {
          model: MODEL,
          stream: true,
          usage: { include: true },
          messages: [user('count me')],
          fake: { usageShape },
        });
        expect(res.status).toBe(200);
        const { data } = await readSse(res);
        expect(data.at(-1)).toBe('[DONE]');
        const chunks = usageChunks(data);
        expect(chunks).toHaveLength(1);
        expect(chunks[0].choices).toEqual([]);
        expect(chunks[0].usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
        expect(JSON.parse(data.at(-2)!).usage).toEqual(chunks[0].usage);
        // Every other chunk still has a choice a client can index.
        const content = data.slice(0, -2).map((d) => JSON.parse(d));
        expect(content.length).toBeGreaterThan(0);
        expect(content.every((chunk) => Array.isArray(chunk.choices) && chunk.choices.length > 0)).toBe(true);
      });
    }

    it('sends none when neither usage.include nor stream_options.include_usage is set, and still records the usage', async () => {
      const { key, workspace } = await env.gw.createKey();
      const cases = [{}, { usage: { include: false } }, { stream_options: { include_usage: false } }, { usage: { include: true } }];
      for (const extra of cases) {
        const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, stream: true, ...extra, messages: [user('usage or not')] }),
        });
        expect(res.status).toBe(200);
        const { data } = await readSse(res);
        expect(data.at(-1)).toBe('[DONE]');
        expect(usageChunks(data), JSON.stringify(extra)).toHaveLength(extra === cases.at(-1) ? 1 : 0);
      }
      const rows = await ledger(workspace);
      expect(rows).toHaveLength(cases.length);
      for (const row of rows) {
        expect(row).toMatchObject({ status: 'ok', estimated: false });
        expect(row.prompt_tokens).toBeGreaterThan(0);
      }
    });
  });

  describe('models without model', () => {
    const post = (key: string, body: unknown, path = '/v1/chat/completions') =>
      fetch(env.gw.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    it('is accepted, stream and non-stream, and recorded under the model actually served', async () => {
      const { key, workspace } = await env.gw.createKey();
      // The primary is down upstream: OpenRouter serves the next model of the list.
      const base = { models: [MODEL, HAIKU], messages: [user('fallback please')], fake: { unavailable: [MODEL] } };
      const plain = await post(key, base);
      expect(plain.status).toBe(200);
      expect((await plain.json()).model).toBe(HAIKU);
      const streamed = await post(key, { ...base, stream: true });
      expect(streamed.status).toBe(200);
      const { data } = await readSse(streamed);
      expect(data.at(-1)).toBe('[DONE]');
      expect(JSON.parse(data[0]).model).toBe(HAIKU);

      const rows = await ledger(workspace);
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(row).toMatchObject({ status: 'ok', model: HAIKU, model_served: HAIKU, model_requested: MODEL });
      }
      expect(rows.map((r) => r.stream).sort()).toEqual([false, true]);
    });

    it('serves the first of models when it is up', async () => {
      const { key, workspace } = await env.gw.createKey();
      const res = await post(key, { models: [HAIKU, MODEL], messages: [user('primary')] });
      expect(res.status).toBe(200);
      expect((await res.json()).model).toBe(HAIKU);
      expect(await ledger(workspace)).toMatchObject([{ status: 'ok', model: HAIKU }]);
    });

    it('works with a budget and a tokens-per-minute limit (the estimate prices the first of models)', async () => {
      const { key } = await env.gw.createKey({ tpm: 100_000, budget_usd: '5', budget_period: 'day' });
      const res = await post(key, { models: [MODEL], messages: [user('budgeted')] });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
      expect((await res.json()).object).toBe('chat.completion');
    });

    it('works on a thread, stream and non-stream', async () => {
      const { key } = await env.gw.createKey();
      for (const stream of [false, true]) {
        const res = await post(
          key,
          { models: [MODEL], stream, messages: [user(`thread turn ${stream}`)] },
          '/t/th-models/v1/chat/completions',
        );
        expect(res.status).toBe(200);
        expect(res.headers.get('x-thread-id')).toBe('th-models');
        expect(res.headers.get('x-memory-status')).toBe('ok');
        if (stream) expect((await readSse(res)).data.at(-1)).toBe('[DONE]');
        else expect((await res.json()).object).toBe('chat.completion');
      }
    });

    it('refuses a bad models list with 400 param models', async () => {
      for (const models of [[], 'openai/gpt-4o-mini', [''], ['  '], [MODEL, 7], {}, [null]]) {
        for (const extra of [{}, { model: MODEL }]) {
          const res = await post(env.key, { ...extra, models, messages: [user('bad models')] });
          expect(res.status, JSON.stringify(models)).toBe(400);
          const body = await res.json();
          expect(body.error).toMatchObject({ param: 'models', type: 'invalid_request_error' });
        }
      }
      expect(env.fake.requests.filter((r) => r.path.includes('/chat/completions'))).toEqual([]);
      // Neither model nor models: still a missing model.
      const neither = await post(env.key, { messages: [user('neither')] });
      expect(neither.status).toBe(400);
      expect((await neither.json()).error.param).toBe('model');
    });
  });

  describe('CORS', () => {
    it('answers preflights on both API paths with 204 and no key, for the allowed origin only', async () => {
      const preflight = (path: string, origin: string) =>
        fetch(env.gw.url + path, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
        });
      for (const path of ['/t/th-1/v1/chat/completions', '/t/th-1/v1/models', '/v1/chat/completions']) {
        const res = await preflight(path, ORIGIN);
        expect(res.status, path).toBe(204);
        expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
        expect(res.headers.get('access-control-allow-methods')).toContain('POST');
        expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
        expect((await preflight(path, 'https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
      }
    });

    for (const path of ['/t/th-1/v1/chat/completions', '/v1/chat/completions']) {
      it(`exposes the gateway's response headers on ${path}, stream and non-stream`, async () => {
        const { key } = await env.gw.createKey({ rpm: 100, tpm: 100_000 });
        for (const stream of [false, true]) {
          const res = await fetch(env.gw.url + path, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', origin: ORIGIN },
            body: JSON.stringify({ model: MODEL, stream, messages: [user('from a browser')] }),
          });
          expect(res.status).toBe(200);
          expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
          const exposed = (res.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
          for (const name of EXPOSED) expect(exposed, name).toContain(name);
          // The exposed headers are really there to read.
          expect(res.headers.get('x-ratelimit-remaining-requests')).toMatch(/^\d+$/);
          expect(res.headers.get('x-generation-id')).toMatch(/^gen-/);
          if (path.startsWith('/t/')) expect(res.headers.get('x-memory-status')).toBe('ok');
          await res.text();
        }
      });
    }

    it('refuses the real request without a key on the thread path, with the CORS headers so the browser can read the 401', async () => {
      const res = await fetch(`${env.gw.url}/t/th-1/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN },
        body: JSON.stringify({ model: MODEL, messages: [user('no key')] }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    });
  });
});
