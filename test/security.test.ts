import { beforeAll, describe, expect, it } from 'vitest';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

/**
 * One security suite over every protected route: no key, a malformed key, an unknown key, a
 * revoked key, a key without the scope, and another workspace's thread or item.
 */
const env = useProxyEnv();

interface Route {
  method: string;
  path: string;
  body?: unknown;
  /** Routes on a thread or item: another workspace must get 404. */
  owned?: boolean;
}

const T = 'sec-thread';
let itemId = '';
const routes = (): Route[] => [
  { method: 'POST', path: '/v1/chat/completions', body: { model: MODEL, messages: [user('hi')] } },
  { method: 'POST', path: `/t/${T}/v1/chat/completions`, body: { model: MODEL, messages: [user('hi')] } },
  { method: 'POST', path: '/v1/embeddings', body: { model: MODEL, input: 'hi' } },
  { method: 'GET', path: '/v1/models' },
  { method: 'GET', path: '/v1/threads' },
  { method: 'POST', path: '/v1/threads', body: { title: 'x' } },
  { method: 'GET', path: `/v1/threads/${T}`, owned: true },
  { method: 'PATCH', path: `/v1/threads/${T}`, body: { title: 'y' }, owned: true },
  { method: 'GET', path: `/v1/threads/${T}/items`, owned: true },
  { method: 'POST', path: `/v1/threads/${T}/items`, body: { kind: 'fact', content: 'x' }, owned: true },
  { method: 'PATCH', path: `/v1/threads/${T}/items/${itemId}`, body: { pinned: true }, owned: true },
  { method: 'POST', path: `/v1/threads/${T}/context`, body: { model: MODEL, messages: [user('hi')] }, owned: true },
  { method: 'DELETE', path: `/v1/threads/${T}/items/${itemId}`, owned: true },
  { method: 'DELETE', path: `/v1/threads/${T}`, owned: true },
];

const call = (r: Route, authorization?: string) =>
  fetch(env.gw.url + r.path, {
    method: r.method,
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: r.body ? JSON.stringify(r.body) : undefined,
  });

describe('security suite over every protected route', () => {
  let revoked: string;
  let reportsOnly: string;
  let other: string;

  beforeAll(async () => {
    const r = await env.gw.createKey();
    await env.gw.admin(`/admin/keys/${r.id}/revoke`, { method: 'POST' });
    revoked = r.key;
    reportsOnly = (await env.gw.createKey({ scopes: ['reports'] })).key;
    other = (await env.gw.createKey()).key;
    await env.post('/v1/threads', { id: T });
    const item = await (await env.post(`/v1/threads/${T}/items`, { kind: 'note', content: 'secret note' })).json();
    itemId = item.id;
  });

  it('refuses missing, malformed, unknown and revoked keys with an OpenAI-shaped 401', async () => {
    for (const r of routes()) {
      for (const auth of [undefined, 'Bearer', 'Bearer not-a-key', `Bearer cmg_${'x'.repeat(43)}`, `Bearer ${revoked}`]) {
        const res = await call(r, auth);
        expect(res.status, `${r.method} ${r.path} with ${auth?.slice(0, 12)}`).toBe(401);
        const body = await res.json();
        expect(body.error.code).toBe('invalid_api_key');
        expect(typeof body.error.type).toBe('string');
      }
    }
  });

  it('refuses a key without the proxy scope with 403', async () => {
    for (const r of routes()) {
      const res = await call(r, `Bearer ${reportsOnly}`);
      expect(res.status, `${r.method} ${r.path}`).toBe(403);
    }
  });

  it("answers 404 for another workspace's thread and item on every thread route, and changes nothing", async () => {
    for (const r of routes().filter((x) => x.owned)) {
      const res = await call(r, `Bearer ${other}`);
      expect(res.status, `${r.method} ${r.path}`).toBe(404);
      expect((await res.json()).error.code).toBe('not_found');
    }
    const mine = await (await fetch(`${env.gw.url}/v1/threads/${T}/items`, { headers: { authorization: `Bearer ${env.key}` } })).json();
    expect(mine.data.map((i: any) => [i.id, i.content, i.pinned])).toEqual([[itemId, 'secret note', true]]);
    const list = await (await fetch(`${env.gw.url}/v1/threads`, { headers: { authorization: `Bearer ${other}` } })).json();
    expect(list.data.map((t: any) => t.id)).not.toContain(T);
  });

  it('refuses the proxy key on admin and report routes', async () => {
    for (const [method, path] of [
      ['GET', '/admin/keys'],
      ['GET', '/admin/workspaces'],
      ['POST', '/admin/keys'],
    ]) {
      expect((await fetch(env.gw.url + path, { method, headers: { authorization: `Bearer ${env.key}` } })).status).toBe(401);
    }
    expect((await fetch(`${env.gw.url}/admin/usage`, { headers: { authorization: `Bearer ${env.key}` } })).status).toBe(403);
    expect((await fetch(`${env.gw.url}/admin/usage/requests`, { headers: { authorization: `Bearer ${env.key}` } })).status).toBe(403);
  });
});
