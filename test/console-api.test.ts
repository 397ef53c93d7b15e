import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it, beforeAll } from 'vitest';
import { CONSOLE_SCRIPTS } from '../src/routes/dashboard.js';
import { insertUsageBatch } from '../src/usage/ledger-store.js';
import { dbKinds } from './helpers/databases.js';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';
import { usageRecord } from './helpers/usage-fixtures.js';

/**
 * The JSON the console reads beyond the existing admin and report APIs: latency and errors
 * reports (workspace-scoped for `reports` keys), the thread API for operators under
 * /admin/workspaces/{ws}/threads, and cookie sessions on /admin/* (admin only, CSRF-checked).
 */
const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

describe('the console’s assets', () => {
  it('serves every module the client imports, and the build ships them all', () => {
    const dir = new URL('../src/routes/dashboard/', import.meta.url);
    for (const file of CONSOLE_SCRIPTS) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      for (const [, imported] of text.matchAll(/(?:from|import\()\s*'\.\/([\w-]+\.js)'/g)) {
        expect(CONSOLE_SCRIPTS, `${file} imports ${imported}`).toContain(imported);
      }
    }
    // The test run's global setup built dist/ (what npm start runs).
    for (const file of [...CONSOLE_SCRIPTS, 'app.css']) {
      expect(existsSync(new URL(`../dist/routes/dashboard/${file}`, import.meta.url)), file).toBe(true);
    }
  });
});

