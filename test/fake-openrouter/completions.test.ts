import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { completionReplyFor, expectedCompletionsUsage } from './server.js';
import { sseData, useFake } from './testkit.js';

const t = useFake();
const MODEL = 'openai/gpt-4o-mini';

describe('fake OpenRouter: POST /completions (legacy)', () => {
  it('answers in OpenRouter text_completion shape with exact usage', async () => {
    const body = { model: MODEL, prompt: 'hello there' };
    const res = await t.post('/completions', body);
    expect(res.status).toBe(200);
    const json = await res.json();
    expect(res.headers.get('x-generation-id')).toBe(json.id);
    expect(json.id).toMatch(/^gen-\d+-[A-Za-z0-9]+$/);
    expect(json).toMatchObject({ object: 'text_completion', model: MODEL, provider: 'FakeProvider' });
    expect(json.choices).toEqual([
      { index: 0, text: 'You said: hello there', finish_reason: 'stop', native_finish_reason: 'stop', logprobs: null },
    ]);
    // 11 chars -> 3 prompt tokens; 4 word pieces; (3*150 + 4*600) nano-USD
    expect(json.usage).toEqual(expectedCompletionsUsage(body));
    expect(json.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost: 0.00000285 });
    expect(t.fake.requests[0]).toMatchObject({ path: '/api/v1/completions', body, finished: true });
  });

  it('works with the openai SDK: one choice per prompt, max_tokens cuts with finish_reason "length"', async () => {
    const one = await t.client.completions.create({ model: MODEL, prompt: 'say hi' });
    expect(one.choices[0].text).toBe('You said: say hi');
    const many = await t.client.completions.create({ model: MODEL, prompt: ['a b', 'c'], max_tokens: 3 });
    expect(many.choices.map((c) => [c.index, c.text, c.finish_reason])).toEqual([
      [0, 'You said: a ', 'length'],
      [1, 'You said: c', 'stop'],
    ]);
    expect(many.usage).toEqual(expectedCompletionsUsage({ model: MODEL, prompt: ['a b', 'c'], max_tokens: 3 }));
    expect(completionReplyFor({ fake: { reply: 'scripted' } }, 'x')).toBe('scripted');
  });

  it('streams text chunks, finish chunks, usage and [DONE]; the SDK reads them', async () => {
    const body = { model: MODEL, prompt: 'one two', stream: true };
    const res = await t.post('/completions', body);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text.startsWith(': OPENROUTER PROCESSING\n\n')).toBe(true);
    const data = sseData(text);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.every((c) => c.object === 'text_completion' && c.id === res.headers.get('x-generation-id'))).toBe(true);
    const [finish, usage] = chunks.slice(-2);
    expect(finish.choices[0]).toMatchObject({ index: 0, text: '', finish_reason: 'stop' });
    expect(usage.choices).toEqual([{ index: 0, text: '', finish_reason: null, native_finish_reason: null, logprobs: null }]);
    expect(usage.usage).toEqual(expectedCompletionsUsage(body));
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe('You said: one two');

    const stream = await t.client.completions.create({
      model: MODEL,
      prompt: 'stream me',
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamed = '';
    let total = 0;
    for await (const chunk of stream) {
      streamed += chunk.choices?.[0]?.text ?? '';
      total = chunk.usage?.total_tokens ?? total;
    }
    expect(streamed).toBe('You said: stream me');
    expect(total).toBe(expectedCompletionsUsage({ prompt: 'stream me' }).total_tokens);

    const empty = await t.post('/completions', { ...body, fake: { usageShape: 'empty_choices' } });
    expect(JSON.parse(sseData(await empty.text()).at(-2)!).choices).toEqual([]);
  });

  it('fails like chat: error status, mid-stream error event, dropped socket, bad requests', async () => {
    const res = await t.post('/completions', { model: MODEL, prompt: 'x', fake: { mode: 'error', status: 429 } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect((await res.json()).error).toEqual({
      code: 429,
      message: 'Fake upstream error 429',
      metadata: { provider_name: 'FakeProvider' },
    });
    const err = await t.client.completions
      .create({ model: MODEL, prompt: 'x', fake: { mode: 'error', status: 503 } } as any)
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);

    const base = { model: MODEL, prompt: 'a b c d e f', stream: true };
    const mid = await t.post('/completions', { ...base, fake: { mode: 'midstream_error' } });
    const data = sseData(await mid.text());
    expect(data).not.toContain('[DONE]');
    expect(data.length).toBe(3); // two text chunks, then the error
    expect(JSON.parse(data.at(-1)!)).toMatchObject({ error: { code: 502 }, choices: [{ finish_reason: 'error' }] });
    const sdk = await t.client.completions.create({ ...base, stream: true, fake: { mode: 'midstream_error' } } as any);
    await expect(
      (async () => {
        for await (const _ of sdk as any);
      })(),
    ).rejects.toThrow(/Provider returned error/);

    const dropped = await t.post('/completions', { ...base, fake: { mode: 'drop' } });
    await expect(dropped.text()).rejects.toThrow();
    expect(t.fake.requests.at(-1)).toMatchObject({ aborted: false, finished: false });

    const late = await t.post('/completions', { model: MODEL, prompt: 'x', fake: { mode: 'nonstream_error_200' } });
    expect(late.status).toBe(200);
    expect(await late.json()).toMatchObject({ object: 'text_completion', error: { code: 502 } });

    const model = await t.post('/completions', { model: 'no/such-model', prompt: 'x' });
    expect(await model.json()).toEqual({ error: { code: 400, message: 'no/such-model is not a valid model ID' } });
    const missing = await t.post('/completions', { model: MODEL, prompt: [1, 2] });
    expect(missing.status).toBe(400);
  });
});
