import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

const env = useProxyEnv();
const auth = () => ({ authorization: `Bearer ${env.key}` });
const items = async (thread: string) => (await (await fetch(`${env.gw.url}/v1/threads/${thread}/items`, { headers: auth() })).json()).data;

describe('thread memory: redaction, dry run, pinned items, failures', () => {
  it('redacts secrets before storing, and still recognizes the re-sent message', async () => {
    const thread = `redact-${Date.now()}`;
    const secret = 'my key is sk-proj-abcdefghijklmnopqrstuvwxyz0123 and card 4111 1111 1111 1111';
    const first = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user(secret)] },
      { headers: { 'x-thread-id': thread } },
    );
    const reply = (await first.json()).choices[0].message.content;
    const stored = await items(thread);
    expect(JSON.stringify(stored)).not.toContain('sk-proj-abcdefghij');
    expect(JSON.stringify(stored)).not.toContain('4111 1111 1111 1111');
    expect(stored[0].content).toContain('[REDACTED:');
    // The client re-sends its history (with the secret): recognized, not stored or injected twice.
    const second = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user(secret), { role: 'assistant', content: reply }, user('next')] },
      { headers: { 'x-thread-id': thread } },
    );
    expect(second.status).toBe(200);
    await second.text();
    expect((await items(thread)).map((i: any) => i.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(env.fake.requests.at(-1)!.body.messages).toHaveLength(3);
  });

  it('keeps message content that looks like JSON as the string it was', async () => {
    const thread = `jsonish-${Date.now()}`;
    for (const text of ['42', 'true', 'null', '{"a":1}']) {
      await (
        await env.post('/v1/chat/completions', { model: MODEL, messages: [user(text)] }, { headers: { 'x-thread-id': thread } })
      ).text();
    }
    const stored = await items(thread);
    expect(stored.filter((i: any) => i.role === 'user').map((i: any) => i.content)).toEqual(['42', 'true', 'null', '{"a":1}']);
    await (
      await env.post('/v1/chat/completions', { model: MODEL, messages: [user('next')] }, { headers: { 'x-thread-id': thread } })
    ).text();
    const injected = env.fake.requests
      .at(-1)!
      .body.messages.filter((m: any) => m.role === 'user')
      .map((m: any) => m.content);
    expect(injected).toEqual(['42', 'true', 'null', '{"a":1}', 'next']);
  });

  it('dry run returns exactly what would be forwarded, with token counts, and sends nothing', async () => {
    const thread = `dry-${Date.now()}`;
    await (
      await env.post(
        '/v1/chat/completions',
        { model: MODEL, messages: [user('remember the blue door')] },
        { headers: { 'x-thread-id': thread } },
      )
    ).text();
    const pin = await env.post(`/v1/threads/${thread}/items`, { kind: 'fact', content: 'The user prefers tea.' });
    expect(pin.status).toBe(201);
    const before = env.fake.requests.length;
    const body = { model: MODEL, messages: [{ role: 'system', content: 'be brief' }, user('which door?')] };
    const dry = await (await env.post(`/v1/threads/${thread}/context`, body)).json();
    expect(env.fake.requests.length).toBe(before);
    expect(dry.messages.map((m: any) => m.role)).toEqual(['system', 'system', 'user', 'assistant', 'user']);
    expect(dry.messages[1].content).toContain('The user prefers tea.');
    expect(dry.messages[1].content).toMatch(/not instructions/);
    expect(dry.tokens.memory).toBeGreaterThan(0);
    expect(dry.tokens.prompt).toBeGreaterThan(dry.tokens.memory);
    expect(dry.injected_items).toBe(2);
    expect(await items(thread)).toHaveLength(3); // the dry run stored nothing

    // The real request forwards exactly those messages.
    await (await env.post('/v1/chat/completions', body, { headers: { 'x-thread-id': thread } })).text();
    expect(env.fake.requests.at(-1)!.body.messages).toEqual(dry.messages);
  });

  it('X-Memory modes: off forwards untouched and stores nothing; read injects without storing', async () => {
    const thread = `modes-${Date.now()}`;
    await (
      await env.post('/v1/chat/completions', { model: MODEL, messages: [user('my name is Lin')] }, { headers: { 'x-thread-id': thread } })
    ).text();
    const off = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user('what is my name?')] },
      { headers: { 'x-thread-id': thread, 'x-memory': 'off' } },
    );
    expect((await off.json()).choices[0].message.content).toBe('I do not know your name.');
    const read = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user('what is my name?')] },
      { headers: { 'x-thread-id': thread, 'x-memory': 'read' } },
    );
    expect((await read.json()).choices[0].message.content).toBe('Your name is Lin.');
    expect(await items(thread)).toHaveLength(2);
  });

  it('forwards without memory and says so when the thread cannot be read', async () => {
    const store = env.gw.deps.threads;
    const original = store.loadView;
    store.loadView = async () => {
      throw new Error('connection refused');
    };
    try {
      const res = await env.post(
        '/v1/chat/completions',
        { model: MODEL, messages: [user('still works?')] },
        { headers: { 'x-thread-id': 'unreadable' } },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('x-memory-status')).toBe('unavailable');
      expect((await res.json()).choices[0].message.content).toBe('You said: still works?');
    } finally {
      store.loadView = original;
    }
  });

  it('X-Memory-Max-Tokens caps what memory adds', async () => {
    const thread = `cap-${Date.now()}`;
    for (let i = 0; i < 5; i++) {
      await (
        await env.post(
          '/v1/chat/completions',
          { model: MODEL, messages: [user(`fact number ${i} is about something`)] },
          { headers: { 'x-thread-id': thread } },
        )
      ).text();
    }
    const capped = await (
      await fetch(`${env.gw.url}/v1/threads/${thread}/context`, {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/json', 'x-memory-max-tokens': '30' },
        body: JSON.stringify({ model: MODEL, messages: [user('q')] }),
      })
    ).json();
    expect(capped.tokens.memory).toBeLessThanOrEqual(30);
    expect(capped.injected_items).toBeGreaterThan(0);
    expect(capped.injected_items).toBeLessThan(10);
    const none = await env.post(
      '/v1/chat/completions',
      { model: MODEL, messages: [user('q')] },
      { headers: { 'x-thread-id': thread, 'x-memory-max-tokens': '0' } },
    );
    await none.text();
    expect(env.fake.requests.at(-1)!.body.messages).toEqual([user('q')]);
  });
});

