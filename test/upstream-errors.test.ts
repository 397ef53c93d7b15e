import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL, readSse, useProxyEnv, user } from './helpers/proxy-env.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

// Issue 13, point 6: upstream errors reach clients with OpenAI's string codes and statuses, the
// upstream's own status/code/message under `error.upstream`, and `x-should-retry: false` when a
// client retry cannot help.
const env = useProxyEnv();

const chat = (body: Record<string, unknown>) => env.post('/v1/chat/completions', { model: MODEL, messages: [user('hi')], ...body });

async function errorOf(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const { error } = await res.json();
  expect(error.code).toBe(code);
  expect(typeof error.type).toBe('string');
  expect(typeof error.message).toBe('string');
  return error;
}

async function sdkError(p: Promise<unknown>): Promise<any> {
  const err = await p.then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err;
}

/** Drains an SDK stream; returns what it threw. */
async function sdkStreamError(params: Record<string, unknown>, client: OpenAI = env.openai): Promise<any> {
  return sdkError(
    (async () => {
      const stream = await client.chat.completions.create({ model: MODEL, messages: [user('a b c d')], ...params, stream: true } as any);
      for await (const _ of stream as any) {
        // until the SDK throws
      }
    })(),
  );
}

describe('client errors the SDK can act on', () => {
  it('a context overflow is 400 context_length_exceeded with param messages, stream or not', async () => {
    const params = { model: 'fake/small-600', messages: [user('hello')], max_tokens: 5_000 };
    const err = await sdkError(env.openai.chat.completions.create(params));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'messages', type: 'invalid_request_error' });
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(err.error.upstream).toMatchObject({ status: 400, code: 400 });
    expect(err.error.upstream.message).toMatch(/maximum context length is 600 tokens/);
    expect(err.message).toMatch(/maximum context length/);

    const streamed = await sdkStreamError(params);
    expect(streamed).toBeInstanceOf(OpenAI.BadRequestError);
    expect(streamed).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'messages' });
  });

  it('an unknown model is 404 model_not_found with param model, stream or not', async () => {
    const err = await sdkError(env.openai.chat.completions.create({ model: 'no/such-model', messages: [user('x')] }));
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ status: 404, code: 'model_not_found', param: 'model', type: 'invalid_request_error' });
    expect(err.error.upstream).toMatchObject({ status: 400, code: 400, message: 'no/such-model is not a valid model ID' });

    const streamed = await sdkStreamError({ model: 'no/such-model' });
    expect(streamed).toBeInstanceOf(OpenAI.NotFoundError);
    expect(streamed).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    const res = await chat({ fake: { mode: 'error', status: 404 } });
    expect((await errorOf(res, 404, 'model_not_found')).param).toBe('model');
  });

  it('a 429 is rate_limit_exceeded and keeps Retry-After (retrying later can help)', async () => {
    const res = await chat({ fake: { mode: 'error', status: 429, retryAfter: '11' } });
    expect(res.headers.get('retry-after')).toBe('11');
    expect(res.headers.get('x-should-retry')).toBeNull();
    const error = await errorOf(res, 429, 'rate_limit_exceeded');
    expect(error.type).toBe('requests');
    expect(error.upstream).toEqual({ status: 429, code: 429, message: 'Fake upstream error 429', provider: 'FakeProvider' });
    const sdk = await sdkError(
      env.openai.chat.completions.create({ model: MODEL, messages: [user('x')], fake: { mode: 'error', status: 429 } } as any),
    );
    expect(sdk).toBeInstanceOf(OpenAI.RateLimitError);
    expect(sdk.code).toBe('rate_limit_exceeded');
  });

  it('an upstream 408 is a 504 upstream_timeout; a 413 is request_too_large; other 4xx keep their status', async () => {
    expect((await errorOf(await chat({ fake: { mode: 'error', status: 408 } }), 504, 'upstream_timeout')).upstream.status).toBe(408);
    expect(env.gw.outcomes.at(-1)).toMatchObject({ status: 'timeout', httpStatus: 504, errorCode: 'upstream_timeout' });
    await errorOf(await chat({ fake: { mode: 'error', status: 413 } }), 413, 'request_too_large');
    const res = await chat({ fake: { mode: 'error', status: 422 } });
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect((await errorOf(res, 422, 'invalid_request')).type).toBe('invalid_request_error');
  });
});

