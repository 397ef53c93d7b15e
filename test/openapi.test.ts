import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

/**
 * GET /openapi.json is an OpenAPI 3.1 document of every route the app serves, whose request schemas
 * are what the routes accept (checked by posting bodies an independent JSON Schema validator
 * accepts or refuses); GET /docs renders it with working links; GET / answers browsers with a page
 * and API clients with JSON.
 */
const env = useProxyEnv();
const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

type Json = Record<string, any>;
let doc: Json;

// ajv-formats is CommonJS: under Node's ESM its plugin is the default export's `default`.
const addFormats = ((addFormatsPlugin as any).default ?? addFormatsPlugin) as (ajv: Ajv2020) => Ajv2020;

beforeAll(async () => {
  const res = await fetch(`${env.gw.url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = await res.json();
});

/** Every `$ref` in a value, with where it sits. */
function refsIn(value: unknown, at = '#', out: [string, string][] = []): [string, string][] {
  if (Array.isArray(value)) value.forEach((v, i) => refsIn(v, `${at}/${i}`, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push([at, v]);
      else refsIn(v, `${at}/${k}`, out);
    }
  }
  return out;
}
const resolve = (ref: string) =>
  ref
    .slice(2)
    .split('/')
    .reduce<any>((node, part) => node?.[part], doc);

describe('the OpenAPI document', () => {
  it('has the OpenAPI 3.1 shape: info with the package version, paths of operations with responses, unique operation ids', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: 'Context Memory Gateway', version: VERSION });
    const ids = new Set<string>();
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      expect(path.startsWith('/'), path).toBe(true);
      for (const [method, op] of Object.entries<Json>(item)) {
        expect(METHODS, `${method} ${path}`).toContain(method);
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        for (const status of Object.keys(op.responses)) expect(status, `${method} ${path}`).toMatch(/^[1-5]\d\d$/);
        expect(ids.has(op.operationId), op.operationId).toBe(false);
        ids.add(op.operationId);
        // Every {param} of the template is declared, required, in the path.
        const declared = (op.parameters ?? []).map((p: Json) => (p.$ref ? resolve(p.$ref) : p)).filter((p: Json) => p.in === 'path');
        const template = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        expect(declared.map((p: Json) => p.name).sort(), `${method} ${path}`).toEqual(template.sort());
        for (const p of declared) expect(p.required).toBe(true);
      }
    }
  });

  it('resolves every $ref inside the document, and has no nested $defs a 3.1 reader would miss', () => {
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(50);
    for (const [at, ref] of refs) {
      expect(ref.startsWith('#/components/'), `${at}: ${ref}`).toBe(true);
      expect(resolve(ref), `${at}: ${ref}`).toBeTruthy();
    }
    expect(JSON.stringify(doc)).not.toContain('$defs');
  });

  it('has schemas every one of which is valid JSON Schema 2020-12', () => {
    const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
    for (const [name, schema] of Object.entries<Json>(doc.components.schemas)) {
      expect(() => ajv.compile(schema), name).not.toThrow();
    }
  });

  it('documents the security schemes: gateway keys for /v1, the admin token for /admin, reports either way', () => {
    expect(doc.components.securitySchemes.gatewayKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.securitySchemes.consoleSession).toMatchObject({ type: 'apiKey', in: 'cookie' });
    expect(doc.paths['/v1/chat/completions'].post.security).toEqual([{ gatewayKey: ['proxy'] }]);
    expect(doc.paths['/v1/threads'].get.security).toEqual([{ gatewayKey: ['proxy'] }]);
    expect(doc.paths['/admin/keys'].post.security).toContainEqual({ adminToken: [] });
    expect(doc.paths['/admin/usage'].get.security).toEqual(expect.arrayContaining([{ adminToken: [] }, { gatewayKey: ['reports'] }]));
    expect(doc.paths['/health'].get.security).toEqual([]);
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      for (const [method, op] of Object.entries<Json>(item)) {
        if (path.startsWith('/v1/') || path.startsWith('/t/'))
          expect(op.security, `${method} ${path}`).toEqual([{ gatewayKey: ['proxy'] }]);
        if (path.startsWith('/admin/') && !path.startsWith('/admin/usage'))
          expect(op.security, `${method} ${path}`).toContainEqual({ adminToken: [] });
      }
    }
  });

  it("documents the error shape and the gateway's own headers", () => {
    const error = doc.components.schemas.Error;
    expect(error.properties.error.required).toEqual(expect.arrayContaining(['message', 'type', 'param', 'code']));
    expect(doc.paths['/v1/chat/completions'].post.responses['400']).toEqual({ $ref: '#/components/responses/BadRequest' });
    expect(doc.components.responses.BadRequest.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    const params = (op: Json) => op.parameters.map((p: Json) => (p.$ref ? resolve(p.$ref) : p).name);
    expect(params(doc.paths['/v1/chat/completions'].post)).toEqual(
      expect.arrayContaining(['X-Thread-Id', 'X-Memory', 'X-Memory-Max-Tokens', 'x-request-id']),
    );
    expect(params(doc.paths['/v1/responses'].post)).toEqual(expect.arrayContaining(['X-Thread-Id', 'X-Memory']));
    expect(resolve('#/components/parameters/XMemory').schema.enum).toEqual(['off', 'read', 'write', 'readwrite']);
    const ok = doc.paths['/v1/chat/completions'].post.responses['200'];
    expect(Object.keys(ok.headers)).toEqual(
      expect.arrayContaining(['x-request-id', 'x-thread-id', 'x-memory-status', 'x-ratelimit-remaining-requests']),
    );
    expect(Object.keys(ok.content)).toEqual(['application/json', 'text/event-stream']);
  });

  it('lists every route the app serves, and serves every route it lists', () => {
    const app = createApp(env.gw.deps);
    // Hono's `:id` and `:id{.+}` and OpenAPI's `{id}` both become `{}`.
    const norm = (path: string) =>
      path
        .replace(/:\w+(\{[^}]*\})?/g, '{}')
        .replace(/\{\w+\}/g, '{}')
        .replace(/(.)\/$/, '$1') || '/';
    const served = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL')
        // The console's own pages and assets (sign-in, scripts) are not API; the /t/{thread}/v1 mirror is checked below.
        .filter((r) => !r.path.startsWith('/dashboard/') && !r.path.startsWith('/t/'))
        .map((r) => `${r.method} ${norm(r.path)}`),
    );
    const documented = new Set(
      Object.entries<Json>(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${norm(path)}`)),
    );
    const missing = [...served].filter((r) => !documented.has(r));
    expect(missing, 'served but not in the OpenAPI document: add them to src/routes/openapi/operations.ts').toEqual([]);
    const mirrored = new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${norm(r.path)}`));
    const phantom = [...documented].filter((r) => !served.has(r) && !mirrored.has(r));
    expect(phantom, 'documented but not served').toEqual([]);
    for (const route of [
      'POST /v1/chat/completions',
      'POST /v1/completions',
      'POST /v1/responses',
      'GET /v1/responses/{}',
      'DELETE /v1/responses/{}',
      'GET /v1/responses/{}/input_items',
      'POST /v1/conversations',
      'GET /v1/conversations/{}/items',
      'POST /v1/embeddings',
      'GET /v1/models',
      'GET /admin/usage',
      'GET /admin/usage/requests',
      'POST /admin/keys',
      'GET /v1/threads',
    ]) {
      expect(documented.has(route), route).toBe(true);
    }
    expect(documented.has('POST /t/{}/v1/chat/completions')).toBe(true);
    expect(mirrored.has('POST /t/{}/v1/chat/completions')).toBe(true);
  });

  it('never carries a secret of the running gateway', async () => {
    const text = await (await fetch(`${env.gw.url}/openapi.json`)).text();
    expect(text).not.toContain(ADMIN_TOKEN);
    expect(text).not.toContain(env.key);
    expect(text).not.toContain('sk-or-v1-fake');
  });

  it('answers a revalidation with 304', async () => {
    const first = await fetch(`${env.gw.url}/openapi.json`);
    const etag = first.headers.get('etag');
    expect(etag).toBeTruthy();
    const again = await fetch(`${env.gw.url}/openapi.json`, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
  });
});

/** A body and what the document must say of it: accepted, or refused naming `param` (null: no param). */
type Case = [body: Json, accepted: true] | [body: Json, accepted: false, param?: string | null];

describe('each documented request schema is what its route accepts', () => {
  const ids = { thread: 'oa-thread', item: '', conversation: '', key: '', workspace: '' };
  const run = Math.random().toString(36).slice(2, 8);
  const bearer = (path: string) => (path.startsWith('/admin/') ? ADMIN_TOKEN : env.key);
  const send = (method: string, path: string, body: Json) =>
    fetch(env.gw.url + path, {
      method,
      headers: { authorization: `Bearer ${bearer(path)}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    expect((await send('POST', '/v1/threads', { id: ids.thread })).status).toBe(201);
    ids.item = (await (await send('POST', `/v1/threads/${ids.thread}/items`, { content: 'a fact', kind: 'fact' })).json()).id;
    ids.conversation = (await (await send('POST', '/v1/conversations', {})).json()).id;
    const created = await env.gw.createKey();
    ids.key = created.id;
    ids.workspace = created.workspace;
  });

  const conversationItem = { type: 'message', role: 'user', content: 'hi' };
  /** Per documented operation: bodies on both sides of each field the gateway checks. */
  const TABLE: Record<string, () => Case[]> = {
    'POST /v1/chat/completions': () => [
      [{ model: MODEL, messages: [user('hi')] }, true],
      [{ models: [MODEL], messages: [user('hi')] }, true],
      [{ model: MODEL, models: [MODEL], messages: [user('hi')], stream: false, temperature: 0.2, max_tokens: 5 }, true],
      [{ model: MODEL, messages: [user('hi')], stream: null, metadata: { thread_id: ids.thread } }, true],
      [{ messages: [user('hi')] }, false, 'model'],
      [{ model: null, messages: [user('hi')] }, false, 'model'],
      [{ model: '  ', messages: [user('hi')] }, false, 'model'],
      [{ model: 5, messages: [user('hi')] }, false, 'model'],
      [{ model: MODEL }, false, 'messages'],
      [{ model: MODEL, messages: [] }, false, 'messages'],
      [{ model: MODEL, messages: 'hi' }, false, 'messages'],
      [{ models: [], messages: [user('hi')] }, false, 'models'],
      [{ model: MODEL, models: [''], messages: [user('hi')] }, false, 'models'],
      [{ model: MODEL, messages: [user('hi')], stream: 'yes' }, false, 'stream'],
      [{ model: MODEL, messages: [user('hi')], metadata: { thread_id: '..' } }, false, 'metadata.thread_id'],
    ],
    'POST /v1/completions': () => [
      [{ model: MODEL, prompt: 'Say hello' }, true],
      [{ model: MODEL, prompt: ['a', 'b'], stream: false, max_tokens: 5 }, true],
      [{ prompt: 'hi' }, false, 'model'],
      [{ model: ' ', prompt: 'hi' }, false, 'model'],
      [{ model: MODEL }, false, 'prompt'],
      [{ model: MODEL, prompt: null }, false, 'prompt'],
      [{ model: MODEL, prompt: 'hi', stream: 1 }, false, 'stream'],
    ],
    'POST /v1/embeddings': () => [
      [{ model: MODEL, input: 'x' }, true],
      [{ model: MODEL, input: ['a', 'b'], dimensions: 8 }, true],
      [{ input: 'x' }, false, 'model'],
      [{ model: '', input: 'x' }, false, 'model'],
      [{ model: MODEL }, false, 'input'],
    ],
    'POST /v1/responses': () => [
      [{ model: MODEL, input: 'hi' }, true],
      [{ model: MODEL, input: [{ role: 'user', content: 'hi' }], store: false, truncation: 'auto' }, true],
      [{ model: MODEL, input: 'hi', conversation: ids.conversation }, true],
      [{ model: MODEL, input: 'hi', conversation: { id: ids.conversation }, stream: false }, true],
      [{ input: 'hi' }, false, 'model'],
      [{ model: 7, input: 'hi' }, false, 'model'],
      [{ model: MODEL, input: 5 }, false, 'input'],
      [{ model: MODEL, input: ['hi'] }, false, 'input[0]'],
      [{ model: MODEL, input: 'hi', store: 'no' }, false, 'store'],
      [{ model: MODEL, input: 'hi', stream: 0 }, false, 'stream'],
      [{ model: MODEL, input: 'hi', truncation: 'sometimes' }, false, 'truncation'],
      [{ model: MODEL, input: 'hi', previous_response_id: '' }, false, 'previous_response_id'],
      [{ model: MODEL, input: 'hi', conversation: '..' }, false, 'conversation'],
      [{ model: MODEL, input: 'hi', conversation: { id: 5 } }, false, 'conversation'],
    ],
    'POST /v1/conversations': () => [
      [{}, true],
      [{ metadata: { topic: 'billing' }, items: [conversationItem] }, true],
      [{ metadata: null, items: null }, true],
      [{ metadata: 'x' }, false, 'metadata'],
      [{ metadata: { n: 1 } }, false, 'metadata'],
      [{ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }, false, 'metadata'],
      [{ items: 'x' }, false, 'items'],
      [{ items: Array.from({ length: 21 }, () => conversationItem) }, false, 'items'],
      [{ items: [1] }, false, 'input[0]'],
    ],
    'POST /v1/conversations/{conversation_id}': () => [
      [{ metadata: { topic: 'sales' } }, true],
      [{}, false, 'metadata'],
      [{ metadata: [] }, false, 'metadata'],
    ],
    'POST /v1/conversations/{conversation_id}/items': () => [
      [{ items: [conversationItem] }, true],
      [{ items: [] }, false, 'items'],
      [{}, false, 'items'],
      [{ items: [[]] }, false, 'input[0]'],
    ],
    'POST /v1/threads': () => [
      [{ id: `oa-new-${run}`, title: 'a title', metadata: { a: 1 } }, true],
      [{ title: null }, true],
      [{ title: 5 }, false, 'title'],
      [{ title: 'x'.repeat(501) }, false, 'title'],
      [{ metadata: 'x' }, false, 'metadata'],
      [{ unknown_field: 1 }, false, 'unknown_field'],
    ],
    'PATCH /v1/threads/{thread_id}': () => [
      [{ title: 'renamed' }, true],
      [{ title: 1 }, false, 'title'],
      [{ id: 'other' }, false, 'id'],
    ],
    'POST /v1/threads/{thread_id}/items': () => [
      [{ content: 'hello' }, true],
      [{ kind: 'note', content: [{ type: 'text', text: 'n' }], pinned: true }, true],
      [{}, false, 'content'],
      [{ content: 'x', kind: 'memo' }, false, 'kind'],
      [{ content: 'x', role: 'robot' }, false, 'role'],
      [{ content: 'x', seq: 1 }, false, 'seq'],
    ],
    'PATCH /v1/threads/{thread_id}/items/{item_id}': () => [
      [{ pinned: true }, true],
      [{ status: 'deleted' }, false, 'status'],
      [{ pinned: 'yes' }, false, 'pinned'],
    ],
    'POST /v1/threads/{thread_id}/context': () => [
      [{ model: MODEL, messages: [] }, true],
      [{ model: MODEL, messages: [user('what do you know?')] }, true],
      [{ messages: [] }, false, 'model'],
      [{ model: '', messages: [] }, false, 'model'],
      [{ model: MODEL }, false, 'messages'],
      [{ model: MODEL, messages: {} }, false, 'messages'],
    ],
    'POST /admin/workspaces': () => [
      [{ name: `oa-ws-${run}` }, true],
      [{}, false, 'name'],
      [{ name: 'not a name!' }, false, 'name'],
      [{ name: 'x', id: 'ws_1' }, false, 'id'],
    ],
    'POST /admin/keys': () => [
      [{ workspace: ids.workspace, name: 'k1' }, true],
      [
        {
          workspace: ids.workspace,
          name: 'k2',
          scopes: ['reports'],
          rpm: 60,
          tpm: null,
          budget_usd: '5.25',
          budget_period: 'day',
          expires_at: '2099-01-01T00:00:00Z',
        },
        true,
      ],
      [{ name: 'k' }, false, 'workspace'],
      [{ workspace: ids.workspace, name: '' }, false, 'name'],
      [{ workspace: ids.workspace, name: 'k', rpm: 0 }, false, 'rpm'],
      [{ workspace: ids.workspace, name: 'k', scopes: [] }, false, 'scopes'],
      [{ workspace: ids.workspace, name: 'k', scopes: ['root'] }, false, 'scopes.0'],
      [{ workspace: ids.workspace, name: 'k', expires_at: 'tomorrow' }, false, 'expires_at'],
      [{ workspace: ids.workspace, name: 'k', key_hash: 'x' }, false, 'key_hash'],
    ],
    'PATCH /admin/keys/{key_id}': () => [
      [{ name: 'renamed' }, true],
      [{ rpm: -1 }, false, 'rpm'],
      [{ budget_period: 'year' }, false, 'budget_period'],
      [{ workspace: 'other' }, false, 'workspace'],
    ],
  };

  it('covers every operation of the document that takes a body', () => {
    const withBody = Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
      Object.entries<Json>(item)
        .filter(([, op]) => op.requestBody)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    // The mirrors (/t/{thread}/v1, the operators' thread routes) take the very same schemas.
    const own = withBody.filter((r) => !r.includes('/t/{thread}') && !r.includes('/admin/workspaces/{workspace}/threads'));
    expect(own.sort()).toEqual(Object.keys(TABLE).sort());
  });

  it.each(Object.keys(TABLE))(
    '%s: a body the schema refuses is a 400 naming the field (nothing sent upstream); one it accepts gets past validation',
    async (route) => {
      const [method, template] = route.split(' ') as [string, string];
      const op = doc.paths[template][method.toLowerCase()];
      const schema = resolve(op.requestBody.content['application/json'].schema.$ref);
      const validate = addFormats(new Ajv2020({ strict: false, allErrors: true })).compile(schema);
      const path = template
        .replace('{thread_id}', ids.thread)
        .replace('{item_id}', ids.item)
        .replace('{conversation_id}', ids.conversation)
        .replace('{key_id}', ids.key);
      for (const [body, accepted, param] of TABLE[route]()) {
        const label = `${route} ${JSON.stringify(body).slice(0, 160)}`;
        expect(validate(body), `${label}: the document says ${accepted ? 'accepted' : 'refused'}`).toBe(accepted);
        const upstreamBefore = env.fake.requests.length;
        const res = await send(method, path, body);
        const text = await res.text();
        if (accepted) {
          expect(res.status, `${label}: ${text.slice(0, 300)}`).toBeLessThan(300);
        } else {
          expect(res.status, `${label}: ${text.slice(0, 300)}`).toBe(400);
          const { error } = JSON.parse(text);
          expect(error, label).toMatchObject({
            type: 'invalid_request_error',
            code: expect.stringMatching(/^(invalid_value|missing_required_parameter)$/),
          });
          expect(typeof error.message).toBe('string');
          if (param !== undefined) expect(error.param, label).toBe(param);
          expect(env.fake.requests.length, `${label}: sent upstream`).toBe(upstreamBefore);
        }
      }
    },
  );
});

