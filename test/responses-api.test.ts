import OpenAI from 'openai';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { expectedResponsesUsage, startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { dbKinds, openTestDatabase } from './helpers/databases.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL, useProxyEnv } from './helpers/proxy-env.js';

// The Responses API through the gateway with the real openai SDK (its default retries on). The
// fake upstream is stateless like OpenRouter: it refuses previous_response_id and conversation, so
// every chain that works here is the gateway's own state.

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);
const responsesBodies = (env: ReturnType<typeof useProxyEnv>) =>
  env.fake.requests.filter((r) => r.path.endsWith('/responses')).map((r) => r.body);
const ledger = async (env: ReturnType<typeof useProxyEnv>, requestIds?: string[]) => {
  await env.gw.deps.usage.flush(10_000);
  const rows = rowsOf(await env.database.db.execute(sql`select * from usage_records where route = 'responses' order by created_at`));
  return requestIds ? rows.filter((r) => requestIds.includes(r.request_id)) : rows;
};

describe.each(dbKinds())('POST /v1/responses on %s', (kind) => {
  const env = useProxyEnv({ db: kind });
  const sdk = () => new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, timeout: 20_000 });

  it('answers non-stream and stream with the upstream reply, one ledger record each, usage from the response', async () => {
    const client = sdk();
    const res = await client.responses.create({ model: MODEL, input: 'Say something nice.' });
    expect(res.object).toBe('response');
    expect(res.id).toMatch(/^resp_/);
    expect(res.output_text.length).toBeGreaterThan(0);
    const sent = responsesBodies(env).at(-1)!;
    expect(sent.input).toBe('Say something nice.');
    expect(sent.store).toBeUndefined(); // the gateway's own field

    const stream = await client.responses.create({ model: MODEL, input: [{ role: 'user', content: 'Stream it.' }], stream: true });
    const types: string[] = [];
    const seqs: number[] = [];
    let completed: any;
    for await (const event of stream) {
      types.push(event.type);
      seqs.push(event.sequence_number);
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(types[0]).toBe('response.created');
    expect(types).toContain('response.output_text.delta');
    expect(types.at(-1)).toBe('response.completed');
    expect(seqs).toEqual(seqs.map((_, i) => i)); // the upstream's numbering, intact
    const streamBody = responsesBodies(env).at(-1)!;

    const rows = await ledger(env);
    const [plain, streamed] = rows.slice(-2);
    const u1 = expectedResponsesUsage(sent);
    expect([plain.prompt_tokens, plain.completion_tokens, plain.status, plain.stream]).toEqual([
      u1.input_tokens,
      u1.output_tokens,
      'ok',
      false,
    ]);
    const u2 = expectedResponsesUsage(streamBody);
    expect([streamed.prompt_tokens, streamed.completion_tokens, streamed.status, streamed.stream]).toEqual([
      u2.input_tokens,
      u2.output_tokens,
      'ok',
      true,
    ]);
    expect(streamed.cost_source).toBe('upstream');
    expect(completed.usage.input_tokens).toBe(u2.input_tokens);
  });

  it('chains previous_response_id: the upstream gets the whole input rebuilt, instructions not carried over', async () => {
    const client = sdk();
    const first = await client.responses.create({ model: MODEL, instructions: 'Be terse.', input: 'My name is Ada.' });
    // Right after the answer (no pause): read-your-writes.
    const second = await client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'What is my name?' });
    const third = await client.responses.create({
      model: MODEL,
      previous_response_id: second.id,
      input: [{ role: 'user', content: 'And again?' }],
      stream: true,
    });
    for await (const _ of third);
    const [, b2, b3] = responsesBodies(env).slice(-3);
    expect(b2.previous_response_id).toBeUndefined();
    expect(b2.instructions).toBeUndefined();
    expect(b2.input).toEqual([
      { type: 'message', role: 'user', content: 'My name is Ada.' },
      ...first.output.map((o) => expect.objectContaining({ id: o.id, type: o.type })),
      { type: 'message', role: 'user', content: 'What is my name?' },
    ]);
    expect(b3.input.length).toBe(b2.input.length + second.output.length + 1);
    expect(JSON.stringify(b3.input)).toContain('My name is Ada.');
    expect(b3.input.at(-1)).toEqual({ role: 'user', content: 'And again?' });
  });

  it('a streamed response is chainable the moment its stream ends', async () => {
    const client = sdk();
    const s = await client.responses.create({ model: MODEL, input: 'Remember: the code word is tangerine.', stream: true });
    let id = '';
    for await (const event of s) if (event.type === 'response.completed') id = event.response.id;
    const next = await client.responses.create({ model: MODEL, previous_response_id: id, input: 'What is the code word?' });
    expect(next.output_text.length).toBeGreaterThan(0);
    expect(JSON.stringify(responsesBodies(env).at(-1)!.input)).toContain('tangerine');
  });

  it('retrieves, lists input items of, and deletes a stored response; store:false keeps nothing', async () => {
    const client = sdk();
    const r = await client.responses.create({
      model: MODEL,
      input: [
        { role: 'user', content: 'one' },
        { role: 'user', content: [{ type: 'input_text', text: 'two' }] },
      ],
    });
    const got = await client.responses.retrieve(r.id);
    expect(got.id).toBe(r.id);
    expect(got.output_text).toBe(r.output_text);
    const items = await client.responses.inputItems.list(r.id, { order: 'asc' });
    expect(items.data.map((i: any) => [i.type, i.role, i.content[0].text])).toEqual([
      ['message', 'user', 'one'],
      ['message', 'user', 'two'],
    ]);
    const page = await fetch(`${env.gw.url}/v1/responses/${r.id}/input_items?limit=1&order=asc`, {
      headers: { authorization: `Bearer ${env.key}` },
    }).then((x) => x.json());
    expect(page.data.length).toBe(1);
    expect(page.has_more).toBe(true);

    await client.responses.delete(r.id);
    await expect(client.responses.retrieve(r.id)).rejects.toMatchObject({ status: 404 });
    await expect(client.responses.create({ model: MODEL, previous_response_id: r.id, input: 'x' })).rejects.toMatchObject({
      status: 400,
      error: expect.objectContaining({ param: 'previous_response_id', code: 'previous_response_not_found' }),
    });

    const unstored = await client.responses.create({ model: MODEL, input: 'forget me', store: false });
    await expect(client.responses.retrieve(unstored.id)).rejects.toMatchObject({ status: 404 });
    await expect(client.responses.create({ model: MODEL, previous_response_id: unstored.id, input: 'x' })).rejects.toMatchObject({
      status: 400,
    });
  });

  it('a function-call round trip: the call, then its output chained back', async () => {
    const client = sdk();
    const tools = [
      {
        type: 'function' as const,
        name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } } },
        strict: false,
      },
    ];
    const call = await client.responses.create({ model: MODEL, input: 'Weather in Paris?', tools, fake: { mode: 'tool_calls' } } as any);
    const fc = call.output.find((o) => o.type === 'function_call') as any;
    expect(fc).toBeDefined();
    const answer = await client.responses.create({
      model: MODEL,
      previous_response_id: call.id,
      tools,
      input: [{ type: 'function_call_output', call_id: fc.call_id, output: '{"temp":21}' }],
    });
    expect(answer.output_text.length).toBeGreaterThan(0);
    const sent = responsesBodies(env).at(-1)!.input;
    expect(sent.map((i: any) => i.type ?? 'message')).toEqual(['message', 'function_call', 'function_call_output']);
    expect(sent[1]).toMatchObject({ call_id: fc.call_id, name: 'get_weather' });
  });

  it('item_reference items (the AI SDK re-sends earlier output that way) are resolved from the store; unknown ones are refused', async () => {
    const client = sdk();
    const first = await client.responses.create({ model: MODEL, input: 'My name is Ada.' });
    const msg = first.output.find((o) => o.type === 'message')!;
    const next = await client.responses.create({
      model: MODEL,
      input: [
        { role: 'user', content: 'My name is Ada.' },
        { type: 'item_reference', id: msg.id },
        { role: 'user', content: 'What is my name?' },
      ],
    });
    expect(next.output_text).toBe('Your name is Ada.');
    const sent = responsesBodies(env).at(-1)!.input;
    expect(sent[1]).toEqual(msg); // the stored item itself, not the reference
    await expect(client.responses.create({ model: MODEL, input: [{ type: 'item_reference', id: 'msg_nope' }] })).rejects.toMatchObject({
      status: 400,
      error: expect.objectContaining({ param: 'input[0].id' }),
    });
  });

  it('reasoning items go back with their encrypted content as given', async () => {
    const client = sdk();
    const first = await client.responses.create({ model: MODEL, input: 'Think first.', reasoning: { effort: 'low' } });
    const reasoning = first.output.find((o) => o.type === 'reasoning') as any;
    expect(reasoning?.encrypted_content).toBeTruthy();
    await client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'Again.' });
    expect(responsesBodies(env).at(-1)!.input[1]).toEqual(reasoning);
  });
});

