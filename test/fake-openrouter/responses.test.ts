import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TOOL_ARGS, expectedResponsesUsage, REASONING_TOKENS, responsesReplyFor, UTF8_DEFAULT_REPLY } from './server.js';
import { KEY, useFake } from './testkit.js';

const t = useFake();
const MODEL = 'openai/gpt-4o-mini';
const TOOLS = [{ type: 'function' as const, name: 'lookup', parameters: { type: 'object' }, strict: false }];

interface Sse {
  event: string;
  data: any;
}

/** Parse a Responses stream: every event must carry both an `event:` line and JSON `data:`. */
function sseEvents(text: string): Sse[] {
  return text
    .split('\n\n')
    .filter((block) => block !== '' && !block.startsWith(':'))
    .map((block) => {
      const m = /^event: (.+)\ndata: (.+)$/.exec(block);
      if (!m) throw new Error(`not an event: ${JSON.stringify(block)}`);
      return { event: m[1], data: JSON.parse(m[2]) };
    });
}

async function streamed(body: object): Promise<Sse[]> {
  const res = await t.post('/responses', { ...body, stream: true });
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  return sseEvents(await res.text());
}

describe('fake OpenRouter: POST /responses', () => {
  it('answers in the Responses shape with exact usage, and records the request', async () => {
    const body = { model: MODEL, input: 'hello there', store: true, metadata: { k: 'v' } };
    const res = await t.post('/responses', body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-generation-id')).toMatch(/^gen-\d+-/);
    const json = await res.json();
    expect(json.id).toMatch(/^resp_[A-Za-z0-9]+$/);
    expect(json).toMatchObject({
      object: 'response',
      status: 'completed',
      model: MODEL,
      error: null,
      incomplete_details: null,
      instructions: null,
      tools: [],
      tool_choice: 'auto',
      parallel_tool_calls: true,
      previous_response_id: null,
      store: false, // stateless: nothing was kept although the client asked
      metadata: { k: 'v' },
      max_output_tokens: null,
      truncation: 'disabled',
      text: { format: { type: 'text' } },
      reasoning: null,
    });
    expect(typeof json.created_at).toBe('number');
    expect('output_text' in json).toBe(false); // the SDKs compute it
    expect(json.output).toHaveLength(1);
    expect(json.output[0].id).toMatch(/^msg_/);
    expect(json.output[0]).toEqual({
      type: 'message',
      id: json.output[0].id,
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: 'You said: hello there', annotations: [] }],
    });
    // 11 chars -> 3 tokens + 3 for the one item; 4 word pieces; (6*150 + 4*600) nano-USD
    expect(json.usage).toEqual(expectedResponsesUsage(body));
    expect(json.usage).toEqual({
      input_tokens: 6,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 4,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 10,
      cost: 0.0000033,
    });
    expect(t.fake.requests).toHaveLength(1);
    expect(t.fake.requests[0]).toMatchObject({ method: 'POST', path: '/api/v1/responses', body, finished: true });
  });

  it('reads every input item shape and replies from the input it was sent (the SDK gives output_text)', async () => {
    const body = {
      model: 'anthropic/claude-3.5-haiku',
      instructions: 'Be brief.',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Hi, my name is Ada' },
            { type: 'input_image', image_url: 'data:image/png;base64,AA==' },
          ],
        },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello' }] },
        { type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'ok' },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'AAAA' },
        { role: 'user', content: 'What is my name?' },
      ],
    };
    const r = await t.client.responses.create(body as any);
    expect(r.output_text).toBe('Your name is Ada.');
    expect(responsesReplyFor(body)).toBe('Your name is Ada.');
    // chars: 9 + 18 + 5 + 3 + 2 + 0 + 16 = 53 -> 14, plus 3 for each of 7 (instructions and 6 items)
    expect(r.usage?.input_tokens).toBe(35);
    expect(r.usage).toEqual(expectedResponsesUsage(body));
    expect(r.instructions).toBe('Be brief.');
    expect(t.fake.requests[0].body.input).toEqual(body.input);

    const forgotten = await t.client.responses.create({ model: MODEL, input: 'what is my name' });
    expect(forgotten.output_text).toBe('I do not know your name.');
    const told = await t.client.responses.create({ model: MODEL, input: 'x', fake: { reply: 'scripted' } } as any);
    expect(told.output_text).toBe('scripted');
  });

  it('refuses previous_response_id and conversation: it keeps no state', async () => {
    for (const [field, value] of [
      ['previous_response_id', 'resp_abc'],
      ['conversation', 'conv_abc'],
      ['conversation', { id: 'conv_abc' }],
    ] as const) {
      const res = await t.post('/responses', { model: MODEL, input: 'x', [field]: value });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: { code: 400, message: `${field} is not supported: the Responses API is stateless, send the whole input` },
      });
    }
    const err = await t.client.responses.create({ model: MODEL, input: 'x', previous_response_id: 'resp_abc' }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    // Explicit nulls are what some clients send for "none": accepted.
    const ok = await t.post('/responses', { model: MODEL, input: 'x', previous_response_id: null, conversation: null });
    expect(ok.status).toBe(200);
  });

  it('rejects bad auth, unknown models, missing input and a context overflow like chat does', async () => {
    const auth = await t.post('/responses', { model: MODEL, input: 'x' }, 'nope');
    expect(auth.status).toBe(401);
    expect(await auth.json()).toEqual({ error: { code: 401, message: 'No auth credentials found' } });
    const model = await t.post('/responses', { model: 'no/such-model', input: 'x' });
    expect(model.status).toBe(400);
    expect(await model.json()).toEqual({ error: { code: 400, message: 'no/such-model is not a valid model ID' } });
    const missing = await t.post('/responses', { model: MODEL });
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.code).toBe(400);
    const big = await t.post('/responses', { model: 'fake/small-600', input: 'x', max_output_tokens: 600 });
    expect(big.status).toBe(400);
    expect((await big.json()).error.message).toMatch(/maximum context length is 600 tokens/);
  });

  it('streams named, numbered events in order with stable ids and the usage at the end', async () => {
    const body = { model: MODEL, input: 'one two three' };
    const res = await t.post('/responses', { ...body, stream: true });
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const text = await res.text();
    expect(text.startsWith(': OPENROUTER PROCESSING\n\n')).toBe(true);
    expect(text).not.toContain('[DONE]');
    const events = sseEvents(text);
    expect(events.every((e) => e.event === e.data.type)).toBe(true);
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.filter((e) => e.event === 'response.output_text.delta');
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...deltas.map(() => 'response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const [created, inProgress, added, partAdded] = events.map((e) => e.data);
    const completed = events.at(-1)!.data;
    expect(created.response).toMatchObject({ status: 'in_progress', output: [], usage: null });
    expect(inProgress.response.id).toBe(created.response.id);
    expect(completed.response.id).toBe(created.response.id);
    expect(added).toMatchObject({ output_index: 0, item: { type: 'message', status: 'in_progress', content: [] } });
    const itemId = added.item.id;
    expect(partAdded).toMatchObject({ item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '' } });
    expect(deltas.length).toBe(5);
    expect(deltas.every((e) => e.data.item_id === itemId && e.data.output_index === 0 && e.data.content_index === 0)).toBe(true);
    expect(deltas.map((e) => e.data.delta).join('')).toBe('You said: one two three');
    expect(events.find((e) => e.event === 'response.output_text.done')!.data.text).toBe('You said: one two three');
    expect(completed.response).toMatchObject({
      status: 'completed',
      output: [{ id: itemId, status: 'completed', content: [{ text: 'You said: one two three' }] }],
    });
    expect(completed.response.usage).toEqual(expectedResponsesUsage(body));
  });

  it('is consumed by the openai SDK: responses.stream() and create({stream: true})', async () => {
    const body = { model: MODEL, input: 'stream me please' };
    const helper = t.client.responses.stream(body);
    let text = '';
    for await (const event of helper) if (event.type === 'response.output_text.delta') text += event.delta;
    expect(text).toBe('You said: stream me please');
    const final = await helper.finalResponse();
    expect(final.output_text).toBe('You said: stream me please');
    expect(final.usage).toEqual(expectedResponsesUsage(body));

    const raw = await t.client.responses.create({ ...body, stream: true });
    const types: string[] = [];
    for await (const event of raw) types.push(event.type);
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
  });

  it('answers with a function call when asked, and with text once the call output comes back', async () => {
    const body = { model: MODEL, input: 'weather?', tools: TOOLS, fake: { mode: 'tool_calls' } };
    const r = await t.client.responses.create(body);
    expect(r.output).toHaveLength(1);
    const call = r.output[0] as any;
    expect(call).toMatchObject({ type: 'function_call', name: 'lookup', arguments: DEFAULT_TOOL_ARGS, status: 'completed' });
    expect(call.id).toMatch(/^fc_/);
    expect(call.call_id).toMatch(/^call_/);
    expect(r.output_text).toBe('');
    expect(r.usage).toEqual(expectedResponsesUsage(body));
    expect(r.tools).toEqual(TOOLS);

    const helper = t.client.responses.stream(body as any);
    let argDeltas = 0;
    helper.on('response.function_call_arguments.delta', () => argDeltas++);
    const final = await helper.finalResponse();
    expect(argDeltas).toBeGreaterThanOrEqual(3);
    expect(final.output[0]).toMatchObject({ type: 'function_call', name: 'lookup', arguments: DEFAULT_TOOL_ARGS });

    const next = {
      ...body,
      input: [
        { role: 'user', content: 'weather?' },
        { type: 'function_call', call_id: call.call_id, name: 'lookup', arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' },
      ],
    };
    const answered = await t.client.responses.create(next as any);
    expect(answered.output_text).toBe('You said: weather?');
    expect(answered.usage).toEqual(expectedResponsesUsage(next));

    const none = await t.client.responses.create({ ...body, tool_choice: 'none' } as any);
    expect(none.output[0].type).toBe('message');
    const forced = await t.client.responses.create({ ...body, tool_choice: { type: 'function', name: 'other' } } as any);
    expect((forced.output[0] as any).name).toBe('other');
  });

  it('puts an encrypted reasoning item first and counts reasoning tokens when reasoning is set', async () => {
    const body = { model: MODEL, input: 'think', reasoning: { effort: 'low' as const } };
    const r = await t.client.responses.create(body);
    expect(r.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
    const reasoning = r.output[0] as any;
    expect(reasoning.id).toMatch(/^rs_/);
    expect(reasoning.summary).toEqual([]);
    expect(reasoning.encrypted_content).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(r.reasoning).toEqual({ effort: 'low' });
    expect(r.usage?.output_tokens_details.reasoning_tokens).toBe(REASONING_TOKENS);
    expect(r.usage?.output_tokens).toBe(REASONING_TOKENS + 3);
    expect(r.usage).toEqual(expectedResponsesUsage(body));

    const events = await streamed(body);
    const added = events.filter((e) => e.event === 'response.output_item.added').map((e) => e.data);
    expect(added.map((a) => [a.output_index, a.item.type])).toEqual([
      [0, 'reasoning'],
      [1, 'message'],
    ]);
    expect(events.filter((e) => e.event === 'response.output_text.delta').every((e) => e.data.output_index === 1)).toBe(true);
  });

  it('ends incomplete when max_output_tokens cuts the answer', async () => {
    const body = { model: MODEL, input: 'a b c d e f', max_output_tokens: 2 };
    const r = await t.client.responses.create(body);
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.output_text).toBe('You said: ');
    expect((r.output[0] as any).status).toBe('incomplete');
    expect(r.usage?.output_tokens).toBe(2);
    expect(r.usage).toEqual(expectedResponsesUsage(body));

    const events = await streamed(body);
    expect(events.filter((e) => e.event === 'response.output_text.delta')).toHaveLength(2);
    const last = events.at(-1)!;
    expect(last.event).toBe('response.incomplete');
    expect(last.data.response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
    const final = await t.client.responses.stream(body).finalResponse();
    expect(final.status).toBe('incomplete');
  });

  it('sends upstream errors before any output, with Retry-After, and fails per key then succeeds', async () => {
    const res = await t.post('/responses', { model: MODEL, input: 'x', stream: true, fake: { mode: 'error', status: 429 } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({
      error: { code: 429, message: 'Fake upstream error 429', metadata: { provider_name: 'FakeProvider' } },
      user_id: 'user_fake',
    });
    const err = await t.client.responses.create({ model: MODEL, input: 'x', fake: { mode: 'error', status: 503 } } as any).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);

    const flaky = { model: MODEL, input: 'x', fake: { mode: 'fail_then_ok', key: 'r1', failTimes: 1 } };
    expect((await t.post('/responses', flaky)).status).toBe(502);
    expect((await t.post('/responses', flaky)).status).toBe(200);
  });

  it('fails mid-stream with an error event then response.failed; the SDK helper rejects', async () => {
    const body = { model: MODEL, input: 'a b c d e f', fake: { mode: 'midstream_error' } };
    const events = await streamed(body);
    const types = events.map((e) => e.event);
    expect(types.filter((ty) => ty === 'response.output_text.delta')).toHaveLength(2);
    expect(types.slice(-2)).toEqual(['error', 'response.failed']);
    const [error, failed] = events.slice(-2).map((e) => e.data);
    expect(error).toEqual({
      type: 'error',
      sequence_number: events.length - 2,
      code: 'server_error',
      message: 'Provider returned error',
      param: null,
    });
    expect(failed.response).toMatchObject({
      id: events[0].data.response.id,
      status: 'failed',
      error: { code: 'server_error', message: 'Provider returned error' },
      usage: null,
      output: [{ type: 'message', status: 'incomplete', content: [{ text: 'You said: ' }] }],
    });

    await expect(t.client.responses.stream(body as any).finalResponse()).rejects.toMatchObject({ type: 'error', code: 'server_error' });

    // Without a stream a late failure is a 200 whose response failed.
    const res = await t.post('/responses', body);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'failed', output: [], usage: null, error: { code: 'server_error' } });
  });

  it('drops the socket mid-stream, or stalls, hangs and cuts a JSON body as chat does', async () => {
    const dropped = await t.post('/responses', { model: MODEL, input: 'a b c d e f', stream: true, fake: { mode: 'drop' } });
    await expect(dropped.text()).rejects.toThrow();
    expect(t.fake.requests.at(-1)).toMatchObject({ aborted: false, finished: false });

    const cut = await t.post('/responses', { model: MODEL, input: 'x', fake: { mode: 'drop_after_headers' } });
    expect(cut.status).toBe(200);
    await expect(cut.text()).rejects.toThrow();

    const send = (mode: string, stream: boolean, signal: AbortSignal) =>
      fetch(`${t.fake.baseUrl}/responses`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ model: MODEL, input: 'a b c d', stream, fake: { mode } }),
        signal,
      });
    const stallAbort = new AbortController();
    const stalled = await send('stall', true, stallAbort.signal);
    const reader = stalled.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('OPENROUTER PROCESSING');
    stallAbort.abort();
    expect((await t.fake.waitForAbort()).body.fake.mode).toBe('stall');

    const hangAbort = new AbortController();
    const hanging = send('hang', false, hangAbort.signal).catch((e) => e);
    setTimeout(() => hangAbort.abort(), 50);
    expect(await hanging).toBeInstanceOf(Error);
    expect((await t.fake.waitForAbort()).body.fake.mode).toBe('hang');
  });

  it('paces deltas with delayMs and splits events inside UTF-8 characters', async () => {
    const started = Date.now();
    const events = await streamed({ model: MODEL, input: 'a b c', fake: { delayMs: 40 } });
    expect(events.filter((e) => e.event === 'response.output_text.delta')).toHaveLength(5); // "You ", "said: ", "a ", "b ", "c"
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);

    const res = await t.post('/responses', { model: MODEL, input: 'x', stream: true, fake: { mode: 'utf8_split' } });
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
    expect(parts.some((p) => (p[0] & 0xc0) === 0x80)).toBe(true); // a chunk began mid-character
    const text = sseEvents(Buffer.concat(parts).toString('utf8'))
      .filter((e) => e.event === 'response.output_text.delta')
      .map((e) => e.data.delta)
      .join('');
    expect(text).toBe(UTF8_DEFAULT_REPLY);
  });
});
