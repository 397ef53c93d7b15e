import { describe, expect, it } from 'vitest';
import { MODEL, readSse, useProxyEnv, user } from './helpers/proxy-env.js';
import { eventually } from './helpers/gateway.js';

const env = useProxyEnv();

describe('raw SSE through the gateway', () => {
  it('frames events as data lines with blank-line separators, ending with [DONE]', async () => {
    const res = await env.post('/v1/chat/completions', { model: MODEL, stream: true, messages: [user('frame me')] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.headers.get('content-length')).toBeNull();
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    const { raw, data } = await readSse(res);
    expect(raw.endsWith('data: [DONE]\n\n')).toBe(true);
    for (const block of raw.split('\n\n').filter(Boolean)) {
      expect(block).toMatch(/^(data: .+|: ?.*)$/s);
      expect(block).not.toMatch(/^event:/m);
    }
    for (const payload of data.slice(0, -1)) {
      const chunk = JSON.parse(payload);
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.usage).toBeUndefined();
    }
  });

  it("forwards every field of a stream request, with include_usage added beside the client's own stream options", async () => {
    // Raw JSON: `__proto__` here is a plain field, as JSON.parse reads it, and must travel as one.
    const raw = `{"model":"${MODEL}","stream":true,"messages":[{"role":"user","content":"x"}],"stream_options":{"extra":1},"__proto__":{"polluted":true},"seed":7}`;
    const res = await env.post('/v1/chat/completions', raw);
    expect(res.status).toBe(200);
    await readSse(res);
    const sent = env.fake.requests.at(-1)!.body as Record<string, unknown>;
    expect(sent.stream_options).toEqual({ extra: 1, include_usage: true });
    expect(sent.seed).toBe(7);
    expect(Object.keys(sent)).toContain('__proto__');
    expect(Object.getOwnPropertyDescriptor(sent, '__proto__')?.value).toEqual({ polluted: true });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('keeps the usage chunk, with empty choices, only when asked', async () => {
    const asked = await readSse(
      await env.post('/v1/chat/completions', {
        model: MODEL,
        stream: true,
        stream_options: { include_usage: true },
        messages: [user('x')],
      }),
    );
    const usageChunks = asked.data
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d))
      .filter((c) => c.usage);
    expect(usageChunks).toHaveLength(1);
    expect(usageChunks[0].choices).toEqual([]);
    expect(asked.data.at(-2)).toContain('"usage"');
    const notAsked = await readSse(await env.post('/v1/chat/completions', { model: MODEL, stream: true, messages: [user('x')] }));
    expect(notAsked.data.some((d) => d.includes('"usage"'))).toBe(false);
  });

  it('keeps an incoming sane x-request-id and replaces an insane one', async () => {
    const kept = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user('x')] },
      { headers: { 'x-request-id': 'my-trace.42' } },
    );
    expect(kept.headers.get('x-request-id')).toBe('my-trace.42');
    const replaced = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user('x')] },
      { headers: { 'x-request-id': 'bad id <script>' } },
    );
    expect(replaced.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it('does not buffer: with a slow upstream the first chunk arrives long before the last is sent', async () => {
    const t0 = performance.now();
    const res = await env.post('/v1/chat/completions', {
      model: MODEL,
      stream: true,
      messages: [user('a b c d e f')],
      fake: { mode: 'slow', delayMs: 150 },
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const arrivals: { at: number; text: string }[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push({ at: performance.now() - t0, text: decoder.decode(value, { stream: true }) });
    }
    const firstContent = arrivals.find((a) => a.text.includes('You '))!;
    const last = arrivals.at(-1)!;
    expect(last.text).toContain('[DONE]');
    // ~10 events 150 ms apart: everything-at-once would put the first content at the very end.
    expect(last.at - firstContent.at).toBeGreaterThan(800);
    expect(arrivals.length).toBeGreaterThan(5);
  });

  it('passes multi-byte text split across TCP writes intact', async () => {
    const res = await env.post('/v1/chat/completions', { model: MODEL, stream: true, messages: [user('x')], fake: { mode: 'utf8_split' } });
    const { data } = await readSse(res);
    const text = data
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '')
      .join('');
    expect(text).toBe('héllo wörld 你好 🎉');
    await eventually(() => env.gw.outcomes.length === 1);
    expect(env.gw.outcomes[0].text).toBe('héllo wörld 你好 🎉');
  });
});

describe('client disconnect', () => {
  it('aborts the upstream request within one second, and the outcome says client_aborted', async () => {
    const controller = new AbortController();
    const res = await env.post(
      '/v1/chat/completions',
      { model: MODEL, stream: true, messages: [user('a b c d e f g h i j k l m n o p')], fake: { mode: 'slow', delayMs: 300 } },
      { signal: controller.signal },
    );
    const reader = res.body!.getReader();
    await reader.read();
    const abortSeen = env.fake.waitForAbort(1_000);
    const t0 = Date.now();
    controller.abort();
    const aborted = await abortSeen;
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(aborted.aborted).toBe(true);
    await eventually(() => env.gw.outcomes.length === 1);
    expect(env.gw.outcomes[0]).toMatchObject({ status: 'client_aborted', stream: true });
  });

  it('aborts a non-stream request the client gave up on', async () => {
    const controller = new AbortController();
    const pending = env
      .post('/v1/chat/completions', { model: MODEL, messages: [user('x')], fake: { mode: 'hang' } }, { signal: controller.signal })
      .catch((e) => e);
    await eventually(() => env.fake.requests.length === 1);
    const abortSeen = env.fake.waitForAbort(1_000);
    controller.abort();
    await pending;
    expect((await abortSeen).aborted).toBe(true);
    await eventually(() => env.gw.outcomes.length === 1);
    expect(env.gw.outcomes[0].status).toBe('client_aborted');
  });
});