describe('a rebuilt input and the context window', () => {
  const env = useProxyEnv();

  it("never exceeds the model's window: the oldest items are left out (truncation auto); truncation disabled gets OpenAI's error", async () => {
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 0 });
    const small = 'fake/small-600'; // a 600-token window in the fake catalog
    const sentence = (i: number) => `Turn ${i}: the quick brown fox jumps over the lazy dog near the riverbank at dawn, again and again.`;
    let previous: string | undefined;
    for (let i = 0; i < 14; i++) {
      const r = await client.responses.create({ model: small, input: sentence(i), previous_response_id: previous, max_output_tokens: 100 });
      previous = r.id;
    }
    const last = responsesBodies(env).at(-1)!.input;
    const text = JSON.stringify(last);
    expect(text).toContain('Turn 13:');
    expect(text).not.toContain('Turn 0:'); // cut, oldest first
    expect(last[0].type === 'function_call_output').toBe(false);
    const calls = responsesBodies(env).length;
    await expect(
      client.responses.create({
        model: small,
        input: sentence(14),
        previous_response_id: previous,
        truncation: 'disabled',
        max_output_tokens: 100,
      }),
    ).rejects.toMatchObject({ status: 400, error: expect.objectContaining({ code: 'context_length_exceeded', param: 'input' }) });
    expect(responsesBodies(env).length).toBe(calls); // refused before the upstream
  });
});

