import { describe, expect, it } from 'vitest';
import { apiKeys } from '../src/db/schema/index.js';
import { hashKey } from '../src/keys/key-material.js';
import { startFakeOpenRouter } from './fake-openrouter/server.js';
import { dbKinds, openTestDatabase } from './helpers/databases.js';
import { useProxyEnv } from './helpers/proxy-env.js';
import { ADMIN_TOKEN, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { eq } from 'drizzle-orm';

const chat = (gw: TestGateway, key: string) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });

describe.each(dbKinds())('workspaces and keys on %s', (kind) => {
  const env = useProxyEnv({ db: kind });

  it('creates a key shown once, stores only its SHA-256, and the key works', async () => {
    const { key, id } = await env.gw.createKey({ rpm: 600 });
    expect(key).toMatch(/^cmg_[A-Za-z0-9_-]{43}$/);
    const [row] = await env.database.db.select().from(apiKeys).where(eq(apiKeys.id, id));
    expect(row.keyHash).toBe(hashKey(key));
    expect(JSON.stringify(row)).not.toContain(key);
    expect(row.rpm).toBe(600);

    const list = await (await env.gw.admin('/admin/keys')).json();
    const listed = list.data.find((k: any) => k.id === id);
    expect(listed.prefix).toBe(key.slice(0, 10));
    expect(JSON.stringify(list)).not.toContain(key);
    expect(JSON.stringify(list)).not.toContain(row.keyHash);

    expect((await chat(env.gw, key)).status).toBe(200);
  });

  it('refuses a revoked key at once on the instance that revoked it', async () => {
    const { key, id } = await env.gw.createKey();
    expect((await chat(env.gw, key)).status).toBe(200); // now cached
    const revoked = await env.gw.admin(`/admin/keys/${id}/revoke`, { method: 'POST' });
    expect(revoked.status).toBe(200);
    expect((await revoked.json()).revoked_at).toBeTruthy();
    const res = await chat(env.gw, key);
    expect(res.status).toBe(401);
    expect((await res.json()).error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
  });

  it('refuses an expired key, and a patched expiry takes effect at once', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const { key: expired } = await env.gw.createKey({ expires_at: past });
    const res = await chat(env.gw, expired);
    expect(res.status).toBe(401);
    expect((await res.json()).error.message).toMatch(/expired/);

    const { key, id } = await env.gw.createKey();
    expect((await chat(env.gw, key)).status).toBe(200);
    expect((await env.gw.admin(`/admin/keys/${id}`, { method: 'PATCH', body: { expires_at: past } })).status).toBe(200);
    expect((await chat(env.gw, key)).status).toBe(401);
  });

  it('accepts only documented fields (no mass assignment) and validates values', async () => {
    const ws = `mass-${Date.now()}`;
    await env.gw.admin('/admin/workspaces', { body: { name: ws } });
    const sneaky = await env.gw.admin('/admin/keys', { body: { workspace: ws, name: 'x', key_hash: 'abc', revoked_at: null } });
    expect(sneaky.status).toBe(400);
    expect((await sneaky.json()).error.message).toMatch(/Unknown field/);
    const badScope = await env.gw.admin('/admin/keys', { body: { workspace: ws, name: 'x', scopes: ['root'] } });
    expect(badScope.status).toBe(400);
    expect((await badScope.json()).error.param).toBe('scopes.0');
    const noWs = await env.gw.admin('/admin/keys', { body: { workspace: 'nope-does-not-exist', name: 'x' } });
    expect(noWs.status).toBe(404);
    const dup = await env.gw.admin('/admin/workspaces', { body: { name: ws } });
    expect(dup.status).toBe(409);
  });

  it('lists workspaces and filters keys by workspace name', async () => {
    const a = await env.gw.createKey();
    await env.gw.createKey();
    const list = await (await env.gw.admin(`/admin/keys?workspace=${a.workspace}`)).json();
    expect(list.data.map((k: any) => k.id)).toEqual([a.id]);
    const wss = await (await env.gw.admin('/admin/workspaces')).json();
    expect(wss.data.some((w: any) => w.name === a.workspace)).toBe(true);
  });

  it('requires the admin token on every admin route', async () => {
    for (const [method, path] of [
      ['GET', '/admin/keys'],
      ['POST', '/admin/keys'],
      ['GET', '/admin/workspaces'],
      ['POST', '/admin/workspaces'],
      ['PATCH', '/admin/keys/key_x'],
      ['POST', '/admin/keys/key_x/revoke'],
    ]) {
      for (const auth of [undefined, 'Bearer wrong-token-0000000000', `Basic ${ADMIN_TOKEN}`]) {
        const res = await fetch(env.gw.url + path, { method, headers: auth ? { authorization: auth } : {} });
        expect(res.status, `${method} ${path} ${auth}`).toBe(401);
        const body = await res.json();
        expect(typeof body.error.code).toBe('string');
      }
    }
    // A gateway key is not an admin token.
    const { key } = await env.gw.createKey();
    expect((await fetch(env.gw.url + '/admin/keys', { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
  });
});

describe('admin routes without ADMIN_TOKEN', () => {
  it('answer 503 admin_disabled', async () => {
    const fake = await startFakeOpenRouter();
    const database = await openTestDatabase('pglite');
    const gw = await startTestGateway({ database, upstreamUrl: fake.baseUrl, config: { adminToken: undefined } });
    try {
      const res = await fetch(gw.url + '/admin/keys', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe('admin_disabled');
    } finally {
      await gw.close();
      await database.close();
      await fake.close();
    }
  });
});