describe("the gateway's upstream account: the operator's problem, not the client's", () => {
  it('upstream credits exhausted (402) is 503 upstream_insufficient_credits, not retried by the SDK', async () => {
    const withRetries = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: env.key, maxRetries: 2 });
    const err = await sdkError(
      withRetries.chat.completions.create({ model: MODEL, messages: [user('x')], fake: { mode: 'error', status: 402 } } as any),
    );
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).toMatchObject({ status: 503, code: 'upstream_insufficient_credits', type: 'server_error', param: null });
    expect(err.error.message).toMatch(/run out of credits.*operator/);
    expect(err.error.upstream).toMatchObject({ status: 402, code: 402, message: 'Fake upstream error 402' });
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(env.fake.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(1);
  });

  describe('its upstream key refused (401)', () => {
    let gw: TestGateway;
    let key: string;
    beforeAll(async () => {
      gw = await startTestGateway({
        database: env.database,
        upstreamUrl: env.fake.baseUrl,
        config: { openrouterApiKey: 'sk-or-v1-wrong-0123456789' },
      });
      key = (await gw.createKey()).key;
    });
    afterAll(() => gw?.close());

    it('is 502 upstream_auth_failed with x-should-retry false, stream or not, logged once at error', async () => {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 2 });
      const err = await sdkError(client.chat.completions.create({ model: MODEL, messages: [user('x')] }));
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      expect(err).not.toBeInstanceOf(OpenAI.AuthenticationError);
      expect(err).toMatchObject({ status: 502, code: 'upstream_auth_failed', type: 'server_error' });
      expect(err.error.message).toMatch(/not a problem with your API key.*OPENROUTER_API_KEY/);
      expect(err.error.upstream).toMatchObject({ status: 401, code: 401, message: 'No auth credentials found' });
      expect(err.headers.get('x-should-retry')).toBe('false');
      expect(env.fake.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(1);

      const streamed = await sdkStreamError({}, client);
      expect(streamed).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
      const raw = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [user('x')] }),
      });
      await errorOf(raw, 502, 'upstream_auth_failed');

      const refusals = gw.logs.filter((l) => l.code === 'upstream_auth_failed' && l.level === 50);
      expect(refusals).toHaveLength(1);
      expect(refusals[0].msg).toMatch(/OPENROUTER_API_KEY/);
      expect(gw.logText()).not.toContain('sk-or-v1-wrong');
    });
  });
});

