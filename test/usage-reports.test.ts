import { describe, expect, it } from 'vitest';
import { parseCsv } from './dashboard/csv.js';
import { dbKinds } from './helpers/databases.js';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

/** The ledger's columns beside which the reports put names. */
const RECORD_HEADER =
  'request_id,client_request_id,created_at,workspace_id,workspace_name,key_id,key_name,route,model_requested,model_served,model,thread_id,stream,status,http_status,error_code,prompt_tokens,completion_tokens,cached_tokens,reasoning_tokens,cost_usd,cost_source,estimated,latency_ms,ttfb_ms,generation_id,provider';

describe.each(dbKinds())('usage reports on %s', (kind) => {
  const env = useProxyEnv({ db: kind });

  const get = async (path: string, token = ADMIN_TOKEN) => {
    const res = await fetch(env.gw.url + path, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    return { status: res.status, res, text, json: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
  };
  const chat = (key: string, body: Record<string, unknown>) =>
    fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [user('hello')], ...body }),
    }).then((r) => r.text());

  /** A workspace with a key named `name`, and some traffic on it. */
  async function keyWithTraffic(name: string) {
    const { key, id, workspace } = await env.gw.createKey();
    expect((await env.gw.admin(`/admin/keys/${id}`, { method: 'PATCH', body: { name } })).status).toBe(200);
    await chat(key, {});
    await chat(key, { stream: true });
    await chat(key, { fake: { mode: 'error', status: 400 } });
    return { key, id, workspace };
  }

  it('per-request records carry the workspace and key names beside their ids, in JSON and CSV', async () => {
    const a = await keyWithTraffic(`app-${kind}`);
    const b = await keyWithTraffic(`app-${kind}`); // the same key name in another workspace
    await env.gw.deps.usage.flush();
    const range = `from=${today()}&to=${tomorrow()}`;
    const ws = await (await env.gw.admin('/admin/workspaces')).json();
    const wsId = (name: string) => ws.data.find((w: any) => w.name === name).id;

    for (const k of [a, b]) {
      const { json } = await get(`/admin/usage/requests?${range}&workspace=${k.workspace}`);
      expect(json.data).toHaveLength(3);
      for (const r of json.data) {
        expect(r).toMatchObject({ workspace_id: wsId(k.workspace), workspace_name: k.workspace, key_id: k.id, key_name: `app-${kind}` });
      }
      expect(Object.keys(json.data[0]).join(',')).toBe(RECORD_HEADER);
    }

    const csv = await get(`/admin/usage/requests?${range}&key=app-${kind}&format=csv`);
    expect(csv.res.headers.get('content-type')).toMatch(/text\/csv/);
    const { header, rows } = parseCsv(csv.text);
    expect(header.join(',')).toBe(RECORD_HEADER);
    expect(rows).toHaveLength(6);
    expect(new Set(rows.map((r) => `${r.workspace_name}/${r.workspace_id}/${r.key_name}/${r.key_id}`))).toEqual(
      new Set([`${a.workspace}/${wsId(a.workspace)}/app-${kind}/${a.id}`, `${b.workspace}/${wsId(b.workspace)}/app-${kind}/${b.id}`]),
    );
    // A renamed key shows its name as it is now.
    await env.gw.admin(`/admin/keys/${a.id}`, { method: 'PATCH', body: { name: `renamed-${kind}` } });
    const renamed = await get(`/admin/usage/requests?${range}&key=${a.id}`);
    expect(renamed.json.data.every((r: any) => r.key_name === `renamed-${kind}`)).toBe(true);
  });

  it('grouped by key, rows name the key and its workspace (key names repeat across workspaces)', async () => {
    const a = await keyWithTraffic('shared-name');
    const b = await keyWithTraffic('shared-name');
    await env.gw.deps.usage.flush();
    const range = `from=${today()}&to=${tomorrow()}&key=shared-name`;
    const q = `${range}&group_by=key`;
    const { json } = await get(`/admin/usage?${q}`);
    const byKey = new Map(json.data.map((r: any) => [r.key, r]));
    for (const k of [a, b]) {
      expect(byKey.get(k.id)).toMatchObject({
        key: k.id,
        key_name: 'shared-name',
        workspace: k.workspace,
        workspace_id: expect.stringMatching(/^ws_/),
        requests: 3,
        errors: 1,
      });
    }
    const csv = parseCsv((await get(`/admin/usage?${q}&format=csv`)).text);
    expect(csv.header.slice(0, 5)).toEqual(['key', 'key_name', 'workspace', 'workspace_id', 'requests']);
    expect(csv.rows.map((r) => r.workspace).sort()).toEqual([a.workspace, b.workspace].sort());
    // With workspace among the groups too, its columns are not repeated.
    const both = parseCsv((await get(`/admin/usage?${range}&group_by=workspace,key&format=csv`)).text);
    expect(both.header.slice(0, 5)).toEqual(['workspace', 'workspace_id', 'key', 'key_name', 'requests']);
  });

  it('filters records by status and route (lists too), and by period', async () => {
    const k = await keyWithTraffic('filters');
    await env.gw.deps.usage.flush();
    const base = `/admin/usage/requests?workspace=${k.workspace}`;
    expect((await get(`${base}&period=today&status=ok`)).json.data).toHaveLength(2);
    expect((await get(`${base}&period=today&status=upstream_error`)).json.data).toHaveLength(1);
    expect((await get(`${base}&period=today&status=ok,upstream_error`)).json.data).toHaveLength(3);
    expect((await get(`${base}&period=today&route=chat.completions`)).json.data).toHaveLength(3);
    expect((await get(`${base}&period=today&route=embeddings`)).json.data).toHaveLength(0);
    expect((await get(`${base}&period=yesterday`)).json.data).toHaveLength(0);
    const month = (await get(`/admin/usage?workspace=${k.workspace}&period=this_month&group_by=month`)).json;
    expect(month.from).toBe(`${today().slice(0, 8)}01`);
    expect(month.totals.requests).toBe(3);
    expect((await get(`/admin/usage?workspace=${k.workspace}&period=${today().slice(0, 7)}`)).json.totals.requests).toBe(3);
  });

  it("the key list shows every key's spend this period (its budget's, else the month)", async () => {
    const k = await keyWithTraffic('spender');
    await env.gw.deps.usage.flush();
    const records = (await get(`/admin/usage/requests?key=${k.id}&period=today`)).json.data;
    const cost = records.reduce((s: number, r: any) => s + Number(r.cost_usd), 0);
    expect(cost).toBeGreaterThan(0);
    const { data } = await (await env.gw.admin(`/admin/keys?workspace=${k.workspace}`)).json();
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ id: k.id, budget_usd: null, spend_period: 'month', spend_period_start: `${today().slice(0, 8)}01` });
    expect(Number(data[0].spend_usd)).toBeCloseTo(cost, 12);
    expect(data[0].budget_remaining_usd).toBeUndefined();
    // A key without usage this period has spent 0.
    const idle = await env.gw.createKey({ budget_usd: '5', budget_period: 'day' });
    const [listed] = (await (await env.gw.admin(`/admin/keys?workspace=${idle.workspace}`)).json()).data;
    expect(listed).toMatchObject({
      spend_period: 'day',
      spend_period_start: today(),
      spend_usd: '0',
      budget_period_start: today(),
      budget_remaining_usd: '5',
    });
  });

  it('refuses an unknown value of any report filter with a 400 naming the param and what it takes', async () => {
    const { key } = await env.gw.createKey({ scopes: ['proxy', 'reports'] });
    const cases: [string, string, RegExp][] = [
      ['/admin/usage/requests?status=bogus', 'status', /'ok', 'upstream_error', 'client_aborted', 'timeout', 'rejected', 'aborted'/],
      ['/admin/usage/requests?status=ok,bogus', 'status', /'bogus'/],
      ['/admin/usage/requests?route=chat', 'route', /'chat.completions', 'completions', 'responses', 'embeddings'/],
      ['/admin/usage?group_by=hour', 'group_by', /'day', 'week', 'month', 'workspace', 'key', 'model'/],
      [
        '/admin/usage?period=bogus',
        'period',
        /'today', 'yesterday', 'this_week', 'last_week', 'this_month', 'last_month', or a month as YYYY-MM/,
      ],
      ['/admin/usage/requests?period=2026-13', 'period', /'this_month'/],
      ['/admin/usage?period=today&from=2026-01-01', 'period', /one or the other/],
      ['/admin/usage?format=xml', 'format', /'json', 'csv'/],
      ['/admin/usage/requests?format=xlsx', 'format', /'json', 'csv'/],
      ['/admin/usage?from=2026-02-30', 'from', /YYYY-MM-DD/],
      ['/admin/usage/requests?to=tomorrow', 'to', /YYYY-MM-DD/],
      ['/admin/usage/requests?limit=0', 'limit', /1 to 1000/],
      ['/admin/usage/requests?limit=1e2', 'limit', /1 to 1000/],
      ['/admin/usage?status=ok', 'status', /\/admin\/usage\/requests only/],
      ['/admin/usage?route=responses', 'route', /\/admin\/usage\/requests only/],
      ['/admin/usage/latency?period=bogus', 'period', /'this_month'/],
      ['/admin/usage/errors?from=2026-13-01', 'from', /YYYY-MM-DD/],
    ];
    for (const token of [ADMIN_TOKEN, key]) {
      for (const [path, param, allowed] of cases) {
        const res = await get(path, token);
        expect(res.status, path).toBe(400);
        expect(res.json.error, path).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param });
        expect(res.json.error.message, path).toMatch(allowed);
      }
    }
    // Unknown names are not found (404), never an empty report.
    for (const path of [
      '/admin/usage?key=no-such-key',
      '/admin/usage/requests?key=no-such-key',
      '/admin/usage/requests?workspace=no-such-ws',
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.json.error.param, path).toBe(path.includes('key=') ? 'key' : 'workspace');
    }
  });
});
