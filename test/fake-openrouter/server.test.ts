import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { expectedUsage } from './server.js';
import { KEY, sseData, useFake, user } from './testkit.js';

const t = useFake();

describe('fake OpenRouter: normal traffic', () => {
  it('answers non-stream requests in OpenRouter shape with exact usage', async () => {
    const body = {
      model: 'openai/gpt-4o-mini',
      messages: [user('hello there')],
    };
    const res = await t.post('/chat/completions', body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const json = await res.json();
    expect(res.headers.get('x-generation-id')).toBe(json.id);
    expect(json.id).toMatch(/^gen-\d+-[A-Za-z0-9]+$/);
    expect(json).toMatchObject({
      provider: 'FakeProvider',
      model: 'openai/gpt-4o-mini',
      object: 'chat.completion',
    });
    expect(json.choices[0]).toEqual({
      logprobs: null,
      finish_reason: 'stop',
      native_finish_reason: 'stop',
      index: 0,
      message: {
        role: 'assistant',
        content: 'You said: hello there',
        refusal: null,
        reasoning: null,
      },
    });
    // 11 chars -> 3 tokens + 3 per message; 4 word pieces; (6*150 + 4*600) nano-USD
    expect(json.usage).toEqual(expectedUsage(body));
    expect(json.usage).toMatchObject({
      prompt_tokens: 6,
      completion_tokens: 4,
      total_tokens: 10,
      cost: 0.0000033,
    });
    expect(t.fake.requests).toHaveLength(1);
    expect(t.fake.requests[0]).toMatchObject({
      method: 'POST',
      path: '/api/v1/chat/completions',
      body,
      finished: true,
    });
  });

  it('remembers a name only if the request carries it (string or parts content)', async () => {
    const withName = await t.client.chat.completions.create({
      model: 'anthropic/claude-3.5-haiku',
      messages: [
        {
          role: 'user',
          content: [{ type: 'text', text: 'Hi, my name is Ada' }],
        },
        { role: 'assistant', content: 'Hello' },
        user('What is my name?'),
      ],
    });
    expect(withName.choices[0].message.content).toBe('Your name is Ada.');
    const without = await t.client.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [user('what is my name')],
    });
    expect(without.choices[0].message.content).toBe('I do not know your name.');
  });

  it('streams with keep-alive comments, role chunks, finish chunk, then usage and [DONE]', async () => {
    const body = {
      model: 'openai/gpt-4o-mini',
      stream: true,
      messages: [user('one two')],
    };
    const res = await t.post('/chat/completions', body);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const text = await res.text();
    expect(text.startsWith(': OPENROUTER PROCESSING\n\n')).toBe(true);
    expect(text.match(/^: OPENROUTER PROCESSING$/gm)!.length).toBeGreaterThan(1);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);

    const data = sseData(text);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === res.headers.get('x-generation-id'))).toBe(true);
    expect(chunks.slice(0, 2).map((c) => c.choices[0].delta)).toEqual([
      { role: 'assistant', content: '' },
      { role: 'assistant', content: '' },
    ]);
    const [finish, usage] = chunks.slice(-2);
    expect(finish.choices[0]).toMatchObject({
      finish_reason: 'stop',
      native_finish_reason: 'stop',
    });
    expect(finish.usage).toBeUndefined();
    // Usage comes even though the client did not ask for it, with one empty-delta choice.
    expect(usage.choices).toEqual([
      {
        index: 0,
        delta: { role: 'assistant', content: '' },
        finish_reason: null,
        native_finish_reason: null,
        logprobs: null,
      },
    ]);
    expect(usage.usage).toEqual(expectedUsage(body));
    const content = chunks.map((c) => c.choices[0].delta.content).join('');
    expect(content).toBe('You said: one two');
    expect(usage.usage.completion_tokens).toBe(chunks.filter((c) => c.choices[0].delta.content).length);
  });

  it('offers the other usage-chunk shapes', async () => {
    for (const [shape, check] of [
      ['empty_choices', (c: any) => expect(c.choices).toEqual([])],
      ['no_choices', (c: any) => expect('choices' in c).toBe(false)],
    ] as const) {
      const res = await t.post('/chat/completions', {
        model: 'openai/gpt-4o-mini',
        stream: true,
        messages: [user('x')],
        fake: { usageShape: shape },
      });
      const chunks = sseData(await res.text())
        .slice(0, -1)
        .map((d) => JSON.parse(d));
      const last = chunks.at(-1);
      expect(last.usage.total_tokens).toBeGreaterThan(0);
      check(last);
    }
  });

  it('is readable with the openai SDK as a stream', async () => {
    const stream = await t.client.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [user('stream me please')],
    });
    let text = '';
    let usage: any;
    for await (const chunk of stream) {
      text += chunk.choices?.[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('You said: stream me please');
    expect(usage.completion_tokens).toBe(5);
  });

  it('sends upstream errors with a numeric code and Retry-After', async () => {
    const res = await t.post('/chat/completions', {
      model: 'openai/gpt-4o-mini',
      messages: [user('x')],
      fake: { mode: 'error', status: 429 },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({
      error: {
        code: 429,
        message: 'Fake upstream error 429',
        metadata: { provider_name: 'FakeProvider' },
      },
      user_id: 'user_fake',
    });

    const err = await t.client.chat.completions
      .create({
        model: 'openai/gpt-4o-mini',
        messages: [user('x')],
        fake: { mode: 'error', status: 503, retryAfter: '2' },
      } as any)
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(503);
    expect(err.headers.get('retry-after')).toBe('2');
  });

  it('rejects bad auth, unknown models and missing messages with numeric codes', async () => {
    const auth = await t.post('/chat/completions', { model: 'openai/gpt-4o-mini', messages: [user('x')] }, 'nope');
    expect(auth.status).toBe(401);
    expect(await auth.json()).toEqual({
      error: { code: 401, message: 'No auth credentials found' },
    });
    const model = await t.post('/chat/completions', {
      model: 'no/such-model',
      messages: [user('x')],
    });
    expect(model.status).toBe(400);
    expect(await model.json()).toEqual({
      error: { code: 400, message: 'no/such-model is not a valid model ID' },
    });
    const missing = await t.post('/chat/completions', {
      model: 'openai/gpt-4o-mini',
    });
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.code).toBe(400);
  });

  it('fails then succeeds per key, and reset() clears the counters', async () => {
    const body = {
      model: 'openai/gpt-4o-mini',
      messages: [user('x')],
      fake: { mode: 'fail_then_ok', key: 'k1' },
    };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await t.post('/chat/completions', body)).status);
    expect(statuses).toEqual([502, 502, 200]);
    t.fake.reset();
    expect(t.fake.requests).toHaveLength(0);
    expect((await t.post('/chat/completions', body)).status).toBe(502);
  });

  it('serves the model catalog', async () => {
    const res = await fetch(`${t.fake.baseUrl}/models`, {
      headers: { Authorization: `Bearer ${KEY}` },
    });
    const { data } = await res.json();
    const byId = Object.fromEntries(data.map((m: any) => [m.id, m]));
    expect(byId['openai/gpt-4o-mini']).toMatchObject({
      context_length: 128000,
      pricing: {
        prompt: '0.00000015',
        completion: '0.0000006',
        request: '0',
        image: '0',
      },
      top_provider: { context_length: 128000, is_moderated: false },
      per_request_limits: null,
    });
    expect(byId['anthropic/claude-3.5-haiku'].context_length).toBe(200000);
    expect(byId['fake/small-600']).toMatchObject({
      context_length: 600,
      top_provider: { max_completion_tokens: 200 },
    });
    expect(byId['openai/text-embedding-3-small'].context_length).toBe(8192);
    expect(t.fake.requests[0]).toMatchObject({
      method: 'GET',
      path: '/api/v1/models',
    });
  });

  it('returns deterministic embeddings', async () => {
    const a = await t.client.embeddings.create({
      model: 'openai/text-embedding-3-small',
      input: ['alpha', 'beta'],
    });
    const b = await t.client.embeddings.create({
      model: 'openai/text-embedding-3-small',
      input: 'alpha',
    });
    expect(a.data.map((d) => d.index)).toEqual([0, 1]);
    expect(a.data[0].embedding).toHaveLength(8);
    expect(b.data[0].embedding).toEqual(a.data[0].embedding);
    expect(a.data[1].embedding).not.toEqual(a.data[0].embedding);
    expect(a.usage.prompt_tokens).toBe(3); // ceil(5/4) + ceil(4/4)
    // Plain JSON floats when the client does not ask for base64.
    const raw = await (
      await t.post('/embeddings', {
        model: 'openai/text-embedding-3-small',
        input: 'alpha',
      })
    ).json();
    expect(raw.data[0].embedding).toHaveLength(8);
    expect(raw.data[0].embedding[0]).toBeCloseTo(a.data[0].embedding[0], 5);
  });
});