describe('upstream server trouble', () => {
  it('a 5xx is 502 server_error after the gateway retried, so the SDK must not retry again', async () => {
    const res = await chat({ fake: { mode: 'error', status: 500 } });
    expect(res.headers.get('x-should-retry')).toBe('false');
    const error = await errorOf(res, 502, 'server_error');
    expect(error).toMatchObject({
      type: 'server_error',
      param: null,
      upstream: { status: 500, code: 500, message: 'Fake upstream error 500' },
    });
    expect(env.fake.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(3);
  });

  it('a 503 stays 503 upstream_unavailable', async () => {
    const error = await errorOf(await chat({ fake: { mode: 'error', status: 503 } }), 503, 'upstream_unavailable');
    expect(error.upstream.status).toBe(503);
  });
});

describe('errors inside a 200', () => {
  it('a stream request answered with a JSON error keeps the upstream message', async () => {
    const res = await chat({ stream: true, fake: { mode: 'nonstream_error_200' } });
    expect(res.status).toBe(200);
    const { data } = await readSse(res);
    expect(data).toHaveLength(1);
    const { error } = JSON.parse(data[0]);
    expect(error).toMatchObject({
      code: 'server_error',
      type: 'server_error',
      message: 'Provider returned error',
      upstream: { status: 200, code: 502 },
    });
    const sdk = await sdkStreamError({ fake: { mode: 'nonstream_error_200' } });
    expect(sdk.message).toMatch(/Provider returned error/);
    expect(sdk.code).toBe('server_error');
  });

  it("an in-stream error event's numeric code becomes a string code; the original is kept", async () => {
    const res = await chat({
      stream: true,
      messages: [user('one two three')],
      fake: { mode: 'midstream_error', chunks: 1, errorCode: 429 },
    });
    const { data } = await readSse(res);
    const { error } = JSON.parse(data.at(-1)!);
    expect(error).toMatchObject({ code: 'rate_limit_exceeded', message: 'Provider returned error', upstream: { status: 200, code: 429 } });
    const sdk = await sdkStreamError({ fake: { mode: 'midstream_error', errorCode: 502 } });
    expect(sdk.code).toBe('server_error');
    expect(sdk.message).toMatch(/Provider returned error/);
    // A string code naming an Object.prototype member is not one of ours.
    expect((await sdkStreamError({ fake: { mode: 'midstream_error', errorCode: 'constructor' } })).code).toBe('server_error');
  });

  it('a non-stream 200 carrying an error is 502 server_error with the upstream code kept', async () => {
    const error = await errorOf(await chat({ fake: { mode: 'nonstream_error_200' } }), 502, 'server_error');
    expect(error).toMatchObject({ message: 'Provider returned error', upstream: { status: 200, code: 502, provider: 'FakeProvider' } });
  });
});

/**
 * An upstream that answers what the request's `script` field says (the gateway passes unknown
 * fields through): HTML pages, plain text and moderation bodies the fake does not produce.
 */
describe('bodies the fake does not send', () => {
  let server: Server;
  let gw: TestGateway;
  let key: string;
  const hits: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        hits.push(req.url ?? '');
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end('{"data":[]}');
        }
        const script = JSON.parse(text).script;
        res.writeHead(script.status, { 'content-type': script.contentType });
        res.end(script.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
    gw = await startTestGateway({ database: env.database, upstreamUrl });
    key = (await gw.createKey()).key;
  });
  afterAll(async () => {
    await gw?.close();
    await new Promise((resolve) => server?.close(resolve));
  });
  const send = (script: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [user('x')], script, ...extra }),
    });

  it('an HTML error page becomes a short readable message', async () => {
    const page = `<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head><body><h1>502 Bad Gateway</h1>${'<p>cloudflare</p>'.repeat(500)}</body></html>`;
    const error = await errorOf(await send({ status: 502, contentType: 'text/html', body: page }), 502, 'server_error');
    expect(error.message).toBe('The upstream answered HTTP 502 with an HTML page (502 Bad Gateway).');
    expect(error.upstream).toEqual({ status: 502, code: null, message: error.message });

    const untitled = await errorOf(
      await send({ status: 400, contentType: 'text/html', body: `<html><body><b>Bad</b>\n\n request ${'x '.repeat(300)}</body></html>` }),
      400,
      'invalid_request',
    );
    expect(untitled.message.length).toBeLessThanOrEqual(200);
    expect(untitled.message).toMatch(/^The upstream answered HTTP 400 with an HTML page \(Bad request x x/);
    expect(untitled.message).not.toMatch(/[<>]/);
  });

  it('a plain-text or empty body is reduced and capped too', async () => {
    const text = await errorOf(
      await send({ status: 400, contentType: 'text/plain', body: `  model   is\n required ${'y'.repeat(500)}` }),
      400,
      'invalid_request',
    );
    expect(text.message).toMatch(/^model is required y+…$/);
    expect(text.message.length).toBe(200);
    const empty = await errorOf(await send({ status: 400, contentType: 'text/plain', body: '' }), 400, 'invalid_request');
    expect(empty.message).toBe('The upstream answered HTTP 400 with an empty body.');
  });

  it('a moderation refusal (403) is content_policy_violation; other 403s permission_denied', async () => {
    const flagged = JSON.stringify({
      error: {
        code: 403,
        message: 'Your chosen model requires moderation and your input was flagged',
        metadata: { reasons: ['violence'], flagged_input: 'x', provider_name: 'P' },
      },
    });
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
    const err = await sdkError(
      client.chat.completions.create({
        model: MODEL,
        messages: [user('x')],
        script: { status: 403, contentType: 'application/json', body: flagged },
      } as any),
    );
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err).toMatchObject({ status: 403, code: 'content_policy_violation', param: null });
    expect(err.error.upstream).toMatchObject({ status: 403, code: 403, provider: 'P' });
    const other = JSON.stringify({ error: { code: 403, message: 'Region not supported' } });
    await errorOf(await send({ status: 403, contentType: 'application/json', body: other }), 403, 'permission_denied');
  });

  it('an in-stream error with an unknown string code is server_error, the code kept under upstream', async () => {
    const sse = `data: ${JSON.stringify({ id: 'gen-1', choices: [{ index: 0, delta: { content: 'a' } }] })}\n\ndata: ${JSON.stringify({ id: 'gen-1', error: { code: 'provider_overloaded', message: 'Busy' }, choices: [{ index: 0, delta: {}, finish_reason: 'error' }] })}\n\n`;
    const res = await send({ status: 200, contentType: 'text/event-stream', body: sse }, { stream: true });
    const { data } = await readSse(res);
    expect(JSON.parse(data.at(-1)!).error).toEqual({
      message: 'Busy',
      type: 'server_error',
      param: null,
      code: 'server_error',
      upstream: { status: 200, code: 'provider_overloaded', message: 'Busy' },
    });
  });
});
