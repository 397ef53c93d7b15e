import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { expectedUsage } from './fake-openrouter/server.js';
import { dbKinds } from './helpers/databases.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';
import { eventually } from './helpers/gateway.js';

describe.each(dbKinds())('the official openai SDK through a real gateway on %s', (db) => {
  const env = useProxyEnv({ db });

  it('non-stream', async () => {
    const body = { model: MODEL, messages: [user('hello gateway')] };
    const completion = await env.openai.chat.completions.create(body);
    expect(completion.choices[0].message.content).toBe('You said: hello gateway');
    expect(completion.usage).toMatchObject({
      prompt_tokens: expectedUsage(body).prompt_tokens,
      completion_tokens: expectedUsage(body).completion_tokens,
    });
    expect(completion.id).toMatch(/^gen-/);
    expect((completion as any).provider).toBe('FakeProvider');
    // Forwarded untouched: the body the upstream saw equals what the client sent.
    expect(env.fake.requests.at(-1)!.body).toEqual(body);
    expect(env.fake.requests.at(-1)!.headers.authorization).toBe('Bearer sk-or-v1-fake');
  });

  it('stream: text arrives in pieces, no usage chunk unless asked', async () => {
    const stream = await env.openai.chat.completions.create({ model: MODEL, stream: true, messages: [user('one two three')] });
    const pieces: string[] = [];
    let sawUsage = false;
    for await (const chunk of stream) {
      expect(chunk.choices.length).toBe(1); // code doing chunk.choices[0] must never crash
      pieces.push(chunk.choices[0].delta.content ?? '');
      if (chunk.usage) sawUsage = true;
    }
    expect(pieces.join('')).toBe('You said: one two three');
    expect(pieces.filter(Boolean).length).toBeGreaterThan(3);
    expect(sawUsage).toBe(false);
    // The gateway asked the upstream for usage all the same.
    expect(env.fake.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true });
    await eventually(() => env.gw.outcomes.length === 1);
    expect(env.gw.outcomes[0].usage?.completionTokens).toBe(5);
    expect(env.gw.outcomes[0].text).toBe('You said: one two three');
  });

  it.each(['empty_delta', 'empty_choices', 'no_choices'])('stream with include_usage (upstream usage shape %s)', async (usageShape) => {
    const body = {
      model: MODEL,
      stream: true as const,
      stream_options: { include_usage: true },
      messages: [user('count me')],
      fake: { usageShape },
    };
    const stream = await env.openai.chat.completions.create(body as any);
    const usageChunks: OpenAI.ChatCompletionChunk[] = [];
    let text = '';
    for await (const chunk of stream as any as AsyncIterable<OpenAI.ChatCompletionChunk>) {
      if (chunk.usage) usageChunks.push(chunk);
      else text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe('You said: count me');
    expect(usageChunks).toHaveLength(1);
    expect(usageChunks[0].choices).toEqual([]);
    const expected = expectedUsage(body);
    expect(usageChunks[0].usage).toMatchObject({ prompt_tokens: expected.prompt_tokens, completion_tokens: expected.completion_tokens });
    expect((usageChunks[0].usage as any).cost).toBe(expected.cost);
  });

  it('streamed tool calls reassemble', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
      },
    ];
    const stream = env.openai.chat.completions.stream({
      model: MODEL,
      messages: [user('weather?')],
      tools,
      fake: { mode: 'tool_calls' },
    } as any);
    const final = await stream.finalChatCompletion();
    const call = final.choices[0].message.tool_calls![0] as any;
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris', unit: 'c' });
    expect(final.choices[0].finish_reason).toBe('tool_calls');
    await eventually(() => env.gw.outcomes.length === 1);
    expect(env.gw.outcomes[0].toolCalls[0].function).toEqual({ name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' });
  });

  it('non-stream tool calls', async () => {
    const completion = await env.openai.chat.completions.create({
      model: MODEL,
      messages: [user('weather?')],
      fake: { mode: 'tool_calls' },
    } as any);
    expect((completion.choices[0].message.tool_calls![0] as any).function.name).toBe('get_weather');
  });

  it('embeddings and models', async () => {
    const emb = await env.openai.embeddings.create({ model: 'openai/text-embedding-3-small', input: ['a', 'b'] });
    expect(emb.data).toHaveLength(2);
    expect(emb.data[0].embedding.length).toBe(8);
    expect(env.gw.outcomes[0]).toMatchObject({ route: 'embeddings', status: 'ok' });
    expect(env.gw.outcomes[0].usage?.promptTokens).toBe(emb.usage.prompt_tokens);

    const models = await env.openai.models.list();
    const small = models.data.find((m) => m.id === 'fake/small-600') as any;
    expect(small).toMatchObject({ object: 'model', owned_by: 'fake', context_length: 600 });
    expect(small.pricing.prompt).toEqual(expect.any(String));
    const one = await env.openai.models.retrieve('openai/gpt-4o-mini');
    expect(one.id).toBe('openai/gpt-4o-mini');
  });

  it('maps failures to the SDK error classes', async () => {
    const bad = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: 'cmg_wrong', maxRetries: 0 });
    await expect(bad.chat.completions.create({ model: MODEL, messages: [user('x')] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(env.openai.chat.completions.create({ model: MODEL } as any)).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const rate = await env.openai.chat.completions
      .create({ model: MODEL, messages: [user('x')], fake: { mode: 'error', status: 429 } } as any)
      .catch((e) => e);
    expect(rate).toBeInstanceOf(OpenAI.RateLimitError);
    expect(rate.headers.get('retry-after')).toBe('7');
    const server = await env.openai.chat.completions
      .create({ model: MODEL, messages: [user('x')], fake: { mode: 'error', status: 502 } } as any)
      .catch((e) => e);
    expect(server).toBeInstanceOf(OpenAI.InternalServerError);
    expect(server.code).toBe('server_error');
    const midStream = await (async () => {
      const stream = await env.openai.chat.completions.create({
        model: MODEL,
        stream: true,
        messages: [user('a b c d')],
        fake: { mode: 'midstream_error' },
      } as any);
      for await (const _ of stream as any) {
        // drain until the SDK throws on the error event
      }
    })().catch((e) => e);
    expect(midStream).toBeInstanceOf(OpenAI.APIError);
    expect(midStream.message).toMatch(/Provider returned error/);
  });
});
