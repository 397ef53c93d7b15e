import { describe, expect, it } from 'vitest';
import { RAW_CLIENT } from '../src/db/client.js';
import { insertUsageBatch } from '../src/usage/ledger-store.js';
import type { UsageRecord } from '../src/usage/usage-record.js';
import { expectedUsage } from './fake-openrouter/server.js';
import { dbKinds } from './helpers/databases.js';
import { useProxyEnv } from './helpers/proxy-env.js';
import { ADMIN_TOKEN, eventually } from './helpers/gateway.js';
import { usageRecord } from './helpers/usage-fixtures.js';
import { MODEL, user } from './helpers/proxy-env.js';

const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

describe.each(dbKinds())('usage ledger on %s', (kind) => {
  const env = useProxyEnv({ db: kind });

  const post = (key: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
  const report = async (query: string, token = ADMIN_TOKEN) => {
    const res = await fetch(`${env.gw.url}/admin/usage?${query}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text(), res };
  };

  it('writes one record per request with the upstream figures, and rollups that match', async () => {
    const { key, workspace } = await env.gw.createKey();
    const bodies = [
      { model: MODEL, messages: [user('first one')] },
      { model: MODEL, stream: true, messages: [user('second one here')] },
      { model: 'anthropic/claude-3.5-haiku', messages: [user('third')] },
    ];
    for (const b of bodies) {
      const res = await post(key, b);
      await res.text();
    }
    await (await post(key, { model: MODEL, messages: [user('x')], fake: { mode: 'error', status: 400 } })).text();
    await env.gw.deps.usage.flush();
    const records = await fetch(`${env.gw.url}/admin/usage/requests?workspace=${workspace}&from=${today()}&to=${tomorrow()}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json());
    expect(records.data).toHaveLength(4);
    const ok = records.data.filter((r: any) => r.status === 'ok');
    expect(ok).toHaveLength(3);
    const expectedCost = bodies.map((b) => expectedUsage(b).cost);
    expect(ok.map((r: any) => Number(r.cost_usd)).sort()).toEqual(expectedCost.sort());
    expect(ok.every((r: any) => r.cost_source === 'upstream' && r.estimated === false)).toBe(true);
    const failed = records.data.find((r: any) => r.status === 'upstream_error');
    expect(failed).toMatchObject({ http_status: 400, prompt_tokens: 0, cost_usd: '0' });

    const { body } = await report(`from=${today()}&to=${tomorrow()}&group_by=model&workspace=${workspace}`);
    expect(body.data.map((r: any) => r.model).sort()).toEqual(['anthropic/claude-3.5-haiku', MODEL].sort());
    expect(body.totals.requests).toBe(4);
    expect(body.totals.errors).toBe(1);
    const promptSum = records.data.reduce((s: number, r: any) => s + r.prompt_tokens, 0);
    expect(body.totals.prompt_tokens).toBe(promptSum);
  });

  it('is idempotent on request_id, rollups included', async () => {
    const { workspace } = await env.gw.createKey();
    const ws = await env.gw.deps.keys.findWorkspace(workspace);
    const record = usageRecord({
      requestId: `req_idem_${kind}_${Date.now()}`,
      workspaceId: ws!.id,
      keyId: 'key_idem',
      model: 'm/idem',
      costUsd: '0.0000001234',
    });
    expect(await insertUsageBatch(env.database.db, [record, record])).toBe(1);
    expect(await insertUsageBatch(env.database.db, [record])).toBe(0);
    const { body } = await report(`from=${today()}&to=${tomorrow()}&group_by=model&model=m/idem&workspace=${workspace}`);
    expect(body.data).toEqual([
      {
        model: 'm/idem',
        requests: 1,
        errors: 0,
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_usd: '0.0000001234',
        unpriced_requests: 0,
        unpriced_tokens: 0,
      },
    ]);
  });

  if (kind === 'postgres') {
    it('a finished insert leaves postgres.js no parameters to hold (they would be promoted to old space)', async () => {
      const { workspace } = await env.gw.createKey();
      const ws = await env.gw.deps.keys.findWorkspace(workspace);
      // The driver under the gateway's deadline wrapper (db/client.ts), where the ledger runs its insert.
      const bounded = (env.database.db as unknown as { $client: Record<symbol, { client: { unsafe: (...args: unknown[]) => unknown } }> })
        .$client;
      const client = bounded[RAW_CLIENT].client;
      const original = client.unsafe;
      const queries: { args?: unknown; parameters?: unknown }[] = [];
      client.unsafe = (...args: unknown[]) => {
        const query = original.apply(client, args) as { args?: unknown; parameters?: unknown };
        queries.push(query);
        return query;
      };
      const record = usageRecord({
        requestId: `req_release_${Date.now()}`,
        workspaceId: ws!.id,
        keyId: 'key_release',
        model: 'm/release',
        promptTokens: 1,
        completionTokens: 1,
        costSource: 'none',
        ttfbMs: null,
      });
      try {
        expect(await insertUsageBatch(env.database.db, [record])).toBe(1);
      } finally {
        client.unsafe = original;
      }
      expect(queries).toHaveLength(1);
      expect(queries[0].args).toBeNull();
      expect(queries[0].parameters).toBeNull();
    });
  }

  it('stores awkward values exactly, whatever the batch size (one array parameter per column)', async () => {
    const { workspace } = await env.gw.createKey();
    const ws = await env.gw.deps.keys.findWorkspace(workspace);
    const awkward = ['quote " and \\ backslash', '{braces},comma', 'NULL', '', 'ünïcödé 🚀 text'];
    const base = Date.now();
    const records: UsageRecord[] = awkward.map((text, i) => ({
      requestId: `req_awk_${kind}_${base}_${i}`,
      createdAt: new Date(base - i * 1000).toISOString(),
      workspaceId: ws!.id,
      keyId: 'key_awk',
      route: 'chat.completions',
      modelRequested: i === 1 ? null : `m/${text}`,
      modelServed: null,
      model: `m/awkward-${i}`, // plain: other tests read reports with a naive CSV split
      threadId: i === 2 ? 'thread-awk' : null,
      stream: i % 2 === 0,
      status: i === 3 ? 'upstream_error' : 'ok',
      httpStatus: i === 3 ? 502 : 200,
      errorCode: i === 3 ? text : null,
      promptTokens: 1000 + i,
      completionTokens: i,
      cachedTokens: i === 4 ? 7 : 0,
      reasoningTokens: 0,
      costUsd: i === 0 ? '123456.0000000001' : `0.00000000${i}`,
      costSource: 'upstream',
      estimated: false,
      latencyMs: 12.5 + i,
      ttfbMs: i === 0 ? null : 3.25,
      generationId: text,
      provider: i === 4 ? null : text,
    }));
    expect(await insertUsageBatch(env.database.db, records)).toBe(records.length);
    const res = await fetch(`${env.gw.url}/admin/usage/requests?workspace=${workspace}&from=${today()}&to=${tomorrow()}&limit=100`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json());
    const byId = new Map<string, any>(res.data.map((r: any) => [r.request_id, r]));
    for (const r of records) {
      const got = byId.get(r.requestId);
      expect(got, r.requestId).toMatchObject({
        model: r.model,
        model_requested: r.modelRequested,
        thread_id: r.threadId,
        stream: r.stream,
        status: r.status,
        http_status: r.httpStatus,
        error_code: r.errorCode,
        prompt_tokens: r.promptTokens,
        cached_tokens: r.cachedTokens,
        cost_usd: r.costUsd,
        estimated: r.estimated,
        generation_id: r.generationId,
        provider: r.provider,
      });
      expect(new Date(got.created_at).toISOString()).toBe(r.createdAt);
    }
  });

  it('records an abandoned stream with estimated tokens from a real tokenizer', async () => {
    const { key } = await env.gw.createKey();
    const controller = new AbortController();
    const res = await post(
      key,
      { model: MODEL, stream: true, messages: [user('a b c d e f g h i j k l')], fake: { mode: 'slow', delayMs: 200 } },
      controller.signal,
    );
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('You ')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    await eventually(() => env.gw.outcomes.some((o) => o.keyId && o.status === 'client_aborted'));
    await env.gw.deps.usage.flush();
    const rows = await fetch(`${env.gw.url}/admin/usage/requests?status=client_aborted&from=${today()}&to=${tomorrow()}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json());
    const row = rows.data[0];
    expect(row).toMatchObject({ status: 'client_aborted', estimated: true, cost_source: 'catalog' });
    expect(row.prompt_tokens).toBeGreaterThan(10);
    expect(row.completion_tokens).toBeGreaterThanOrEqual(1);
    expect(Number(row.cost_usd)).toBeGreaterThan(0);
  });

  it('enforces a budget: 429 insufficient_quota once spent, recorded as rejected', async () => {
    const { key, id } = await env.gw.createKey({ budget_usd: '0.000005', budget_period: 'day' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await post(key, { model: MODEL, messages: [user('spend some money please')] });
      statuses.push(res.status);
      const body = await res.json();
      if (res.status === 429) {
        expect(body.error).toMatchObject({ code: 'insufficient_quota', type: 'insufficient_quota' });
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    }
    expect(statuses[0]).toBe(200);
    expect(statuses).toContain(429);
    expect(statuses.slice(statuses.indexOf(429)).every((s) => s === 429)).toBe(true);
    await env.gw.deps.usage.flush();
    const rows = await fetch(`${env.gw.url}/admin/usage/requests?key=${id}&from=${today()}&to=${tomorrow()}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json());
    expect(rows.data).toHaveLength(4);
    const rejected = rows.data.filter((r: any) => r.status === 'rejected');
    expect(rejected.length).toBe(statuses.filter((s) => s === 429).length);
    expect(rejected.every((r: any) => r.prompt_tokens === 0 && r.cost_usd === '0' && r.http_status === 429)).toBe(true);
    // The key list shows this period's spend and what is left of the budget.
    const keys = await (await env.gw.admin('/admin/keys')).json();
    const listed = keys.data.find((k: any) => k.id === id);
    const spent = rows.data.reduce((s: number, r: any) => s + Number(r.cost_usd), 0);
    expect(Number(listed.spend_usd)).toBeCloseTo(spent, 12);
    expect(listed.budget_remaining_usd).toBe('0');
    expect(listed.budget_period_start).toBe(new Date().toISOString().slice(0, 10));
    // Keys without a budget show this month's spend, and no budget left.
    const plain = keys.data.find((k: any) => k.budget_usd === null);
    expect(plain).toMatchObject({
      spend_period: 'month',
      spend_period_start: `${new Date().toISOString().slice(0, 8)}01`,
      spend_usd: expect.stringMatching(/^\d+(\.\d+)?$/),
    });
    expect(plain.budget_remaining_usd).toBeUndefined();
    expect(listed).toMatchObject({ spend_period: 'day', spend_period_start: listed.budget_period_start });
  });

  it('serves reports to reports keys for their own workspace only; other keys get 403', async () => {
    const a = await env.gw.createKey({ scopes: ['proxy', 'reports'] });
    const b = await env.gw.createKey();
    await (await post(a.key, { model: MODEL, messages: [user('from a')] })).text();
    await (await post(b.key, { model: MODEL, messages: [user('from b')] })).text();
    await env.gw.deps.usage.flush();
    const mine = await report(`from=${today()}&to=${tomorrow()}&group_by=workspace`, a.key);
    expect(mine.status).toBe(200);
    expect(mine.body.data.map((r: any) => r.workspace)).toEqual([a.workspace]);
    const other = await report(`from=${today()}&to=${tomorrow()}&workspace=${b.workspace}`, a.key);
    expect(other.status).toBe(404);
    const forbidden = await report(`from=${today()}&to=${tomorrow()}`, b.key);
    expect(forbidden.status).toBe(403);
    expect((await report(`from=${today()}&to=${tomorrow()}`, 'cmg_nope')).status).toBe(401);
  });

  it('answers CSV with the same totals as JSON, and validates parameters', async () => {
    // Its own workspace: on Postgres other test files write today's records at the same time.
    const { key, workspace } = await env.gw.createKey();
    for (const model of [MODEL, MODEL, 'anthropic/claude-3.5-haiku']) await (await post(key, { model, messages: [user('csv')] })).text();
    await env.gw.deps.usage.flush();
    const q = `from=${today()}&to=${tomorrow()}&group_by=day,key,model&workspace=${workspace}`;
    const json = (await report(q)).body;
    const csv = await report(`${q}&format=csv`);
    expect(csv.res.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = (csv.body as string).trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'day,key,key_name,workspace,workspace_id,model,requests,errors,prompt_tokens,completion_tokens,cost_usd,unpriced_requests,unpriced_tokens',
    );
    expect(lines).toHaveLength(json.data.length + 1);
    const requests = lines.slice(1).reduce((s, l) => s + Number(l.split(',')[6]), 0);
    expect(requests).toBe(json.totals.requests);
    // Weeks and months are the same records regrouped: their totals match the day grouping.
    for (const group of ['week', 'month']) {
      const regrouped = (await report(`from=${today()}&to=${tomorrow()}&group_by=${group}&workspace=${workspace}`)).body;
      expect(regrouped.data).toHaveLength(1);
      expect(regrouped.data[0][group]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(regrouped.totals).toEqual(json.totals);
    }
    expect((await report('from=2026-13-01')).status).toBe(400);
    expect((await report('group_by=hour')).body.error.param).toBe('group_by');
    expect((await report(`from=${tomorrow()}&to=${today()}`)).status).toBe(400);
  });

  it('pages raw records newest first by cursor without gaps or repeats', async () => {
    const { key, workspace } = await env.gw.createKey();
    for (let i = 0; i < 7; i++) await (await post(key, { model: MODEL, messages: [user(`n${i}`)] })).text();
    await env.gw.deps.usage.flush();
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: any = await fetch(
        `${env.gw.url}/admin/usage/requests?workspace=${workspace}&from=${today()}&to=${tomorrow()}&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        },
      ).then((r) => r.json());
      seen.push(...res.data.map((r: any) => r.request_id));
      cursor = res.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
  });
});
