import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { openTestDatabase } from './helpers/databases.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

// Read-your-writes: the next turn, sent the moment the previous answer is complete, sees it. No
// test here calls memory.flush(): a client cannot.

const chatBodies = (fake: FakeOpenRouter) => fake.requests.filter((r) => r.path.endsWith('/chat/completions')).map((r) => r.body);

/** The README's example: only the base URL names the thread; each turn sends just the new message. */
async function ask(client: OpenAI, content: string, stream: boolean): Promise<string> {
  const body = { model: MODEL, messages: [user(content)] };
  if (!stream) return (await client.chat.completions.create(body)).choices[0].message.content ?? '';
  let text = '';
  for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

const threadClient = (gw: TestGateway, key: string, thread: string) =>
  new OpenAI({ baseURL: `${gw.url}/t/${thread}/v1`, apiKey: key, maxRetries: 0 });

async function storedItems(gw: TestGateway, key: string, thread: string) {
  const res = await fetch(`${gw.url}/v1/threads/${thread}/items?limit=100`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return (await res.json()).data as any[];
}

describe('read-your-writes on one instance', () => {
  const env = useProxyEnv();

  for (const stream of [false, true]) {
    it(`the next turn at 0 ms sees the previous one (${stream ? 'stream' : 'non-stream'}, 5 threads)`, async () => {
      const answers = await Promise.all(
        Array.from({ length: 5 }, async (_, i) => {
          const client = threadClient(env.gw, env.key, `ryw-${stream}-${i}-${Date.now()}`);
          expect(await ask(client, 'Hello, my name is Ada.', stream)).toContain('my name is Ada');
          return ask(client, 'What is my name?', stream); // at once: no pause, no flush
        }),
      );
      expect(answers).toEqual(Array(5).fill('Your name is Ada.'));
    });
  }

  it('a 5-step tool loop at 0 ms forwards and stores each message once', async () => {
    const thread = `tools-${Date.now()}`;
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0, defaultHeaders: { 'X-Thread-Id': thread } });
    const history: any[] = [user('Look up the weather five times.')];
    for (let step = 0; step < 5; step++) {
      const res = await client.chat.completions.create({
        model: MODEL,
        messages: history,
        tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: {} } } }],
        fake: { mode: 'tool_calls' },
      } as any);
      const message = res.choices[0].message;
      history.push({ role: 'assistant', content: message.content ?? null, tool_calls: message.tool_calls });
      history.push({ role: 'tool', tool_call_id: message.tool_calls![0].id, content: `result ${step}` });
    }
    const final = await client.chat.completions.create({ model: MODEL, messages: history });
    history.push({ role: 'assistant', content: final.choices[0].message.content });

    // Each forwarded request carries exactly the client's history: nothing stored is injected twice.
    const bodies = chatBodies(env.fake).slice(-6);
    expect(bodies.map((b) => b.messages.length)).toEqual([1, 3, 5, 7, 9, 11]);
    // And the thread holds each message once, in order.
    const items = await storedItems(env.gw, env.key, thread);
    expect(items).toHaveLength(history.length);
    expect(items.map((i) => i.role)).toEqual(history.map((m) => m.role));
    expect(items.filter((i) => i.role === 'tool').map((i) => i.content)).toEqual([
      'result 0',
      'result 1',
      'result 2',
      'result 3',
      'result 4',
    ]);
  });

  it('concurrent requests on one thread: every exchange stored once, each reply right after its own question', async () => {
    const thread = `concurrent-${Date.now()}`;
    const client = threadClient(env.gw, env.key, thread);
    const questions = Array.from({ length: 10 }, (_, i) => `question number ${i}`);
    await Promise.all(questions.map((q, i) => ask(client, q, i % 2 === 0)));
    const items = await storedItems(env.gw, env.key, thread);
    expect(items).toHaveLength(20);
    expect(items.map((i) => i.seq)).toEqual([...items.map((i) => i.seq)].sort((a, b) => a - b));
    const users = items.filter((i) => i.role === 'user').map((i) => i.content);
    expect([...users].sort()).toEqual([...questions].sort());
    // Each exchange is contiguous: a question, then its own answer.
    for (let k = 0; k < 20; k += 2) {
      expect(items[k]!.role).toBe('user');
      expect(items[k + 1]!.role).toBe('assistant');
      // Item ids carry the request's id: itm_<request>_<n> for its messages, itm_<request>_r for the reply.
      expect(items[k + 1]!.id).toMatch(/_r$/);
      expect(items[k + 1]!.id.replace(/_r$/, '')).toBe(items[k]!.id.replace(/_\d+$/, ''));
    }
  });

  it('a full-history client re-sending right away stores nothing twice', async () => {
    const thread = `resend0-${Date.now()}`;
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0, defaultHeaders: { 'X-Thread-Id': thread } });
    const history: any[] = [];
    for (const q of ['one', 'two', 'three']) {
      history.push(user(q));
      const res = await client.chat.completions.create({ model: MODEL, messages: history, stream: false });
      history.push({ role: 'assistant', content: res.choices[0].message.content });
    }
    expect(chatBodies(env.fake).at(-1)!.messages).toHaveLength(5);
    expect((await storedItems(env.gw, env.key, thread)).map((i) => i.content)).toEqual(history.map((m) => m.content));
  });
});

