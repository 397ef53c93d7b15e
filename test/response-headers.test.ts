import { describe, expect, it } from 'vitest';
import { MODEL, readSse, useProxyEnv, user } from './helpers/proxy-env.js';

// The gateway's own response headers (request id, thread, memory status, rate limits) are written
// with responses that go straight to Node's socket, and with CORS on they pass through Hono's CORS
// middleware: both ways must carry every header.

const post = (url: string, key: string, body: object, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('gateway response headers, written straight to the socket', () => {
  const env = useProxyEnv();

  it('non-stream and stream answers carry the request id, thread, memory status and rate-limit headers', async () => {
    const { key } = await env.gw.createKey({ rpm: 100 });
    for (const stream of [false, true]) {
      const res = await post(
        env.gw.url,
        key,
        { model: MODEL, stream, messages: [user('headers please')] },
        { 'x-thread-id': `hdr-${stream}`, 'x-request-id': `trace-${stream}` },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe(`trace-${stream}`);
      expect(res.headers.get('x-thread-id')).toBe(`hdr-${stream}`);
      expect(res.headers.get('x-memory-status')).toMatch(/^\w+$/);
      expect(res.headers.get('x-ratelimit-limit-requests')).toBe('100');
      expect(Number(res.headers.get('x-ratelimit-remaining-requests'))).toBeLessThan(100);
      if (stream) {
        expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
        expect((await readSse(res)).data.at(-1)).toBe('[DONE]');
      } else {
        expect(res.headers.get('content-type')).toBe('application/json');
        const text = await res.text();
        expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
        expect(JSON.parse(text).choices[0].message.content).toBeTruthy();
      }
    }
  });

  it('embeddings answers carry the request id and an exact content length', async () => {
    const res = await fetch(`${env.gw.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.key}`, 'content-type': 'application/json', 'x-request-id': 'trace-emb' },
      body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: 'hello' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-emb');
    expect(res.headers.get('content-type')).toBe('application/json');
    const text = await res.text();
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(JSON.parse(text).data[0].embedding.length).toBeGreaterThan(0);
  });

  it('errors carry the request id and the rate-limit headers', async () => {
    const { key } = await env.gw.createKey({ rpm: 1 });
    expect((await post(env.gw.url, key, { model: MODEL, messages: [user('one')] })).status).toBe(200);
    const refused = await post(env.gw.url, key, { model: MODEL, messages: [user('two')] }, { 'x-request-id': 'trace-429' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-request-id')).toBe('trace-429');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const bad = await post(env.gw.url, key, { messages: [user('no model')] });
    expect(bad.headers.get('x-request-id')).toMatch(/^req_/);
  });
});

describe('gateway response headers with CORS on', () => {
  const env = useProxyEnv({ config: { corsOrigins: ['https://app.example'] } });

  it('non-stream and stream answers carry the CORS headers and the gateway headers', async () => {
    for (const stream of [false, true]) {
      const res = await post(
        env.gw.url,
        env.key,
        { model: MODEL, stream, messages: [user('cors')] },
        { origin: 'https://app.example', 'x-thread-id': 'cors-thread' },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id');
      expect(res.headers.get('x-request-id')).toMatch(/^req_/);
      expect(res.headers.get('x-thread-id')).toBe('cors-thread');
      if (stream) expect((await readSse(res)).data.at(-1)).toBe('[DONE]');
      else expect((await res.json()).object).toBe('chat.completion');
    }
  });
});
