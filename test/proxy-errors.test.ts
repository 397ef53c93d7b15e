import { describe, expect, it } from 'vitest';
import { MODEL, readSse, useProxyEnv, user } from './helpers/proxy-env.js';
import { eventually } from './helpers/gateway.js';

const env = useProxyEnv({ config: { upstreamTimeoutMs: 1_500, upstreamIdleTimeoutMs: 400 } });

async function expectError(res: Response, status: number, code: string, param?: string | null) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = await res.json();
  expect(
    Object.keys(body.error)
      .filter((k) => k !== 'upstream')
      .sort(),
  ).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof body.error.type).toBe('string');
  expect(body.error.code).toBe(code);
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body.error;
}

describe('authentication failures are 401 in OpenAI shape', () => {
  const body = { model: MODEL, messages: [user('hi')] };
  const send = (authorization?: string) =>
    fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify(body),
    });

  it('missing, malformed, unknown and injection-shaped keys', async () => {
    await expectError(await send(), 401, 'invalid_api_key');
    await expectError(await send('Bearer'), 401, 'invalid_api_key');
    await expectError(await send('Basic abc'), 401, 'invalid_api_key');
    await expectError(await send("Bearer ' OR '1'='1"), 401, 'invalid_api_key');
    await expectError(await send(`Bearer cmg_${'A'.repeat(43)}`), 401, 'invalid_api_key');
    expect(env.fake.requests.filter((r) => r.path.includes('chat'))).toHaveLength(0);
  });
});