// Two gateways on one Postgres: the turn after an answer from A, sent to B at once, sees it.
describe.runIf(inject('postgresUrl'))('read-your-writes across two instances on one Postgres', () => {
  let fake: FakeOpenRouter;
  let database: Database;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    database = await openTestDatabase('postgres');
    a = await startTestGateway({ database, upstreamUrl: fake.baseUrl });
    b = await startTestGateway({ database, upstreamUrl: fake.baseUrl });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await database?.close();
    await fake?.close();
  });

  for (const stream of [false, true]) {
    it(`alternating turns A, B, A, B at 0 ms each see every earlier exchange (${stream ? 'stream' : 'non-stream'})`, async () => {
      const { key } = await a.createKey();
      const thread = `two-${stream}-${Date.now()}`;
      const gws = [a, b, a, b];
      const turns = ['Hello, my name is Ada.', 'What is my name?', 'Remember: the code is 42.', 'What is my name?'];
      const answers: string[] = [];
      for (let i = 0; i < turns.length; i++) answers.push(await ask(threadClient(gws[i], key, thread), turns[i], stream));
      expect(answers[1]).toBe('Your name is Ada.');
      expect(answers[3]).toBe('Your name is Ada.');
      // The last request carried the three earlier exchanges, each once, then the new message.
      const last = chatBodies(fake)
        .at(-1)!
        .messages.filter((m: any) => m.role !== 'system');
      expect(last.map((m: any) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user']);
      expect(last.filter((m: any) => m.role === 'user').map((m: any) => m.content)).toEqual(turns);
      expect((await storedItems(b, key, thread)).map((i) => i.role)).toEqual([
        'user',
        'assistant',
        'user',
        'assistant',
        'user',
        'assistant',
        'user',
        'assistant',
      ]);
    });
  }

  it("retrieval on A follows B's edit of an old message and the turns B adds (each instance's index of the span stays current)", async () => {
    const { key, id } = await a.createKey();
    const ws = (await a.deps.keys.getKey(id))!.workspaceId;
    const thread = `two-recall-${Date.now()}`;
    const filler = (i: number) => `Turn ${i}: we talked about the weather and the traffic in town today, nothing more.`;
    const seeded: { role: string; content: string }[] = [];
    for (let i = 0; i < 120; i++) {
      const text = i === 10 ? 'By the way, my dog is called Rex and he loves the beach.' : filler(i);
      seeded.push({ role: i % 2 ? 'assistant' : 'user', content: i % 2 ? `Noted: ${text}` : text });
    }
    await a.deps.threads.appendItems(
      ws,
      thread,
      seeded.map((m) => ({
        kind: 'message',
        role: m.role,
        content: m.content,
        contentHash: `seed-${m.content}`,
        tokens: 20,
        status: 'complete',
      })),
    );
    const client = (gw: TestGateway) =>
      new OpenAI({ baseURL: `${gw.url}/t/${thread}/v1`, apiKey: key, maxRetries: 0, defaultHeaders: { 'X-Memory-Max-Tokens': '400' } });
    const memoryOfLast = () =>
      String(
        chatBodies(fake)
          .at(-1)!
          .messages.find((m: any) => m.role === 'system')?.content ?? '',
      );
    await client(a).chat.completions.create({ model: MODEL, messages: [user("What's my dog's name?")] });
    expect(memoryOfLast()).toContain('(user, earlier) By the way, my dog is called Rex');

    // B edits the old message through the thread API: A retrieves the new text, never the old.
    const items = await storedItems(b, key, thread);
    const dog = items.find((i) => String(i.content).includes('my dog is called Rex'))!;
    const patched = await fetch(`${b.url}/v1/threads/${thread}/items/${dog.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'By the way, my dog is called Bolt now and he loves the park.' }),
    });
    expect(patched.status).toBe(200);
    await client(a).chat.completions.create({ model: MODEL, messages: [user("What's my dog's name?")] });
    expect(memoryOfLast()).toContain('my dog is called Bolt');
    expect(memoryOfLast()).not.toContain('Rex');

    // B holds a conversation that states a new fact, then moves on until the fact has left the
    // recent window: A's next request retrieves it from the span (the seqs B wrote since A looked).
    await client(b).chat.completions.create({ model: MODEL, messages: [user('Also, my cat is called Tom and she sleeps all day.')] });
    for (let i = 0; i < 14; i++) await client(b).chat.completions.create({ model: MODEL, messages: [user(filler(200 + i))] });
    const before = chatBodies(fake).length;
    await client(a).chat.completions.create({ model: MODEL, messages: [user("What's my cat's name?")] });
    expect(chatBodies(fake).length).toBe(before + 1);
    const sent = chatBodies(fake).at(-1)!.messages;
    expect(memoryOfLast()).toContain('(user, earlier) Also, my cat is called Tom');
    // Retrieved, not recent: the turn itself is not among the forwarded history.
    expect(sent.filter((m: any) => m.role === 'user' && String(m.content).includes('my cat is called Tom'))).toEqual([]);
  });
});
