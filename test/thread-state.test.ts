import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { messageTokens } from '../src/memory/context-plan.js';
import { messageHash, type ChatMessage } from '../src/memory/message-hash.js';
import { dbKinds } from './helpers/databases.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

// Thread state at any length and shape, through the real server and the openai SDK: each message
// forwarded and stored once, branches followed, large inline data kept out of memory, and the dry
// run built by the same function as a real request.

describe.each(dbKinds())('thread state on %s', (kind) => {
  const env = useProxyEnv({ db: kind });

  const chatBodies = () => env.fake.requests.filter((r) => r.path.endsWith('/chat/completions')).map((r) => r.body);
  const sdk = (thread: string, key = env.key) =>
    new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: key, maxRetries: 0, defaultHeaders: { 'X-Thread-Id': thread } });
  /** A key in a fresh workspace, and that workspace's id (to seed its threads). */
  const freshKey = async () => {
    const k = await env.gw.createKey();
    return { key: k.key, ws: (await env.gw.deps.keys.getKey(k.id))!.workspaceId };
  };
  const allItems = async (ws: string, thread: string) => {
    const out: any[] = [];
    for (let after = 0; ;) {
      const page = await env.gw.deps.threads.listItems(ws, thread, 500, after);
      out.push(...page);
      if (page.length < 500) return out;
      after = page.at(-1)!.seq;
    }
  };
  /** A thread with `n` alternating user/assistant messages already stored (the setup, not the behaviour under test). */
  const seedThread = async (ws: string, thread: string, n: number): Promise<ChatMessage[]> => {
    const messages: ChatMessage[] = Array.from({ length: n }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i}` }));
    await env.gw.deps.threads.appendItems(
      ws,
      thread,
      messages.map((m) => ({
        kind: 'message',
        role: m.role,
        content: m.content,
        contentHash: messageHash(m),
        tokens: messageTokens(m),
        status: 'complete',
      })),
    );
    return messages;
  };
  const duplicates = (messages: any[]) => {
    const seen = new Map<string, number>();
    for (const m of messages) seen.set(JSON.stringify([m.role, m.content]), (seen.get(JSON.stringify([m.role, m.content])) ?? 0) + 1);
    return [...seen].filter(([, n]) => n > 1);
  };

  it('a full-history client on a 1,000-message thread forwards and stores each message once', async () => {
    const { key, ws } = await freshKey();
    const thread = `long-${kind}-${Date.now()}`;
    const history = await seedThread(ws, thread, 1_000);
    const messages = [...history, user('message 1000')];
    const res = await sdk(thread, key).chat.completions.create({ model: MODEL, messages: messages as any });
    expect(res.choices[0].message.content).toBeTruthy();
    const forwarded = chatBodies()
      .at(-1)!
      .messages.filter((m: any) => m.role !== 'system');
    expect(forwarded).toHaveLength(1_001);
    expect(duplicates(forwarded)).toEqual([]);
    const items = await allItems(ws, thread);
    expect(items).toHaveLength(1_002); // the 1,000, the new question and its answer
    expect(items.filter((i) => i.status === 'complete')).toHaveLength(1_002);
  });

  it('a sliding-window client (the last 50) gets the older history injected, nothing twice, even with one byte changed', async () => {
    const { key, ws } = await freshKey();
    const thread = `window-${kind}-${Date.now()}`;
    const history = await seedThread(ws, thread, 200);
    const window = history.slice(-50).map((m) => ({ ...m }));
    await sdk(thread, key).chat.completions.create({ model: MODEL, messages: [...window, user('next')] as any });
    let forwarded = chatBodies()
      .at(-1)!
      .messages.filter((m: any) => m.role !== 'system');
    expect(duplicates(forwarded)).toEqual([]);
    expect(forwarded.length).toBeGreaterThan(51); // older history came in from memory
    expect(forwarded.slice(-51).map((m: any) => m.content)).toEqual([...window.map((m) => m.content), 'next']);
    expect((await allItems(ws, thread)).filter((i) => i.status === 'complete')).toHaveLength(202);

    // The next window, one byte of an old message different: the client's version wins.
    const items = (await allItems(ws, thread)).filter((i) => i.status === 'complete');
    const next = items.slice(-50).map((i) => ({ role: i.role, content: i.content }));
    next[5] = { ...next[5], content: `${next[5].content}!` };
    await sdk(thread, key).chat.completions.create({ model: MODEL, messages: [...next, user('after the edit')] });
    forwarded = chatBodies()
      .at(-1)!
      .messages.filter((m: any) => m.role !== 'system');
    expect(duplicates(forwarded)).toEqual([]);
    expect(forwarded.slice(-51).map((m: any) => m.content)).toEqual([...next.map((m) => m.content), 'after the edit']);
    const after = await allItems(ws, thread);
    const active = after.filter((i) => i.status === 'complete');
    expect(duplicates(active)).toEqual([]);
    expect(active.map((i) => i.content)).toContain(next[5].content);
    expect(after.filter((i) => i.status === 'superseded').map((i) => i.content)).toContain(items.at(-45)!.content);
  });

  it('content that differs only in defaults is the same message (string vs one text part, detail "auto")', async () => {
    const thread = `parts-${kind}-${Date.now()}`;
    const image = 'https://example.com/cat.png';
    const first = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: image } },
        ],
      },
    ];
    const a = await sdk(thread).chat.completions.create({ model: MODEL, messages: first as any });
    const resent = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: image, detail: 'auto' } },
        ],
      },
      { role: 'assistant', content: [{ type: 'text', text: a.choices[0].message.content }] },
      { role: 'user', content: 'And now?' },
    ];
    await sdk(thread).chat.completions.create({ model: MODEL, messages: resent as any });
    expect(
      chatBodies()
        .at(-1)!
        .messages.filter((m: any) => m.role !== 'system'),
    ).toHaveLength(3);
    const res = await fetch(`${env.gw.url}/v1/threads/${thread}/items`, { headers: { authorization: `Bearer ${env.key}` } });
    expect((await res.json()).data.map((i: any) => i.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  });

  it('an edited first message: the client wins, nothing of the old branch is forwarded, the old items stay readable, superseded', async () => {
    const thread = `edit-${kind}-${Date.now()}`;
    const client = sdk(thread);
    const history: any[] = [user('My favourite colour is red.')];
    history.push({
      role: 'assistant',
      content: (await client.chat.completions.create({ model: MODEL, messages: history })).choices[0].message.content,
    });
    history.push(user('Noted?'));
    history.push({
      role: 'assistant',
      content: (await client.chat.completions.create({ model: MODEL, messages: history })).choices[0].message.content,
    });
    const edited = [user('My favourite colour is blue.'), ...history.slice(1), user('What is my favourite colour?')];
    await client.chat.completions.create({ model: MODEL, messages: edited });
    const forwarded = chatBodies()
      .at(-1)!
      .messages.filter((m: any) => m.role !== 'system');
    expect(forwarded).toEqual(edited);
    const res = await fetch(`${env.gw.url}/v1/threads/${thread}/items`, { headers: { authorization: `Bearer ${env.key}` } });
    const items = (await res.json()).data as any[];
    expect(items.filter((i) => i.status === 'superseded').map((i) => i.content)).toContain('My favourite colour is red.');
    expect(items.filter((i) => i.status === 'complete').map((i) => i.content)).toContain('My favourite colour is blue.');
    // The next memory-only turn sees the new branch only.
    await client.chat.completions.create({ model: MODEL, messages: [user('Again: my colour?')] });
    const next = chatBodies()
      .at(-1)!
      .messages.filter((m: any) => m.role === 'user')
      .map((m: any) => m.content);
    expect(next).toEqual(['My favourite colour is blue.', 'Noted?', 'What is my favourite colour?', 'Again: my colour?']);
  });

  it('a 400 KB image is not stored or re-sent; it counts as an image in the budget', async () => {
    const thread = `image-${kind}-${Date.now()}`;
    const dataUrl = `data:image/png;base64,${'A'.repeat(400_000)}`;
    const client = sdk(thread);
    await client.chat.completions.create({
      model: MODEL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Look at this.' },
            { type: 'image_url', image_url: { url: dataUrl } },
          ],
        },
      ] as any,
    });
    expect(JSON.stringify(chatBodies().at(-1)!.messages)).toContain(dataUrl.slice(0, 100)); // the request itself carried it
    await client.chat.completions.create({ model: MODEL, messages: [user('And?')] });
    const later = JSON.stringify(chatBodies().at(-1)!.messages);
    expect(later).not.toContain('AAAAAAAAAA');
    expect(later).toContain('An image was shared here (image/png, 391 KB)');
    const res = await fetch(`${env.gw.url}/v1/threads/${thread}/items`, { headers: { authorization: `Bearer ${env.key}` } });
    const stored = JSON.stringify((await res.json()).data);
    expect(stored).not.toContain('AAAAAAAAAA');
    // The dry run counts an image part as an image (765 tokens at the default detail), not as nothing.
    const dry = async (content: unknown) =>
      (await (await env.post(`/v1/threads/${thread}/context`, { model: MODEL, messages: [{ role: 'user', content }] })).json()).tokens
        .prompt as number;
    const withImage = await dry([
      { type: 'text', text: 'hi' },
      { type: 'image_url', image_url: { url: 'https://example.com/x.png' } },
    ]);
    const without = await dry([{ type: 'text', text: 'hi' }]);
    expect(withImage - without).toBeGreaterThanOrEqual(765);
  });

  it('the dry run returns exactly what the real request then forwards', async () => {
    const thread = `dry-${kind}-${Date.now()}`;
    const client = sdk(thread);
    await client.chat.completions.create({ model: MODEL, messages: [user('My name is Ada.')] });
    await fetch(`${env.gw.url}/v1/threads/${thread}/items`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'fact', content: 'Ada prefers short answers.', pinned: true }),
    });
    const ask = { model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, user('What is my name?')] };
    const plan = await (await env.post(`/v1/threads/${thread}/context`, ask)).json();
    await client.chat.completions.create(ask as any);
    expect(chatBodies().at(-1)!.messages).toEqual(plan.messages);
    expect(plan.injected_items).toBeGreaterThan(0);
  });
});

describe.each(dbKinds())('recall beyond recency on %s', (kind) => {
  const env = useProxyEnv({ db: kind });
  const chatBodies = () => env.fake.requests.filter((r) => r.path.endsWith('/chat/completions')).map((r) => r.body);

  it('an old fact the recent window cannot hold is retrieved by its words, marked, in thread order, within the budget', async () => {
    const k = await env.gw.createKey();
    const ws = (await env.gw.deps.keys.getKey(k.id))!.workspaceId;
    const thread = `recall-${kind}-${Date.now()}`;
    const filler = (i: number) => `Turn ${i}: we talked about the weather and the traffic in town today, nothing more.`;
    const messages: ChatMessage[] = [];
    for (let i = 0; i < 200; i++) {
      const text =
        i === 10
          ? 'By the way, my dog is called Rex and he loves the beach.'
          : i === 20
            ? 'My sister Maria moved to Lisbon last spring.'
            : filler(i);
      messages.push({ role: i % 2 ? 'assistant' : 'user', content: i % 2 ? `Noted: ${text}` : text });
    }
    await env.gw.deps.threads.appendItems(
      ws,
      thread,
      messages.map((m) => ({
        kind: 'message',
        role: m.role,
        content: m.content,
        contentHash: messageHash(m),
        tokens: messageTokens(m),
        status: 'complete',
      })),
    );
    const client = new OpenAI({
      baseURL: `${env.gw.url}/t/${thread}/v1`,
      apiKey: k.key,
      maxRetries: 0,
      defaultHeaders: { 'X-Memory-Max-Tokens': '1000' },
    });
    await client.chat.completions.create({ model: MODEL, messages: [user("What's my dog's name?")] });
    const sent = chatBodies().at(-1)!.messages;
    const memory = sent.find((m: any) => m.role === 'system')?.content as string;
    expect(memory).toMatch(
      /Retrieved from earlier in this conversation[^\n]*:\n(?:.*\n)*- \(user, earlier\) By the way, my dog is called Rex/,
    );
    // Recent history filled the rest; the old turns in between were not injected.
    expect(JSON.stringify(sent)).not.toContain('Turn 30:');
    expect(JSON.stringify(sent)).toContain('Turn 198:');

    // The dry run shows the same, with the budget's split.
    const dry = await (
      await fetch(`${env.gw.url}/v1/threads/${thread}/context`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json', 'x-memory-max-tokens': '1000' },
        body: JSON.stringify({ model: MODEL, messages: [user('Where does Maria live now?')] }),
      })
    ).json();
    expect(dry.retrieved_items).toBeGreaterThan(0);
    expect(dry.tokens.split.retrieved).toBeGreaterThan(0);
    expect(dry.tokens.split.recent).toBeGreaterThan(0);
    expect(dry.tokens.memory).toBeLessThanOrEqual(1000);
    expect(dry.messages.find((m: any) => m.role === 'system').content).toContain('My sister Maria moved to Lisbon');
  });
});