describe('the documented query parameters are what the routes take', () => {
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    const { key, workspace } = await env.gw.createKey();
    const post = (path: string, body: Json, token = key) =>
      fetch(env.gw.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    ids.key = key;
    ids.workspace = workspace;
    ids.thread_id = 'oa-query';
    expect((await post('/v1/threads', { id: ids.thread_id })).status).toBe(201);
    ids.conversation_id = (await (await post('/v1/conversations', {})).json()).id;
    ids.response_id = (await (await post('/v1/responses', { model: MODEL, input: 'hi' })).json()).id;
  });

  /** Each GET with integer bounds or a closed list: one past each bound (and a value outside the list) is a 400 naming it; the bound itself is not. */
  it('refuses one past each bound of an integer, and a value outside an enum, naming the parameter; takes the bounds', async () => {
    let checked = 0;
    for (const [template, item] of Object.entries<Json>(doc.paths)) {
      const op = item.get;
      if (!op?.parameters || template.startsWith('/t/')) continue;
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? name);
      const token = op.security.some((s: Json) => s.gatewayKey?.includes('proxy')) ? ids.key : ADMIN_TOKEN;
      const get = (query: string) => fetch(`${env.gw.url}${path}?${query}`, { headers: { authorization: `Bearer ${token}` } });
      for (const p of op.parameters.filter((p: Json) => p.in === 'query')) {
        const tries: [string, boolean][] = [];
        if (p.schema.type === 'integer') {
          if (p.schema.maximum !== undefined) tries.push([String(p.schema.maximum), true], [String(p.schema.maximum + 1), false]);
          if (p.schema.minimum !== undefined) tries.push([String(p.schema.minimum), true], [String(p.schema.minimum - 1), false]);
        }
        if (p.schema.enum) tries.push([String(p.schema.enum.at(-1)), true], ['not-a-value', false]);
        for (const [value, ok] of tries) {
          const res = await get(`${p.name}=${encodeURIComponent(value)}`);
          const text = await res.text();
          const label = `GET ${template}?${p.name}=${value}: ${text.slice(0, 200)}`;
          if (ok) expect(res.status, label).toBeLessThan(400);
          else {
            expect(res.status, label).toBe(400);
            expect(JSON.parse(text).error.param, label).toBe(p.name);
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});

describe('GET / (content negotiation)', () => {
  it('answers a browser with a small landing page linking the console and the docs, no outside assets', async () => {
    const res = await fetch(`${env.gw.url}/`, { headers: { accept: BROWSER_ACCEPT } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('vary')).toMatch(/accept/i);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('href="/dashboard"');
    expect(html).toContain('href="/docs"');
    expect(html).toContain('href="/openapi.json"');
    expect(html).toContain(VERSION);
    expect(html).not.toMatch(/<script|<link|src=|href="(https?:)?\/\//i);
  });

  it.each<[string | undefined, string]>([
    ['application/json', 'an API client'],
    ['*/*', 'curl'],
    [undefined, 'no Accept'],
    ['text/html;q=0.5, application/json', 'JSON preferred'],
    ['text/html;q=0, */*', 'HTML refused'],
  ])('answers %s (%s) with JSON: name, version, links', async (accept) => {
    const res = await fetch(`${env.gw.url}/`, { headers: accept ? { accept } : {} });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await res.json();
    expect(body).toMatchObject({
      name: 'Context Memory Gateway',
      version: VERSION,
      links: { docs: '/docs', openapi: '/openapi.json', dashboard: '/dashboard' },
    });
  });

  it('gives the page to text/html alone and to text/html preferred over JSON', async () => {
    for (const accept of ['text/html', 'application/json;q=0.5, text/html']) {
      const res = await fetch(`${env.gw.url}/`, { headers: { accept } });
      expect(res.headers.get('content-type'), accept).toMatch(/^text\/html/);
    }
  });
});

describe('GET /docs', () => {
  let html = '';
  beforeAll(async () => {
    const res = await fetch(`${env.gw.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    html = await res.text();
  });

  it('lists every route of the document, with its body fields', () => {
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      for (const method of Object.keys(item)) {
        expect(html, `${method} ${path}`).toMatch(
          new RegExp(
            `<span class="m ${method}">${method}</span> <span class="path">${path.replace(/[{}.?*+^$|()[\]\\/]/g, '\\$&')}</span>`,
          ),
        );
      }
    }
    expect(html).toContain('<code>messages</code>');
    expect(html).toContain('<code>previous_response_id</code>');
    expect(html).toContain('X-Thread-Id');
    expect(html).toContain('X-Memory-Max-Tokens');
  });

  it('links /openapi.json, and every link resolves: anchors to ids on the page, paths to pages the gateway serves', async () => {
    expect(html).toContain('href="/openapi.json"');
    expect(html).not.toMatch(/<script|<link|src=|href="(https?:)?\/\//i);
    const hrefs = [...new Set([...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]))];
    expect(hrefs.length).toBeGreaterThan(30);
    for (const href of hrefs) {
      if (href.startsWith('#')) {
        expect(html, href).toContain(`id="${href.slice(1)}"`);
      } else {
        expect(href.startsWith('/'), href).toBe(true);
        const res = await fetch(env.gw.url + href, { headers: { accept: BROWSER_ACCEPT } });
        expect(res.status, href).toBeLessThan(400);
        await res.body?.cancel();
      }
    }
  });
});