describe('Responses under the same keys, limits, budgets and redaction as chat', () => {
  const env = useProxyEnv();

  it('rpm limits apply, and a refused call is recorded rejected without reaching the upstream', async () => {
    const { key } = await env.gw.createKey({ rpm: 2 });
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: key, maxRetries: 0 });
    await client.responses.create({ model: MODEL, input: 'one' });
    await client.responses.create({ model: MODEL, input: 'two', stream: true }).then(async (s) => {
      for await (const _ of s);
    });
    await expect(client.responses.create({ model: MODEL, input: 'three' })).rejects.toMatchObject({
      status: 429,
      error: expect.objectContaining({ code: 'rate_limit_exceeded' }),
    });
    expect(responsesBodies(env)).toHaveLength(2);
    const rows = await ledger(env);
    expect(rows.map((r) => r.status)).toEqual(['ok', 'ok', 'rejected']);
  });

  it('a budget counts Responses spend and refuses once it is used', async () => {
    const { key } = await env.gw.createKey({ budget_usd: '0.000001', budget_period: 'day' });
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: key, maxRetries: 0 });
    const first = await client.responses.create({ model: MODEL, input: 'hello '.repeat(200) });
    await expect(client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'more' })).rejects.toMatchObject({
      status: 429,
      error: expect.objectContaining({ code: 'insufficient_quota' }),
    });
    expect(responsesBodies(env)).toHaveLength(1);
  });

  it('secrets are redacted before a response is stored, so a chain never sends them again', async () => {
    const secret = 'sk-proj-' + 'a1B2c3D4e5F6g7H8i9J0'.repeat(2);
    const first = await env.openai.responses.create({ model: MODEL, input: `My key is ${secret}` });
    await env.openai.responses.create({ model: MODEL, previous_response_id: first.id, input: 'And?' });
    const sent = JSON.stringify(responsesBodies(env).at(-1)!.input);
    expect(sent).not.toContain(secret);
    expect(sent).toContain('My key is');
  });
});