for (const kind of dbKinds()) {
  describe(`console APIs (${kind})`, () => {
    const env = useProxyEnv({ db: kind });
    let a: { key: string; id: string; workspace: string; workspaceId: string };
    let b: { key: string; id: string; workspace: string; workspaceId: string };
    let reportsA: string;

    const get = (path: string, auth?: string, headers: Record<string, string> = {}) =>
      fetch(env.gw.url + path, { headers: { ...(auth ? { authorization: auth } : {}), ...headers } });

    beforeAll(async () => {
      const make = async (name: string) => {
        const k = await env.gw.createKey({ name });
        const ws = (await (await env.gw.admin('/admin/workspaces')).json()).data.find((w: { name: string }) => w.name === k.workspace);
        return { ...k, workspaceId: ws.id as string };
      };
      a = await make('app-a');
      b = await make('app-b');
      const r = await env.gw.admin('/admin/keys', { body: { workspace: a.workspace, name: 'finance-a', scopes: ['reports'] } });
      reportsA = (await r.json()).key;
      const at = new Date().toISOString();
      const rec = (over: Parameters<typeof usageRecord>[0]) => usageRecord({ createdAt: at, ...over });
      // Workspace A: model m1 answers in 100..1000 ms (p50 550, p95 955), two failures; B: one slow model.
      const records = [
        ...Array.from({ length: 10 }, (_, i) =>
          rec({ workspaceId: a.workspaceId, keyId: a.id, model: 'm1', latencyMs: (i + 1) * 100, ttfbMs: (i + 1) * 10 }),
        ),
        rec({
          workspaceId: a.workspaceId,
          keyId: a.id,
          model: 'm1',
          status: 'upstream_error',
          httpStatus: 502,
          errorCode: 'upstream_error',
          latencyMs: 5,
        }),
        rec({
          workspaceId: a.workspaceId,
          keyId: a.id,
          model: 'broken/model',
          status: 'upstream_error',
          httpStatus: 400,
          errorCode: 'model_not_found',
          latencyMs: 3,
        }),
        rec({
          workspaceId: a.workspaceId,
          keyId: a.id,
          model: 'broken/model',
          status: 'upstream_error',
          httpStatus: 400,
          errorCode: 'model_not_found',
          latencyMs: 4,
        }),
        rec({
          workspaceId: b.workspaceId,
          keyId: b.id,
          model: 'm-b',
          latencyMs: 9000,
          status: 'timeout',
          httpStatus: 504,
          errorCode: 'upstream_timeout',
        }),
      ];
      expect(await insertUsageBatch(env.database.db, records)).toBe(records.length);
    });

    it('reports latency percentiles per model over ok requests, and errors by status and code', async () => {
      const q = `from=${today()}&to=${tomorrow()}&workspace=${a.workspace}`;
      const latency = await (await get(`/admin/usage/latency?${q}`, `Bearer ${ADMIN_TOKEN}`)).json();
      const m1 = latency.data.find((r: { model: string }) => r.model === 'm1');
      expect(m1).toEqual({ model: 'm1', requests: 11, ok_requests: 10, p50_ms: 550, p95_ms: 955, ttfb_p50_ms: 55, ttfb_p95_ms: 95.5 });
      const broken = latency.data.find((r: { model: string }) => r.model === 'broken/model');
      expect(broken).toMatchObject({ requests: 2, ok_requests: 0, p50_ms: null, p95_ms: null });
      expect(latency.data.map((r: { model: string }) => r.model)).not.toContain('m-b');

      const errors = await (await get(`/admin/usage/errors?${q}`, `Bearer ${ADMIN_TOKEN}`)).json();
      expect(errors.total).toBe(3);
      expect(errors.data.map((r: Record<string, unknown>) => [r.status, r.http_status, r.error_code, r.requests, r.models])).toEqual([
        ['upstream_error', 400, 'model_not_found', 2, 1],
        ['upstream_error', 502, 'upstream_error', 1, 1],
      ]);
      const inB = await (
        await get(`/admin/usage/errors?from=${today()}&to=${tomorrow()}&workspace=${b.workspace}`, `Bearer ${ADMIN_TOKEN}`)
      ).json();
      expect(inB.total).toBe(1);
      // Unfiltered, an admin sees every workspace's (other test files share this database: at least these 4).
      const all = await (await get(`/admin/usage/errors?from=${today()}&to=${tomorrow()}`, `Bearer ${ADMIN_TOKEN}`)).json();
      expect(all.total).toBeGreaterThanOrEqual(4);
    });

    it('scopes latency and errors to a reports key’s workspace, and refuses others', async () => {
      const q = `from=${today()}&to=${tomorrow()}`;
      const errors = await (await get(`/admin/usage/errors?${q}`, `Bearer ${reportsA}`)).json();
      expect(errors.total).toBe(3);
      expect(errors.data.map((r: { error_code: string }) => r.error_code)).not.toContain('upstream_timeout');
      const latency = await (await get(`/admin/usage/latency?${q}`, `Bearer ${reportsA}`)).json();
      expect(latency.data.map((r: { model: string }) => r.model).sort()).toEqual(['broken/model', 'm1']);
      for (const path of ['/admin/usage/latency', '/admin/usage/errors']) {
        expect((await get(`${path}?${q}&workspace=${b.workspace}`, `Bearer ${reportsA}`)).status).toBe(404);
        expect((await get(`${path}?${q}`)).status).toBe(401);
        expect((await get(`${path}?${q}`, `Bearer ${a.key}`)).status).toBe(403); // proxy-only key
        expect((await get(`${path}?from=nope`, `Bearer ${ADMIN_TOKEN}`)).status).toBe(400);
      }
    });

    it('serves the thread API to operators per workspace: list, items, dry run, delete', async () => {
      const chat = await fetch(`${env.gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json', 'x-thread-id': 'ops-thread' },
        body: JSON.stringify({ model: MODEL, messages: [user('remember the code word: pelican')] }),
      });
      expect(chat.status).toBe(200);
      await chat.text();
      await env.gw.deps.memory.flush();
      const base = `/admin/workspaces/${a.workspace}/threads`;
      const admin = `Bearer ${ADMIN_TOKEN}`;
      let items: { data: { role: string; content: unknown }[] } = { data: [] };
      for (let i = 0; i < 50 && items.data.length < 2; i++) {
        items = await (await get(`${base}/ops-thread/items`, admin)).json();
        if (items.data.length < 2) await new Promise((r) => setTimeout(r, 20));
      }
      expect(items.data.map((i) => i.role)).toEqual(['user', 'assistant']);
      const list = await (await get(base, admin)).json();
      expect(list.data.map((t: { id: string }) => t.id)).toEqual(['ops-thread']);
      // By id too; another workspace has no such thread; an unknown workspace is a 404 naming it.
      expect((await get(`/admin/workspaces/${a.workspaceId}/threads/ops-thread`, admin)).status).toBe(200);
      expect((await get(`/admin/workspaces/${b.workspace}/threads/ops-thread`, admin)).status).toBe(404);
      const unknown = await get('/admin/workspaces/no-such-ws/threads', admin);
      expect(unknown.status).toBe(404);
      expect((await unknown.json()).error.param).toBe('workspace');

      const dry = await fetch(`${env.gw.url}${base}/ops-thread/context`, {
        method: 'POST',
        headers: { authorization: admin, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [user('what was the code word?')] }),
      });
      expect(dry.status).toBe(200);
      const plan = await dry.json();
      expect(plan.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user']);
      expect(JSON.stringify(plan.messages[0].content)).toContain('pelican');
      expect(plan.injected_items).toBe(2);

      // Neither a key (any scope) nor no auth gets at the operators' thread routes.
      for (const auth of [undefined, `Bearer ${a.key}`, `Bearer ${reportsA}`]) {
        expect((await get(base, auth)).status).toBe(401);
      }
      const del = await fetch(`${env.gw.url}${base}/ops-thread`, { method: 'DELETE', headers: { authorization: admin } });
      expect(del.status).toBe(200);
      expect((await get(`${base}/ops-thread`, admin)).status).toBe(404);
    });

    describe('cookie sessions on /admin/*', () => {
      async function session(token: string): Promise<{ cookie: string; csrf: string }> {
        const res = await fetch(`${env.gw.url}/dashboard/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token }),
          redirect: 'manual',
        });
        expect(res.status).toBe(303);
        const cookie = res.headers.get('set-cookie')!.split(';')[0];
        const page = await (await fetch(`${env.gw.url}/dashboard`, { headers: { cookie } })).text();
        const csrf = /<meta name="csrf-token" content="([^"]*)"/.exec(page)?.[1] ?? '';
        return { cookie, csrf };
      }
      const post = (path: string, headers: Record<string, string>, body: unknown) =>
        fetch(env.gw.url + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        });

      it('lets an admin session read, and change only with its CSRF token from this origin', async () => {
        const { cookie, csrf } = await session(ADMIN_TOKEN);
        expect(csrf).toMatch(/^[A-Za-z0-9_-]{40,}$/);
        expect((await get('/admin/keys', undefined, { cookie })).status).toBe(200);
        expect((await get(`/admin/workspaces/${a.workspace}/threads`, undefined, { cookie })).status).toBe(200);
        const refused = [
          await post('/admin/workspaces', { cookie }, { name: 'no-csrf' }),
          await post('/admin/workspaces', { cookie, 'x-csrf-token': 'x'.repeat(43) }, { name: 'wrong-csrf' }),
          await post('/admin/workspaces', { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' }, { name: 'cross-site' }),
          await post('/admin/workspaces', { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'same-site' }, { name: 'same-site' }),
        ];
        for (const res of refused) {
          expect(res.status).toBe(403);
          expect((await res.json()).error.code).toBe('permission_denied');
        }
        const names = (await (await env.gw.admin('/admin/workspaces')).json()).data.map((w: { name: string }) => w.name);
        expect(names).not.toEqual(expect.arrayContaining(['no-csrf']));
        expect(names.some((n: string) => /csrf|site/.test(n))).toBe(false);
        const ok = await post(
          '/admin/workspaces',
          { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin' },
          { name: 'made-by-session' },
        );
        expect(ok.status).toBe(201);
        // Another session's token does not fit this one.
        const other = await session(ADMIN_TOKEN);
        await new Promise((r) => setTimeout(r, 5));
        const third = await session(ADMIN_TOKEN);
        expect(third.csrf).not.toBe(other.csrf);
        expect((await post('/admin/workspaces', { cookie: third.cookie, 'x-csrf-token': other.csrf }, { name: 'swapped' })).status).toBe(
          403,
        );
      });

      it('refuses a reports key’s session on every admin route but usage, and a forged or expired cookie', async () => {
        const { cookie, csrf } = await session(reportsA);
        expect((await get(`/admin/usage?from=${today()}&to=${tomorrow()}`, undefined, { cookie })).status).toBe(200);
        expect((await get(`/admin/usage/errors?from=${today()}&to=${tomorrow()}`, undefined, { cookie })).status).toBe(200);
        for (const path of ['/admin/keys', '/admin/workspaces', `/admin/workspaces/${a.workspace}/threads`]) {
          const res = await get(path, undefined, { cookie });
          expect(res.status, path).toBe(403);
        }
        expect((await post('/admin/keys', { cookie, 'x-csrf-token': csrf }, { workspace: a.workspace, name: 'sneaky' })).status).toBe(403);
        expect((await post(`/admin/keys/${a.id}/revoke`, { cookie, 'x-csrf-token': csrf }, {})).status).toBe(403);
        const admin = await session(ADMIN_TOKEN);
        const [payload, signature] = admin.cookie.split('=')[1].split('.');
        const forged = Buffer.from(JSON.stringify({ kind: 'admin', exp: Date.now() + 3_600_000 })).toString('base64url');
        for (const bad of [`${forged}.${signature}`, `${payload}.${'A'.repeat(signature.length)}`, 'garbage']) {
          expect((await get('/admin/keys', undefined, { cookie: `cmg_dashboard=${bad}` })).status).toBe(401);
        }
        const deps = env.gw.deps;
        const real = deps.now;
        try {
          deps.now = () => real() + 13 * 3_600_000; // past the 12-hour session
          expect((await get('/admin/keys', undefined, { cookie: admin.cookie })).status).toBe(401);
        } finally {
          deps.now = real;
        }
      });
    });
  });
}