describe('running summaries through the upstream', () => {
  const env2 = useProxyEnv({ config: { memorySummaryModel: 'openai/gpt-4o-mini', memoryDefaultMaxTokens: 300 } });

  it('folds an overflowing thread into a summary in the background, injects it, and bills it to the workspace', async () => {
    const thread = `sum-${Date.now()}`;
    for (let i = 0; i < 14; i++) {
      const res = await env2.post(
        '/v1/chat/completions',
        { model: MODEL, messages: [user(`Note ${i}: Ada ordered ${i + 10} boxes on 2026-11-0${(i % 9) + 1}.`)] },
        { headers: { 'x-thread-id': thread } },
      );
      expect(res.status).toBe(200);
      await res.text();
      await env2.gw.deps.summarizer!.idle();
    }
    const info = await (await fetch(`${env2.gw.url}/v1/threads/${thread}`, { headers: { authorization: `Bearer ${env2.key}` } })).json();
    expect(info.summary).toBeTruthy();
    expect(info.summary_upto_seq).toBeGreaterThan(0);
    const summaryCall = env2.fake.requests.find((r) => r.body?.messages?.[0]?.content?.includes('Carry forward every name'));
    expect(summaryCall).toBeDefined();
    // The next request carries the summary in the memory message, and not the folded turns raw.
    await (
      await env2.post('/v1/chat/completions', { model: MODEL, messages: [user('and now?')] }, { headers: { 'x-thread-id': thread } })
    ).text();
    const sent = env2.fake.requests.at(-1)!.body.messages;
    expect(sent[0].role).toBe('system');
    expect(sent[0].content).toContain('Summary of earlier conversation');
    expect(sent.some((m: any) => m.content === 'Note 0: Ada ordered 10 boxes on 2026-11-01.')).toBe(false);
    // Raw items are kept.
    const all = await (
      await fetch(`${env2.gw.url}/v1/threads/${thread}/items?limit=100`, { headers: { authorization: `Bearer ${env2.key}` } })
    ).json();
    expect(all.data[0].content).toBe('Note 0: Ada ordered 10 boxes on 2026-11-01.');
    // Its usage is the gateway's own, on the workspace.
    await env2.gw.deps.usage.flush();
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const report = await (
      await fetch(`${env2.gw.url}/admin/usage?from=${today}&to=${tomorrow}&group_by=key`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).json();
    const own = report.data.find((r: any) => r.key === 'gateway:memory-summary');
    expect(own.requests).toBeGreaterThan(0);
    expect(Number(own.cost_usd)).toBeGreaterThan(0);
  });
});
