import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbKinds } from './helpers/databases.js';
import { eventually } from './helpers/gateway.js';
import { MODEL, readSse, useProxyEnv } from './helpers/proxy-env.js';

// Workspace isolation of the Responses and Conversations APIs: workspace A keeps stored responses
// (plain, streamed, chained) and a conversation with items; workspace B's key, knowing every one of
// A's ids, must find nothing (404 or previous_response_not_found, OpenAI-shaped), change nothing,
// send nothing upstream, and never see or log a word of A's text. A key without the `proxy` scope
// gets none of these routes, not even in its own workspace.

type Key = { key: string; id: string; workspace: string; workspaceId: string };
interface Probe {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}
interface Answer {
  status: number;
  text: string;
  json: any;
  requestId: string | null;
}

const word = () => randomBytes(5).toString('hex');

describe.each(dbKinds())('workspace isolation of responses and conversations on %s', (kind) => {
  const env = useProxyEnv({ db: kind });

  let A: Key;
  let B: Key;
  /** A key of A's own workspace with the `reports` scope only. */
  let reportsOnlyA: string;
  /** Texts only A ever sent (each comes back in the fake's "You said: …" reply too). */
  const secret: Record<string, string> = {};
  const ids = {} as {
    plain: string;
    streamed: string;
    chained: string;
    chainedStream: string;
    conv: string;
    /** The item A added to the conversation (a thread item id) and an assistant reply's own `msg_…` id. */
    addedItem: string;
    replyItem: string;
  };
  const responseIds = () => [ids.plain, ids.streamed, ids.chained, ids.chainedStream];
  const secrets = () => Object.values(secret);

  const send = async (key: string | null, p: Probe): Promise<Answer> => {
    const res = await fetch(env.gw.url + p.path, {
      method: p.method,
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...p.headers },
      body: p.body === undefined ? undefined : JSON.stringify(p.body),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      // an SSE body or nothing: left as text
    }
    return { status: res.status, text, json, requestId: res.headers.get('x-request-id') };
  };
  const ok = async (key: string, p: Probe) => {
    const a = await send(key, p);
    expect(a.status, `${p.method} ${p.path}: ${a.text.slice(0, 300)}`).toBeLessThan(300);
    return a.json;
  };
  /** A stored-response id from a stream's response.completed event. */
  const streamedId = async (key: string, body: Record<string, unknown>) => {
    const res = await fetch(`${env.gw.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
    });
    expect(res.status).toBe(200);
    const { data } = await readSse(res);
    const completed = data.map((d) => JSON.parse(d)).find((e) => e.type === 'response.completed');
    expect(completed?.response?.id).toMatch(/^resp_/);
    return String(completed.response.id);
  };
  /** The upstream calls made (the model catalog's own fetches aside). */
  const upstreamCalls = () => env.fake.requests.filter((r) => !r.path.endsWith('/models'));

  /** Everything A can read about its own data: must be exactly the same after B's attempts. */
  const snapshotOfA = async () => {
    const out: Record<string, unknown> = {};
    for (const id of responseIds()) {
      out[`response ${id}`] = await ok(A.key, { method: 'GET', path: `/v1/responses/${id}` });
      out[`input_items ${id}`] = await ok(A.key, { method: 'GET', path: `/v1/responses/${id}/input_items?order=asc&limit=100` });
    }
    out.conversation = await ok(A.key, { method: 'GET', path: `/v1/conversations/${ids.conv}` });
    out.items = await ok(A.key, { method: 'GET', path: `/v1/conversations/${ids.conv}/items?order=asc&limit=100` });
    out.added = await ok(A.key, { method: 'GET', path: `/v1/conversations/${ids.conv}/items/${ids.addedItem}` });
    out.reply = await ok(A.key, { method: 'GET', path: `/v1/conversations/${ids.conv}/items/${ids.replyItem}` });
    out.thread = await ok(A.key, { method: 'GET', path: `/v1/threads/${ids.conv}` });
    out.threadItems = await ok(A.key, { method: 'GET', path: `/v1/threads/${ids.conv}/items?limit=1000` });
    out.chainThread = await ok(A.key, { method: 'GET', path: `/v1/threads/${ids.plain}/items?limit=1000` });
    return out;
  };

  /** Every route B might try with A's ids, and what a stranger must get: 404 everywhere but a chain (400, previous_response_id). */
  const probesOfA = (): (Probe & { expect: { status: number; param?: string; code: string } })[] => {
    const notFound = (param?: string) => ({ status: 404, code: 'not_found', ...(param ? { param } : {}) });
    const chainRefused = { status: 400, code: 'previous_response_not_found', param: 'previous_response_id' };
    const conv = `/v1/conversations/${ids.conv}`;
    return [
      ...responseIds().flatMap((id) => [
        { method: 'GET', path: `/v1/responses/${id}`, expect: notFound() },
        { method: 'GET', path: `/v1/responses/${id}/input_items`, expect: notFound() },
        { method: 'GET', path: `/v1/responses/${id}/input_items?order=asc&limit=100`, expect: notFound() },
        {
          method: 'POST',
          path: '/v1/responses',
          body: { model: MODEL, previous_response_id: id, input: 'What did I say before?' },
          expect: chainRefused,
        },
        {
          method: 'POST',
          path: '/v1/responses',
          body: { model: MODEL, previous_response_id: id, input: 'What did I say before?', stream: true },
          expect: chainRefused,
        },
        {
          method: 'POST',
          path: '/v1/responses',
          body: { model: MODEL, previous_response_id: id, input: 'again', store: false },
          expect: chainRefused,
        },
        { method: 'DELETE', path: `/v1/responses/${id}`, expect: notFound() },
      ]),
      { method: 'GET', path: conv, expect: notFound('conversation_id') },
      { method: 'POST', path: conv, body: { metadata: { owner: 'B' } }, expect: notFound('conversation_id') },
      { method: 'GET', path: `${conv}/items`, expect: notFound('conversation_id') },
      { method: 'GET', path: `${conv}/items?order=asc&limit=100`, expect: notFound('conversation_id') },
      {
        method: 'POST',
        path: `${conv}/items`,
        body: { items: [{ type: 'message', role: 'user', content: 'B was here.' }] },
        expect: notFound('conversation_id'),
      },
      { method: 'GET', path: `${conv}/items/${ids.addedItem}`, expect: notFound('conversation_id') },
      { method: 'GET', path: `${conv}/items/${ids.replyItem}`, expect: notFound('conversation_id') },
      { method: 'DELETE', path: `${conv}/items/${ids.addedItem}`, expect: notFound('conversation_id') },
      { method: 'DELETE', path: `${conv}/items/${ids.replyItem}`, expect: notFound('conversation_id') },
      {
        method: 'POST',
        path: '/v1/responses',
        body: { model: MODEL, conversation: ids.conv, input: 'What is in here?' },
        expect: notFound('conversation'),
      },
      {
        method: 'POST',
        path: '/v1/responses',
        body: { model: MODEL, conversation: { id: ids.conv }, input: 'What is in here?', stream: true },
        expect: notFound('conversation'),
      },
      {
        method: 'POST',
        path: '/v1/responses',
        body: { model: MODEL, conversation: ids.conv, input: 'x', store: false },
        expect: notFound('conversation'),
      },
      // A plain response's thread is named after it: no conversation of B's either.
      { method: 'GET', path: `/v1/conversations/${ids.plain}`, expect: notFound('conversation_id') },
      { method: 'GET', path: `/v1/conversations/${ids.plain}/items`, expect: notFound('conversation_id') },
      {
        method: 'POST',
        path: '/v1/responses',
        body: { model: MODEL, conversation: ids.plain, input: 'x' },
        expect: notFound('conversation'),
      },
      // The same conversation through the thread API.
      { method: 'GET', path: `/v1/threads/${ids.conv}`, expect: notFound() },
      { method: 'GET', path: `/v1/threads/${ids.conv}/items`, expect: notFound() },
      { method: 'DELETE', path: `/v1/threads/${ids.conv}/items/${ids.addedItem}`, expect: notFound() },
      { method: 'DELETE', path: `${conv}`, expect: notFound('conversation_id') },
      { method: 'DELETE', path: `/v1/threads/${ids.conv}`, expect: notFound() },
    ];
  };

  beforeAll(async () => {
    const keyIn = async () => {
      const k = await env.gw.createKey();
      const listed = await (await env.gw.admin(`/admin/keys?workspace=${k.workspace}`)).json();
      return { ...k, workspaceId: String(listed.data.find((x: any) => x.id === k.id).workspace_id) };
    };
    A = await keyIn();
    B = await keyIn();
    expect(A.workspaceId).not.toBe(B.workspaceId);
    const r = await env.gw.admin('/admin/keys', { body: { workspace: A.workspace, name: 'reports only', scopes: ['reports'] } });
    expect(r.status).toBe(201);
    reportsOnlyA = (await r.json()).key;
    for (const name of ['plain', 'streamed', 'chained', 'chainedStream', 'convItem', 'convTurn', 'convStream'])
      secret[name] = `Aurelia-${name}-${word()}`;

    // Stored responses: plain, streamed, and a chain on each.
    ids.plain = (
      await ok(A.key, { method: 'POST', path: '/v1/responses', body: { model: MODEL, input: `My secret is ${secret.plain}` } })
    ).id;
    ids.streamed = await streamedId(A.key, { model: MODEL, input: [{ role: 'user', content: `My secret is ${secret.streamed}` }] });
    ids.chained = (
      await ok(A.key, {
        method: 'POST',
        path: '/v1/responses',
        body: { model: MODEL, previous_response_id: ids.plain, input: `And ${secret.chained}` },
      })
    ).id;
    ids.chainedStream = await streamedId(A.key, { model: MODEL, previous_response_id: ids.streamed, input: `And ${secret.chainedStream}` });

    // A conversation with an item of its own, a turn, and a streamed turn.
    const conv = await ok(A.key, {
      method: 'POST',
      path: '/v1/conversations',
      body: { metadata: { owner: 'A' }, items: [{ type: 'message', role: 'user', content: `Note: ${secret.convItem}` }] },
    });
    ids.conv = conv.id;
    await ok(A.key, {
      method: 'POST',
      path: '/v1/responses',
      body: { model: MODEL, conversation: ids.conv, input: `Remember ${secret.convTurn}` },
    });
    await streamedId(A.key, { model: MODEL, conversation: { id: ids.conv }, input: `Remember ${secret.convStream}` });
    const items = await ok(A.key, { method: 'GET', path: `/v1/conversations/${ids.conv}/items?order=asc` });
    expect(items.data.map((i: any) => i.role)).toEqual(['user', 'user', 'assistant', 'user', 'assistant']);
    ids.addedItem = items.data[0].id;
    ids.replyItem = items.data[2].id;
    expect(ids.replyItem).toMatch(/^msg_/); // the Responses form's own id, found by findItem too
    expect(ids.addedItem).not.toBe(ids.replyItem);
    expect(JSON.stringify(items)).toContain(secret.convTurn);
  });

  it("B gets an OpenAI-shaped 404 (or previous_response_not_found) on every route with A's ids, and nothing goes upstream", async () => {
    env.fake.reset();
    for (const p of probesOfA()) {
      const before = upstreamCalls().length;
      const a = await send(B.key, p);
      const what = `${p.method} ${p.path} ${p.body ? JSON.stringify(p.body) : ''} -> ${a.status} ${a.text.slice(0, 300)}`;
      expect(a.status, what).toBe(p.expect.status);
      expect(a.json?.error, what).toMatchObject({ type: 'invalid_request_error', code: p.expect.code, message: expect.any(String) });
      if (p.expect.param) expect(a.json.error.param, what).toBe(p.expect.param);
      for (const s of secrets()) expect(a.text, what).not.toContain(s);
      expect(upstreamCalls().length, `${what}: the upstream was called`).toBe(before);
    }
    expect(upstreamCalls()).toEqual([]);
  });

  it("B's attempts leave A's data exactly as it was, and A can still use all of it", async () => {
    const before = await snapshotOfA();
    for (const p of probesOfA()) await send(B.key, p);
    expect(await snapshotOfA()).toEqual(before);

    // The chains still rebuild from A's whole history.
    env.fake.reset();
    const chained = await ok(A.key, {
      method: 'POST',
      path: '/v1/responses',
      body: { model: MODEL, previous_response_id: ids.chainedStream, input: 'Still there?', store: false },
    });
    expect(chained.status).toBe('completed');
    const sent = JSON.stringify(upstreamCalls().at(-1)!.body.input);
    expect(sent).toContain(secret.streamed);
    expect(sent).toContain(secret.chainedStream);
    await ok(A.key, {
      method: 'POST',
      path: '/v1/responses',
      body: { model: MODEL, previous_response_id: ids.chained, input: 'And here?', store: false },
    });
    const sent2 = JSON.stringify(upstreamCalls().at(-1)!.body.input);
    expect(sent2).toContain(secret.plain);
    expect(sent2).toContain(secret.chained);
    // And the conversation too (a store:false turn still lands in the conversation: read it before).
    await ok(A.key, { method: 'POST', path: '/v1/responses', body: { model: MODEL, conversation: ids.conv, input: 'What do you know?' } });
    const sent3 = JSON.stringify(upstreamCalls().at(-1)!.body.input);
    for (const s of [secret.convItem, secret.convTurn, secret.convStream]) expect(sent3).toContain(s);
    expect(sent3).not.toContain('B was here');
  });

  it("no response body or log line of B's probes holds A's text, and each is logged as B's", async () => {
    const from = env.gw.logs.length;
    const requestIds: string[] = [];
    for (const p of probesOfA()) {
      const a = await send(B.key, p);
      expect(a.requestId).toBeTruthy();
      requestIds.push(a.requestId!);
      for (const s of secrets()) expect(a.text).not.toContain(s);
    }
    await eventually(() => requestIds.every((id) => env.gw.logs.some((l) => l.request_id === id)), 5_000);
    const lines = env.gw.logs.slice(from);
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const s of secrets()) expect(text).not.toContain(s);
    for (const l of lines.filter((x) => requestIds.includes(String(x.request_id)))) {
      expect([l.workspace_id, l.key_id], JSON.stringify(l)).toEqual([B.workspaceId, B.id]);
    }
    // The refused responses calls are recorded, and as B's, never on A's key.
    expect(env.gw.outcomes.length).toBeGreaterThan(0);
    expect(env.gw.outcomes.filter((o) => o.keyId !== B.id || o.workspaceId !== B.workspaceId)).toEqual([]);
  });

  it("what B creates never shows up in A's lists, and A cannot reach it either", async () => {
    const convB = await ok(B.key, {
      method: 'POST',
      path: '/v1/conversations',
      body: { metadata: { owner: 'B' }, items: [{ type: 'message', role: 'user', content: 'B private note.' }] },
    });
    const turnB = await ok(B.key, {
      method: 'POST',
      path: '/v1/responses',
      body: { model: MODEL, conversation: convB.id, input: 'B private turn.' },
    });
    const plainB = await ok(B.key, { method: 'POST', path: '/v1/responses', body: { model: MODEL, input: 'B private response.' } });
    const streamB = await streamedId(B.key, { model: MODEL, input: 'B private stream.' });
    // B's conversation item ids, tried by A within A's own conversation.
    const itemsB = await ok(B.key, { method: 'GET', path: `/v1/conversations/${convB.id}/items?order=asc` });
    expect(itemsB.data).toHaveLength(3);

    const threadsA = await ok(A.key, { method: 'GET', path: '/v1/threads?limit=100' });
    const listedA = threadsA.data.map((t: any) => t.id);
    expect(listedA).toContain(ids.conv);
    expect(listedA).toContain(ids.plain);
    for (const id of [convB.id, turnB.id, plainB.id, streamB]) expect(listedA).not.toContain(id);
    expect(JSON.stringify(threadsA)).not.toContain('B private');
    const threadsB = await ok(B.key, { method: 'GET', path: '/v1/threads?limit=100' });
    const listedB = threadsB.data.map((t: any) => t.id);
    expect(listedB).toContain(convB.id);
    for (const id of [ids.conv, ...responseIds()]) expect(listedB).not.toContain(id);
    for (const s of secrets()) expect(JSON.stringify(threadsB)).not.toContain(s);

    const itemsA = await ok(A.key, { method: 'GET', path: `/v1/conversations/${ids.conv}/items?limit=100` });
    expect(JSON.stringify(itemsA)).not.toContain('B private');

    // The other way round: A finds nothing of B's.
    for (const p of [
      { method: 'GET', path: `/v1/conversations/${convB.id}` },
      { method: 'GET', path: `/v1/conversations/${convB.id}/items` },
      { method: 'GET', path: `/v1/responses/${plainB.id}` },
      { method: 'GET', path: `/v1/responses/${streamB}/input_items` },
      { method: 'GET', path: `/v1/responses/${turnB.id}` },
      { method: 'DELETE', path: `/v1/responses/${plainB.id}` },
      ...itemsB.data.flatMap((i: any) => [
        { method: 'GET', path: `/v1/conversations/${ids.conv}/items/${i.id}` },
        { method: 'DELETE', path: `/v1/conversations/${ids.conv}/items/${i.id}` },
      ]),
    ]) {
      const a = await send(A.key, p);
      expect(a.status, `${p.method} ${p.path}: ${a.text.slice(0, 300)}`).toBe(404);
      expect(a.json.error.code).toBe('not_found');
      expect(a.text).not.toContain('B private');
    }
    // B's own conversation does not open A's items either.
    for (const id of [ids.addedItem, ids.replyItem]) {
      for (const method of ['GET', 'DELETE']) {
        const a = await send(B.key, { method, path: `/v1/conversations/${convB.id}/items/${id}` });
        expect(a.status, `${method} B's conversation item ${id}: ${a.text.slice(0, 300)}`).toBe(404);
        for (const s of secrets()) expect(a.text).not.toContain(s);
      }
    }
    const before = upstreamCalls().length;
    const a = await send(A.key, {
      method: 'POST',
      path: '/v1/responses',
      body: { model: MODEL, previous_response_id: plainB.id, input: 'x' },
    });
    expect(a.status).toBe(400);
    expect(a.json.error).toMatchObject({ param: 'previous_response_id', code: 'previous_response_not_found' });
    expect(upstreamCalls().length).toBe(before);
    // B still has all of it.
    expect((await ok(B.key, { method: 'GET', path: `/v1/responses/${plainB.id}` })).id).toBe(plainB.id);
    expect((await ok(B.key, { method: 'GET', path: `/v1/conversations/${convB.id}/items` })).data).toHaveLength(3);
  });

  it('a key without the proxy scope gets 403 on every route, even in its own workspace; no key gets 401', async () => {
    const own: Probe[] = [
      { method: 'POST', path: '/v1/responses', body: { model: MODEL, input: 'hi' } },
      { method: 'POST', path: '/v1/responses', body: { model: MODEL, input: 'hi', stream: true } },
      { method: 'POST', path: '/v1/responses', body: { model: MODEL, previous_response_id: ids.plain, input: 'hi' } },
      { method: 'POST', path: '/v1/responses', body: { model: MODEL, conversation: ids.conv, input: 'hi' } },
      { method: 'POST', path: `/t/${ids.conv}/v1/responses`, body: { model: MODEL, input: 'hi' } },
      { method: 'GET', path: `/v1/responses/${ids.plain}` },
      { method: 'GET', path: `/v1/responses/${ids.streamed}/input_items` },
      { method: 'DELETE', path: `/v1/responses/${ids.plain}` },
      { method: 'POST', path: '/v1/conversations', body: {} },
      { method: 'GET', path: `/v1/conversations/${ids.conv}` },
      { method: 'POST', path: `/v1/conversations/${ids.conv}`, body: { metadata: { owner: 'reports' } } },
      { method: 'GET', path: `/v1/conversations/${ids.conv}/items` },
      { method: 'POST', path: `/v1/conversations/${ids.conv}/items`, body: { items: [{ type: 'message', role: 'user', content: 'x' }] } },
      { method: 'GET', path: `/v1/conversations/${ids.conv}/items/${ids.addedItem}` },
      { method: 'DELETE', path: `/v1/conversations/${ids.conv}/items/${ids.addedItem}` },
      { method: 'DELETE', path: `/v1/conversations/${ids.conv}` },
    ];
    const before = await snapshotOfA();
    env.fake.reset();
    for (const p of own) {
      const a = await send(reportsOnlyA, p);
      expect(a.status, `${p.method} ${p.path}: ${a.text.slice(0, 300)}`).toBe(403);
      expect(a.json?.error?.message, `${p.method} ${p.path}`).toEqual(expect.any(String));
      for (const s of secrets()) expect(a.text).not.toContain(s);
      const none = await send(null, p);
      expect(none.status, `${p.method} ${p.path} without a key`).toBe(401);
      expect(none.json?.error?.code).toBe('invalid_api_key');
    }
    expect(upstreamCalls()).toEqual([]);
    expect(await snapshotOfA()).toEqual(before);
  });

  it("B naming A's conversation as its own thread (X-Thread-Id, /t/{id}/v1) gets a thread of its own: none of A's history", async () => {
    env.fake.reset();
    for (const p of [
      {
        method: 'POST',
        path: '/v1/responses',
        body: { model: MODEL, input: 'What do you know about me?' },
        headers: { 'x-thread-id': ids.conv },
      },
      { method: 'POST', path: `/t/${ids.conv}/v1/responses`, body: { model: MODEL, input: 'And now?' } },
      { method: 'POST', path: `/t/${ids.plain}/v1/responses`, body: { model: MODEL, input: 'And the chain?', stream: true } },
    ]) {
      const a = await send(B.key, p);
      expect(a.status, `${p.path}: ${a.text.slice(0, 300)}`).toBe(200);
      for (const s of secrets()) expect(a.text).not.toContain(s);
    }
    const sent = JSON.stringify(upstreamCalls().map((r) => r.body));
    for (const s of secrets()) expect(sent).not.toContain(s);
    // A's conversation did not get B's turns.
    const itemsA = await ok(A.key, { method: 'GET', path: `/v1/conversations/${ids.conv}/items?limit=100` });
    expect(JSON.stringify(itemsA)).not.toContain('What do you know about me?');
    expect(JSON.stringify(itemsA)).not.toContain('And now?');
    const chainA = await ok(A.key, { method: 'GET', path: `/v1/threads/${ids.plain}/items?limit=1000` });
    expect(JSON.stringify(chainA)).not.toContain('And the chain?');
  });
});