describe('Responses stream failures', () => {
  const env = useProxyEnv();

  it('a failure mid-stream reaches the client as error + response.failed, recorded upstream_error', async () => {
    const res = await env.post('/v1/responses', { model: MODEL, input: 'x', stream: true, fake: { mode: 'midstream_error' } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('event: error');
    expect(text).toContain('event: response.failed');
    const rows = rowsOf(
      await (async () => (
        await env.gw.deps.usage.flush(10_000),
        env.database.db.execute(sql`select status from usage_records where route = 'responses'`)
      ))(),
    );
    expect(rows.map((r) => r.status)).toEqual(['upstream_error']);
  });

  it("a stream the upstream drops gets the gateway's own error and response.failed events", async () => {
    const res = await env.post('/v1/responses', { model: MODEL, input: 'x', stream: true, fake: { mode: 'drop', chunks: 3 } });
    const text = await res.text();
    const failed = text.split('\n\n').find((b) => b.startsWith('event: response.failed'))!;
    expect(failed).toBeDefined();
    const data = JSON.parse(failed.split('\n')[1].slice(6));
    expect(data.response.status).toBe('failed');
    expect(data.response.error.code).toBe('upstream_stream_interrupted');
  });

  it('an error before the stream is OpenAI-shaped', async () => {
    const res = await env.post('/v1/responses', { model: MODEL, input: 'x', stream: true, fake: { mode: 'error', status: 400 } });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ type: 'invalid_request_error' });
  });
});

describe.runIf(inject('postgresUrl'))('Responses state across two instances on one Postgres', () => {
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
    it(`a chain alternating instances at 0 ms sees every earlier turn (${stream ? 'stream' : 'non-stream'})`, async () => {
      const { key } = await a.createKey();
      const on = (gw: TestGateway) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, timeout: 20_000 });
      const ask = async (gw: TestGateway, input: string, previous?: string) => {
        if (!stream) return on(gw).responses.create({ model: MODEL, input, previous_response_id: previous });
        const s = await on(gw).responses.create({ model: MODEL, input, previous_response_id: previous, stream: true });
        let done: any;
        for await (const event of s) if (event.type === 'response.completed') done = event.response;
        return done;
      };
      const r1 = await ask(a, 'Hello, my name is Ada.');
      const r2 = await ask(b, 'What is my name?', r1.id);
      const r3 = await ask(a, 'Remember: the code is 42.', r2.id);
      const r4 = await ask(b, 'What is my name?', r3.id);
      const text = (r: any) =>
        r.output
          .flatMap((o: any) => o.content ?? [])
          .map((p: any) => p.text)
          .join('');
      expect(text(r2)).toBe('Your name is Ada.');
      expect(text(r4)).toBe('Your name is Ada.');
      const last = fake.requests.filter((r) => r.path.endsWith('/responses')).at(-1)!.body.input;
      expect(last.filter((i: any) => i.role === 'user').map((i: any) => i.content)).toEqual([
        'Hello, my name is Ada.',
        'What is my name?',
        'Remember: the code is 42.',
        'What is my name?',
      ]);
    });
  }
});

describe('an abandoned Responses stream', () => {
  const env = useProxyEnv();

  it('aborts the upstream and is recorded client_aborted with an estimate of what was seen', async () => {
    const controller = new AbortController();
    const res = await env.post(
      '/v1/responses',
      { model: MODEL, input: 'Tell me a long story.', stream: true, fake: { mode: 'stall', chunks: 4 } },
      { signal: controller.signal },
    );
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('response.output_text.delta')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const aborted = await env.fake.waitForAbort(10_000);
    expect(aborted.path).toMatch(/\/responses$/);
    await env.gw.deps.usage.flush(10_000);
    const [row] = rowsOf(
      await env.database.db.execute(sql`select status, prompt_tokens, estimated from usage_records where route = 'responses'`),
    );
    expect(row.status).toBe('client_aborted');
    expect(row.prompt_tokens).toBeGreaterThan(0);
    expect(row.estimated).toBe(true);
  });
});
