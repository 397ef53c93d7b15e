import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { dbKinds } from './helpers/databases.js';
import { MODEL, useProxyEnv } from './helpers/proxy-env.js';

// Conversations are threads: created, read and appended through OpenAI's API with the real SDK,
// chained by `conversation` on a response, visible in the thread API, reachable by X-Thread-Id.
// The fake upstream refuses `conversation` itself, so the history it gets is the gateway's doing.

const responsesBodies = (env: ReturnType<typeof useProxyEnv>) =>
  env.fake.requests.filter((r) => r.path.endsWith('/responses')).map((r) => r.body);

describe.each(dbKinds())('conversations on %s', (kind) => {
  const env = useProxyEnv({ db: kind });
  const sdk = () => new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, timeout: 20_000 });

  it('two turns on a conversation: the second sends the first turn, items listed in order, thread API shows it', async () => {
    const client = sdk();
    const conv = await client.conversations.create({
      metadata: { topic: 'names' },
      items: [{ type: 'message', role: 'system', content: 'You remember names.' }],
    });
    expect(conv).toMatchObject({ object: 'conversation', metadata: { topic: 'names' } });
    expect(conv.id).toMatch(/^conv_/);

    const first = await client.responses.create({ model: MODEL, conversation: conv.id, input: 'My name is Ada.' });
    const s = await client.responses.create({ model: MODEL, conversation: { id: conv.id }, input: 'What is my name?', stream: true });
    for await (const _ of s);
    const [b1, b2] = responsesBodies(env).slice(-2);
    expect(b1.conversation).toBeUndefined();
    expect(b1.input.map((i: any) => i.content)).toEqual(['You remember names.', 'My name is Ada.']);
    expect(JSON.stringify(b2.input)).toContain('My name is Ada.');
    expect(JSON.stringify(b2.input)).toContain(first.output_text);
    expect(b2.input.at(-1)).toMatchObject({ role: 'user', content: 'What is my name?' });

    const items = await client.conversations.items.list(conv.id, { order: 'asc' });
    expect(items.data.map((i: any) => [i.type, i.role])).toEqual([
      ['message', 'system'],
      ['message', 'user'],
      ['message', 'assistant'],
      ['message', 'user'],
      ['message', 'assistant'],
    ]);
    // The same store: the thread API lists the conversation's items.
    const thread = await fetch(`${env.gw.url}/v1/threads/${conv.id}/items`, { headers: { authorization: `Bearer ${env.key}` } }).then((r) =>
      r.json(),
    );
    expect(thread.data.map((i: any) => i.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);

    // Items added, one read back and deleted.
    const added = await client.conversations.items.create(conv.id, { items: [{ type: 'message', role: 'user', content: 'A note.' }] });
    expect(added.data).toHaveLength(1);
    const got = await client.conversations.items.retrieve(added.data[0].id!, { conversation_id: conv.id });
    expect((got as any).content[0].text).toBe('A note.');
    await client.conversations.items.delete(added.data[0].id!, { conversation_id: conv.id });
    expect((await client.conversations.items.list(conv.id)).data).toHaveLength(5);

    expect((await client.conversations.update(conv.id, { metadata: { topic: 'changed' } })).metadata).toEqual({ topic: 'changed' });
    expect((await client.conversations.retrieve(conv.id)).metadata).toEqual({ topic: 'changed' });
    await client.conversations.delete(conv.id);
    await expect(client.conversations.retrieve(conv.id)).rejects.toMatchObject({ status: 404 });
    await expect(client.responses.create({ model: MODEL, conversation: conv.id, input: 'x' })).rejects.toMatchObject({
      status: 404,
      error: expect.objectContaining({ param: 'conversation' }),
    });
  });

  it('store:false on a conversation still appends the turn but keeps no retrievable response', async () => {
    const client = sdk();
    const conv = await client.conversations.create({});
    const r = await client.responses.create({ model: MODEL, conversation: conv.id, input: 'Unstored turn.', store: false });
    await expect(client.responses.retrieve(r.id)).rejects.toMatchObject({ status: 404 });
    expect((await client.conversations.items.list(conv.id)).data).toHaveLength(2);
  });

  it('a client re-sending its history on a thread (X-Thread-Id, store:false, as Codex does) gets each item once', async () => {
    const client = new OpenAI({
      baseURL: `${env.gw.url}/v1`,
      apiKey: env.key,
      defaultHeaders: { 'X-Thread-Id': `codex-${kind}-${Date.now()}` },
    });
    const history: any[] = [{ role: 'user', content: 'Plan the trip.' }];
    for (let turn = 0; turn < 3; turn++) {
      const r = await client.responses.create({ model: MODEL, input: history, store: false });
      // The upstream got exactly the client's history: nothing the thread holds injected twice.
      expect(responsesBodies(env).at(-1)!.input).toEqual(history);
      history.push(...r.output.map(({ id: _id, ...rest }: any) => rest), { role: 'user', content: `Next step ${turn}.` });
    }
    // And the thread holds each item once: 3 user turns + 3 replies.
    const thread = await fetch(`${env.gw.url}/v1/threads/${(client as any)._options.defaultHeaders['X-Thread-Id']}/items`, {
      headers: { authorization: `Bearer ${env.key}` },
    }).then((r) => r.json());
    expect(thread.data.map((i: any) => i.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
  });

  it('previous_response_id and conversation together are refused', async () => {
    const client = sdk();
    const conv = await client.conversations.create({});
    const r = await client.responses.create({ model: MODEL, input: 'x' });
    await expect(
      client.responses.create({ model: MODEL, conversation: conv.id, previous_response_id: r.id, input: 'y' }),
    ).rejects.toMatchObject({ status: 400 });
  });
});
