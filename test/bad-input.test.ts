import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../src/routes/read-json.js';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

/**
 * Bad input is the client's mistake, so a 400 naming the parameter, never a 500: NUL and broken
 * percent-encoding in the URL, JSON nested past the limit, and thread ids that are dot segments.
 */
const env = useProxyEnv();

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const get = (path: string, headers: Record<string, string> = admin) => fetch(env.gw.url + path, { headers });

async function expect400(res: Response, param: string | null, code = 'invalid_value') {
  const text = await res.text();
  expect(res.status, text).toBe(400);
  const body = JSON.parse(text);
  expect(body.error).toMatchObject({ code, param, type: 'invalid_request_error' });
  expect(typeof body.error.message).toBe('string');
}

/** Nested arrays `depth` deep around a string, as raw JSON text. */
const nested = (depth: number) => `${'['.repeat(depth)}"x"${']'.repeat(depth)}`;

/** A request sent as raw bytes, for request targets a fetch client would normalize or refuse. */
function rawGet(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const { port } = new URL(env.gw.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('NUL and invalid characters in the URL', () => {
  it.each([
    ['/admin/usage?model=%00', 'model'],
    ['/admin/usage?workspace=%00', 'workspace'],
    ['/admin/usage?key=a%00b', 'key'],
    ['/admin/usage?from=2024-01-01&to=2024-02-01&group_by=model&model=x%00', 'model'],
    ['/admin/usage/requests?status=%00', 'status'],
    ['/admin/usage/requests?model=%00', 'model'],
    ['/admin/usage/requests?cursor=%00', 'cursor'],
    ['/admin/keys?workspace=%00', 'workspace'],
  ])('GET %s → 400 naming %s, before any database call', async (path, param) => {
    await expect400(await get(path), param);
  });

  it('refuses NUL in a query parameter of the thread list (a database filter)', async () => {
    await expect400(await get('/v1/threads?after=%00', { authorization: `Bearer ${env.key}` }), 'after');
  });

  it('refuses other control characters, and NUL in a parameter name', async () => {
    await expect400(await get('/admin/usage?model=%01'), 'model');
    await expect400(await get('/admin/usage?model=a%7Fb'), 'model');
    await expect400(await get('/admin/usage?mo%00del=x'), 'mo%00del');
  });

  it('keeps accepting ordinary encoded values (spaces, UTF-8, tab)', async () => {
    const res = await get('/admin/usage?model=caf%C3%A9+x%09y&workspace=');
    expect(res.status).toBe(200);
  });

  it('refuses NUL in a path parameter with its name', async () => {
    const proxy = { authorization: `Bearer ${env.key}` };
    await expect400(await get('/v1/threads/abc%00', proxy), 'id');
    await expect400(await get('/t/abc%00/v1/models', proxy), 'thread');
    await expect400(await get('/v1/models/openai%2Fx%00', proxy), 'id');
  });
});

describe('malformed percent-encoding', () => {
  it.each([
    ['/admin/usage?model=%E0%A4%A', 'model'],
    ['/admin/usage?model=%', 'model'],
    ['/admin/usage/requests?status=%ZZ', 'status'],
    ['/admin/usage?model=%ED%A0%80', 'model'], // an encoded lone surrogate is not UTF-8
    ['/admin/usage?model=%C3', 'model'],
  ])('GET %s → 400 naming %s', async (path, param) => {
    await expect400(await get(path), param);
  });

  it('refuses a malformed escape in the path', async () => {
    const res = await rawGet('/v1/threads/abc%E0%A4%A', { authorization: `Bearer ${env.key}` });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'invalid_value', param: 'id' });
  });
});

describe(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, () => {
  it('is a 400 on the stream path of chat completions, and nothing reaches the upstream', async () => {
    const body = `{"model":"${MODEL}","stream":true,"messages":[{"role":"user","content":"hi"}],"x":${nested(200_000)}}`;
    await expect400(await env.post('/v1/chat/completions', body), null);
    expect(env.fake.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(0);
  });

  it('is a 400 in message content on a thread, instead of silently skipping the memory write', async () => {
    const content = `[{"type":"text","text":"hi","extra":${nested(MAX_JSON_DEPTH)}}]`;
    const body = `{"model":"${MODEL}","messages":[{"role":"user","content":${content}}]}`;
    await expect400(await env.post('/v1/chat/completions', body, { headers: { 'x-thread-id': 'deep-thread' } }), null);
  });

  it('accepts nesting up to the limit, counting brackets inside strings as text', async () => {
    // The body object is level 1, "x" holds the remaining levels.
    const deep = nested(MAX_JSON_DEPTH - 1);
    const body = `{"model":"${MODEL}","messages":[{"role":"user","content":"[[[[{{{{ \\" [[[["}],"x":${deep}}`;
    const res = await env.post('/v1/chat/completions', body);
    expect(res.status, await res.text()).toBe(200);
    await expect400(await env.post('/v1/chat/completions', body.replace(deep, `[${deep}]`)), null);
  });

  it('is a 400 on embeddings, thread and admin bodies too', async () => {
    await expect400(await env.post('/v1/embeddings', `{"model":"${MODEL}","input":${nested(100)}}`), null);
    await expect400(await env.post('/v1/threads', `{"metadata":{"a":${nested(100)}}}`), null);
    const res = await fetch(`${env.gw.url}/admin/workspaces`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: `{"name":${nested(100)}}`,
    });
    await expect400(res, null);
  });
});

describe('thread ids that are dot segments', () => {
  it.each(['.', '..'])('refuses "%s" on thread create', async (id) => {
    await expect400(await env.post('/v1/threads', { id }), 'id');
  });

  it.each(['.', '..'])('refuses "%s" in X-Thread-Id and metadata.thread_id', async (id) => {
    const body = { model: MODEL, messages: [user('hi')] };
    await expect400(await env.post('/v1/chat/completions', body, { headers: { 'x-thread-id': id } }), 'X-Thread-Id');
    await expect400(await env.post('/v1/chat/completions', { ...body, metadata: { thread_id: id } }), 'metadata.thread_id');
    expect(env.fake.requests).toHaveLength(0);
  });

  it('still accepts ids with dots that are not dot segments', async () => {
    const res = await env.post('/v1/threads', { id: '...' });
    expect(res.status).toBe(201);
    expect((await get('/v1/threads/...', { authorization: `Bearer ${env.key}` })).status).toBe(200);
  });

  it('never answers /t/../v1 or /t/./v1 with a 500 or with another thread', async () => {
    const proxy = { authorization: `Bearer ${env.key}`, 'content-type': 'application/json' };
    for (const seg of ['..', '.', '%2e%2e', '%2E', '.%2e']) {
      const res = await rawGet(`/t/${seg}/v1/threads`, proxy);
      expect(res.status, `${seg}: ${res.body}`).toBeLessThan(500);
      // Normalized by the URL parser: either an unknown URL, or the plain thread list (no thread).
      if (res.status === 200) expect(JSON.parse(res.body).object).toBe('list');
      else expect(res.status).toBe(404);
    }
  });
});
