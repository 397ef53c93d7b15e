import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { eventually } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

const env = useProxyEnv();

type Way = 'header' | 'metadata' | 'path';
/** An SDK client that names the thread one of the three ways. */
function clientFor(way: Way, thread: string): { client: OpenAI; extra: Record<string, unknown> } {
  if (way === 'path') return { client: new OpenAI({ baseURL: `${env.gw.url}/t/${thread}/v1`, apiKey: env.key, maxRetries: 0 }), extra: {} };
  if (way === 'header') {
    return {
      client: new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0, defaultHeaders: { 'X-Thread-Id': thread } }),
      extra: {},
    };
  }
  return {
    client: new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0 }),
    extra: { metadata: { thread_id: thread } },
  };
}

async function ask(client: OpenAI, extra: Record<string, unknown>, content: string, stream: boolean): Promise<string> {
  const body = { model: MODEL, messages: [user(content)], ...extra };
  if (!stream) return (await client.chat.completions.create(body)).choices[0].message.content ?? '';
  let text = '';
  for await (const chunk of (await client.chat.completions.create({ ...body, stream: true } as any)) as any)
    text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

const items = async (thread: string, key = env.key) => {
  const res = await fetch(`${env.gw.url}/v1/threads/${thread}/items?limit=100`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: res.status === 200 ? await res.json() : await res.json() };
};

describe('thread memory through the real server', () => {
  for (const way of ['header', 'metadata', 'path'] as const) {
    for (const stream of [false, true]) {
      it(`recalls a fact from an earlier request (${way}, ${stream ? 'stream' : 'non-stream'})`, async () => {
        const thread = `ada-${way}-${stream}-${Date.now()}`;
        const { client, extra } = clientFor(way, thread);
        expect(await ask(client, extra, 'Hello, my name is Ada.', stream)).toContain('my name is Ada');
        expect(await ask(client, extra, 'What is my name?', stream)).toBe('Your name is Ada.');
        // Without the thread the upstream cannot know.
        const plain = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0 });
        expect(await ask(plain, {}, 'What is my name?', stream)).toBe('I do not know your name.');
        const sent = env.fake.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-2)!.body;
        expect(sent.metadata?.thread_id).toBeUndefined();
      });
    }
  }

  it('echoes x-thread-id and rejects a bad id or memory mode', async () => {
    const ok = await env.post('/v1/chat/completions', { model: MODEL, messages: [user('hi')] }, { headers: { 'x-thread-id': 'echo-1' } });
    expect(ok.headers.get('x-thread-id')).toBe('echo-1');
    expect(ok.headers.get('x-memory-status')).toBe('ok');
    const bad = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user('hi')] },
      { headers: { 'x-thread-id': 'no spaces!' } },
    );
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.param).toBe('X-Thread-Id');
    const mode = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user('hi')] },
      { headers: { 'x-thread-id': 'echo-1', 'x-memory': 'sometimes' } },
    );
    expect(mode.status).toBe(400);
  });

  it('re-sending the full history duplicates nothing upstream or in storage', async () => {
    const thread = `resend-${Date.now()}`;
    const { client, extra } = clientFor('header', thread);
    const history: any[] = [];
    for (const q of ['first question', 'second question', 'third question']) {
      history.push(user(q));
      const res = await client.chat.completions.create({ model: MODEL, messages: history, ...extra });
      history.push({ role: 'assistant', content: res.choices[0].message.content });
    }
    const lastSent = env.fake.requests.at(-1)!.body.messages;
    expect(lastSent.map((m: any) => m.content)).toEqual(history.slice(0, 5).map((m) => m.content));
    const stored = await items(thread);
    expect(stored.body.data.map((i: any) => i.content)).toEqual(history.map((m) => m.content));
  });

  it('a regenerate (the history re-sent up to the last user turn) supersedes the earlier reply', async () => {
    const thread = `regen-${Date.now()}`;
    const { client, extra } = clientFor('header', thread);
    const first = await client.chat.completions.create({ model: MODEL, messages: [user('hello')], ...extra });
    const history = [user('hello'), { role: 'assistant', content: first.choices[0].message.content }, user('tell me a joke')];
    await client.chat.completions.create({ model: MODEL, messages: history, ...extra } as any);
    await client.chat.completions.create({ model: MODEL, messages: history, ...extra } as any); // regenerate
    const stored = (await items(thread)).body.data;
    expect(stored.map((i: any) => [i.role, i.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['user', 'complete'],
      ['assistant', 'superseded'],
      ['assistant', 'complete'],
    ]);
    // The regenerate request carried exactly the client's history, not the old reply.
    expect(env.fake.requests.at(-1)!.body.messages).toEqual(history);
  });

  it('a memory-only client sending the same message again asks again (a new turn, not a regenerate)', async () => {
    const thread = `again-${Date.now()}`;
    const { client, extra } = clientFor('header', thread);
    await ask(client, extra, 'tell me a joke', false);
    await ask(client, extra, 'tell me a joke', false);
    const stored = (await items(thread)).body.data;
    expect(stored.map((i: any) => [i.role, i.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    expect(env.fake.requests.at(-1)!.body.messages.map((m: any) => m.role)).toEqual(['user', 'assistant', 'user']);
  });

  it('a long thread on a 600-token model never errors and keeps the newest turns', async () => {
    const thread = `small-${Date.now()}`;
    for (let i = 0; i < 30; i++) {
      const res = await env.post(
        '/v1/chat/completions',
        { model: 'fake/small-600', max_tokens: 50, messages: [user(`turn ${i}: ${'lorem ipsum dolor sit amet '.repeat(4)}`)] },
        { headers: { 'x-thread-id': thread } },
      );
      expect(res.status, await res.clone().text()).toBe(200);
      await res.text();
    }
    const sent = env.fake.requests.at(-1)!.body.messages.map((m: any) => String(m.content));
    expect(sent.length).toBeGreaterThan(2);
    expect(sent.at(-1)).toMatch(/^turn 29:/);
    expect(sent.at(-3)).toMatch(/^turn 28:/);
    expect(sent.some((c: string) => c.startsWith('turn 0:'))).toBe(false);
  });

  it('stores streamed text and tool-call replies whole, multi-byte characters included', async () => {
    const thread = `whole-${Date.now()}`;
    const res = await env.post(
      '/v1/chat/completions',
      { model: MODEL, stream: true, messages: [user('x')], fake: { mode: 'utf8_split' } },
      { headers: { 'x-thread-id': thread } },
    );
    await res.text();
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const res2 = await env.post(
      '/v1/chat/completions',
      { model: MODEL, stream: true, tools, messages: [user('weather?')], fake: { mode: 'tool_calls' } },
      { headers: { 'x-thread-id': thread } },
    );
    await res2.text();
    await eventually(() => env.gw.outcomes.length === 2);
    const stored = (await items(thread)).body.data;
    expect(stored[1]).toMatchObject({ role: 'assistant', content: 'héllo wörld 你好 🎉', status: 'complete' });
    expect(stored[3].tool_calls[0].function).toEqual({ name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' });
  });

  it('stores an aborted reply as incomplete and never injects it', async () => {
    const thread = `abort-${Date.now()}`;
    const controller = new AbortController();
    const res = await env.post(
      '/v1/chat/completions',
      {
        model: MODEL,
        stream: true,
        messages: [user('alpha beta gamma delta epsilon zeta eta theta')],
        fake: { mode: 'slow', delayMs: 150 },
      },
      { headers: { 'x-thread-id': thread }, signal: controller.signal },
    );
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('You ')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    await eventually(() => env.gw.outcomes.some((o) => o.status === 'client_aborted'));
    const stored = (await items(thread)).body.data;
    expect(stored.map((i: any) => [i.role, i.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'incomplete'],
    ]);
    await (
      await env.post('/v1/chat/completions', { model: MODEL, messages: [user('next')] }, { headers: { 'x-thread-id': thread } })
    ).text();
    const sent = env.fake.requests.at(-1)!.body.messages;
    expect(sent.map((m: any) => m.role)).toEqual(['user', 'user']);
  });

  it('ten concurrent requests on one thread keep a single consistent order', async () => {
    const thread = `concurrent-${Date.now()}`;
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const res = await env.post(
          '/v1/chat/completions',
          { model: MODEL, messages: [user(`message ${i}`)] },
          { headers: { 'x-thread-id': thread } },
        );
        await res.text();
      }),
    );
    const stored = (await items(thread)).body.data;
    expect(stored).toHaveLength(20);
    expect(stored.map((i: any) => i.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (let i = 0; i < 20; i += 2) {
      expect(stored[i].role).toBe('user');
      expect(stored[i + 1]).toMatchObject({ role: 'assistant', content: `You said: ${stored[i].content}` });
    }
  });

  it("another workspace's key gets 404 and its requests never see the thread", async () => {
    const thread = `private-${Date.now()}`;
    await (
      await env.post('/v1/chat/completions', { model: MODEL, messages: [user('my name is Grace')] }, { headers: { 'x-thread-id': thread } })
    ).text();
    const other = await env.gw.createKey();
    expect((await items(thread, other.key)).status).toBe(404);
    const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.key}`, 'content-type': 'application/json', 'x-thread-id': thread },
      body: JSON.stringify({ model: MODEL, messages: [user('what is my name?')] }),
    });
    expect((await res.json()).choices[0].message.content).toBe('I do not know your name.');
  });
});