describe('bad requests', () => {
  it('malformed JSON is 400 invalid_json', async () => {
    await expectError(await env.post('/v1/chat/completions', '{"model": "x", '), 400, 'invalid_json');
    await expectError(await env.post('/v1/chat/completions', '[1,2]'), 400, 'invalid_json');
  });

  it('a non-JSON content type is 415', async () => {
    const res = await env.post('/v1/chat/completions', 'model=x', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await expectError(res, 415, 'unsupported_media_type');
  });

  it('missing model or messages is 400 with param', async () => {
    await expectError(await env.post('/v1/chat/completions', { messages: [user('hi')] }), 400, 'missing_required_parameter', 'model');
    await expectError(await env.post('/v1/chat/completions', { model: MODEL }), 400, 'missing_required_parameter', 'messages');
    await expectError(await env.post('/v1/chat/completions', { model: MODEL, messages: 'hi' }), 400, 'invalid_value', 'messages');
    await expectError(await env.post('/v1/embeddings', { model: MODEL }), 400, 'missing_required_parameter', 'input');
  });

  it('a body over the limit is 413, with a length and chunked without one', async () => {
    const big = JSON.stringify({ model: MODEL, messages: [user('x'.repeat(10_485_760))] });
    await expectError(await env.post('/v1/chat/completions', big), 413, 'request_too_large');
    const chunks = new ReadableStream({
      start(controller) {
        const piece = new TextEncoder().encode('x'.repeat(1024 * 1024));
        controller.enqueue(new TextEncoder().encode('{"model":"m","messages":[{"role":"user","content":"'));
        for (let i = 0; i < 11; i++) controller.enqueue(piece);
        controller.enqueue(new TextEncoder().encode('"}]}'));
        controller.close();
      },
    });
    const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.key}`, 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'request_too_large');
    expect(env.fake.requests).toHaveLength(0);
  });

  it('an unknown route is 404', async () => {
    await expectError(await env.post('/v1/nope', {}), 404, 'unknown_url');
    await expectError(await fetch(`${env.gw.url}/nothing/here`), 404, 'unknown_url');
  });
});

describe('upstream failures before the stream', () => {
  it('maps a 4xx to a string code, keeping the upstream message under upstream', async () => {
    const res = await env.post('/v1/chat/completions', { model: MODEL, messages: [user('hi')], fake: { mode: 'error', status: 402 } });
    const error = await expectError(res, 503, 'upstream_insufficient_credits');
    expect(error.upstream.message).toBe('Fake upstream error 402');
    const unknown = await env.post('/v1/chat/completions', { model: 'no/such-model', messages: [user('hi')] });
    expect((await expectError(unknown, 404, 'model_not_found', 'model')).message).toMatch(/not a valid model/);
  });

  it('passes a 429 on with its Retry-After', async () => {
    const res = await env.post('/v1/chat/completions', {
      model: MODEL,
      messages: [user('hi')],
      fake: { mode: 'error', status: 429, retryAfter: '13' },
    });
    expect(res.headers.get('retry-after')).toBe('13');
    await expectError(res, 429, 'rate_limit_exceeded');
    expect(env.fake.requests).toHaveLength(1); // 429 is the client's to retry
  });

  it('retries a 5xx twice, then answers 502', async () => {
    const res = await env.post('/v1/chat/completions', { model: MODEL, messages: [user('hi')], fake: { mode: 'error', status: 500 } });
    await expectError(res, 502, 'server_error');
    expect(env.fake.requests).toHaveLength(3);
    expect(env.gw.outcomes).toHaveLength(1);
    expect(env.gw.outcomes[0]).toMatchObject({ status: 'upstream_error', httpStatus: 502 });
  });

  it('recovers when a retry succeeds, for streams too', async () => {
    const key = `retry-${Date.now()}`;
    const res = await env.post('/v1/chat/completions', {
      model: MODEL,
      stream: true,
      messages: [user('hi')],
      fake: { mode: 'fail_then_ok', failTimes: 2, status: 503, key },
    });
    expect(res.status).toBe(200);
    const { data } = await readSse(res);
    expect(data.at(-1)).toBe('[DONE]');
    expect(env.fake.requests).toHaveLength(3);
  });

  it('a hanging upstream is 504 after the timeout', async () => {
    const t0 = Date.now();
    const res = await env.post('/v1/chat/completions', { model: MODEL, messages: [user('hi')], fake: { mode: 'hang' } });
    await expectError(res, 504, 'upstream_timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
    expect(env.gw.outcomes[0].status).toBe('timeout');
  });
});

describe('failures after the stream started: one error event, then the end', () => {
  const streamed = async (fake: Record<string, unknown>) => {
    const res = await env.post('/v1/chat/completions', { model: MODEL, stream: true, messages: [user('one two three four')], fake });
    expect(res.status).toBe(200);
    const { data } = await readSse(res);
    const last = JSON.parse(data.at(-1)!);
    expect(data.filter((d) => d.includes('"error"'))).toHaveLength(1);
    expect(data).not.toContain('[DONE]');
    expect(
      Object.keys(last.error)
        .filter((k) => k !== 'upstream')
        .sort(),
    ).toEqual(['code', 'message', 'param', 'type']);
    expect(typeof last.error.code).toBe('string');
    return { data, error: last.error };
  };

  it('a stall hits the idle timeout', async () => {
    const { error, data } = await streamed({ mode: 'stall', chunks: 2 });
    expect(error.code).toBe('upstream_timeout');
    expect(data.length).toBeGreaterThan(2);
    await eventually(() => env.gw.outcomes.length === 1);
    expect(env.gw.outcomes[0].status).toBe('timeout');
  });

  it('a dropped connection', async () => {
    const { error } = await streamed({ mode: 'drop', chunks: 2 });
    expect(error.code).toBe('upstream_stream_interrupted');
    await eventually(() => env.gw.outcomes.length === 1);
    expect(env.gw.outcomes[0].status).toBe('upstream_error');
  });

  it("OpenRouter's in-band error chunk, numeric or string code", async () => {
    const { error } = await streamed({ mode: 'midstream_error', chunks: 2 });
    expect(error).toMatchObject({ code: 'server_error', message: 'Provider returned error', type: 'server_error' });
    const second = await streamed({ mode: 'midstream_error', chunks: 1, errorCode: 'server_error' });
    expect(second.error.code).toBe('server_error');
  });

  it('a non-stream 200 that carries an error is a 502', async () => {
    const res = await env.post('/v1/chat/completions', { model: MODEL, messages: [user('hi')], fake: { mode: 'nonstream_error_200' } });
    await expectError(res, 502, 'server_error');
  });
});
