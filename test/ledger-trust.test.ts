import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import type { UsageRecord } from '../src/usage/usage-record.js';
import { expectedUsage } from './fake-openrouter/server.js';
import { dbKinds } from './helpers/databases.js';
import { ADMIN_TOKEN, startTestGateway } from './helpers/gateway.js';
import { usageRecord } from './helpers/usage-fixtures.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);

describe.each(dbKinds())('a ledger hostile input cannot break, on %s', (kind) => {
  const env = useProxyEnv({ db: kind, config: { maxBodyBytes: 8_192 } });

  const send = (key: string, body: unknown, headers: Record<string, string> = {}, path = '/v1/chat/completions') =>
    fetch(env.gw.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const recordsOf = async (keyId: string) =>
    rowsOf(await env.database.db.execute(sql`select * from usage_records where key_id = ${keyId} order by created_at, request_id`));
  const flushAll = async () => {
    await env.gw.deps.usage.flush(10_000);
    await env.gw.deps.memory.flush(10_000);
  };

  it('one NUL byte (in the model, in a message name) stops nobody: every record and memory write lands', async () => {
    const { key, id } = await env.gw.createKey();
    // The poison first: a model id with a NUL (the upstream refuses it) and a message name with one.
    const poisoned = await send(key, { model: `${MODEL}\u0000x`, messages: [user('a')] });
    expect(poisoned.status).toBe(404); // model_not_found, from the upstream
    await poisoned.text();
    const named = await send(
      key,
      { model: MODEL, messages: [{ role: 'user', name: 'ad\u0000a', content: 'My name is Ada.' }] },
      { 'x-thread-id': 'nul-thread' },
    );
    expect(named.status).toBe(200);
    await named.text();
    for (let i = 0; i < 20; i++) await (await send(key, { model: MODEL, messages: [user(`after ${i}`)] })).text();
    await flushAll();

    const records = await recordsOf(id);
    expect(records).toHaveLength(22);
    expect(records.map((r) => r.model)).toContain(`${MODEL}\uFFFDx`);
    expect(env.gw.deps.usage.stats()).toMatchObject({ quarantined: 0, lost: 0, pending: 0 });
    const items = await env.gw.deps.threads.listItems(records[0].workspace_id, 'nul-thread', 10, 0);
    expect(items.map((i) => i.name)).toContain('ad\uFFFDa');
    expect(items.find((i) => i.role === 'assistant')).toBeTruthy();
  });

  it('stores thread titles, metadata, summaries and key names holding NUL or lone surrogates', async () => {
    const { id } = await env.gw.createKey();
    const ws = (await env.gw.deps.keys.getKey(id))!.workspaceId;
    const threads = env.gw.deps.threads;
    const row = await threads.ensureThread(ws, 'nul-meta', {
      title: 't\u0000itle',
      metadata: { 'k\u0000': 'v\ud800', nested: ['\u0000'] },
    });
    expect(row).toMatchObject({ title: 't\uFFFDitle', metadata: { 'k\uFFFD': 'v\uFFFD', nested: ['\uFFFD'] } });
    expect(await threads.updateThread(ws, 'nul-meta', { title: '\udfff' })).toMatchObject({ title: '\uFFFD' });
    expect(await threads.saveSummary(ws, 'nul-meta', 'Ada\u0000 is 42', 3, 0)).toBe(true);
    expect((await threads.getThread(ws, 'nul-meta'))!.summary).toBe('Ada\uFFFD is 42');
    const created = await env.gw.admin('/admin/keys', { body: { workspace: ws, name: 'n\u0000ame' } });
    expect(created.status).toBe(201);
    expect((await created.json()).name).toBe('n\uFFFDame');
  });

  it('a client x-request-id is correlation only: 20 requests sharing one id are 20 records, in each workspace', async () => {
    const a = await env.gw.createKey();
    const b = await env.gw.createKey();
    const echoed: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await send(
        a.key,
        { model: MODEL, stream: i % 2 === 1, messages: [user(`a ${i}`)] },
        { 'x-request-id': 'shared-id', 'x-thread-id': 'same-thread' },
      );
      echoed.push(res.headers.get('x-request-id')!);
      await res.text();
    }
    for (let i = 0; i < 5; i++) {
      const res = await send(
        b.key,
        { model: MODEL, messages: [user(`b ${i}`)] },
        { 'x-request-id': 'shared-id', 'x-thread-id': 'same-thread' },
      );
      await res.text();
    }
    await flushAll();
    expect(new Set(echoed)).toEqual(new Set(['shared-id']));
    const ra = await recordsOf(a.id);
    const rb = await recordsOf(b.id);
    expect(ra).toHaveLength(20);
    expect(rb).toHaveLength(5);
    expect(new Set([...ra, ...rb].map((r) => r.request_id)).size).toBe(25);
    expect([...ra, ...rb].every((r) => r.client_request_id === 'shared-id' && /^req_[0-9a-f]{32}$/.test(r.request_id))).toBe(true);
    // The upstream sees the gateway's id (so its logs join the ledger), not the client's.
    const upstreamIds = env.fake.requests.filter((q) => q.path.endsWith('/chat/completions')).map((q) => q.headers['x-request-id']);
    expect(upstreamIds.filter((x) => x === 'shared-id')).toHaveLength(0);
    // Memory: both workspaces' exchanges were stored, each in its own thread.
    const itemsA = await env.gw.deps.threads.listItems(ra[0].workspace_id, 'same-thread', 100, 0);
    const itemsB = await env.gw.deps.threads.listItems(rb[0].workspace_id, 'same-thread', 100, 0);
    expect(itemsA.filter((i) => i.role === 'user')).toHaveLength(20);
    expect(itemsB.filter((i) => i.role === 'user')).toHaveLength(5);
  });

  it('records every request refused after authentication as rejected, and reports count them as errors', async () => {
    const { key, id, workspace } = await env.gw.createKey();
    const refusals: [string, () => Promise<Response>][] = [
      ['bad json', () => send(key, '{"model":')],
      ['missing model', () => send(key, { messages: [user('x')] })],
      [
        '415',
        () =>
          fetch(`${env.gw.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'text/plain' },
            body: 'hi',
          }),
      ],
      ['413', () => send(key, { model: MODEL, messages: [user('x'.repeat(20_000))] })],
      ['bad thread id', () => send(key, { model: MODEL, messages: [user('x')] }, { 'x-thread-id': 'no spaces allowed' })],
      ['embeddings without input', () => send(key, { model: 'openai/text-embedding-3-small' }, {}, '/v1/embeddings')],
    ];
    const statuses: number[] = [];
    for (const [, go] of refusals) {
      const res = await go();
      statuses.push(res.status);
      await res.text();
    }
    expect(statuses).toEqual([400, 400, 415, 413, 400, 400]);
    // Without a key nothing is recorded (nobody to bill).
    await (await fetch(`${env.gw.url}/v1/chat/completions`, { method: 'POST', body: '{}' })).text();
    await flushAll();
    const records = await recordsOf(id);
    expect(records.map((r) => [r.status, Number(r.http_status)])).toEqual(statuses.map((s) => ['rejected', s]));
    expect(records.map((r) => r.route)).toEqual([
      'chat.completions',
      'chat.completions',
      'chat.completions',
      'chat.completions',
      'chat.completions',
      'embeddings',
    ]);
    expect(records[1].error_code).toBe('missing_required_parameter');
    const report = await fetch(`${env.gw.url}/admin/usage?from=${today()}&to=${tomorrow()}&group_by=workspace&workspace=${workspace}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json());
    expect(report.totals).toMatchObject({ requests: 6, errors: 6 });
  });

  it('makes unpriced usage visible: report columns per model, CSV, a metric, and a warning naming the model', async () => {
    const { key, workspace } = await env.gw.createKey();
    const bodies = [0, 1, 2].map((i) => ({
      model: 'fake/unpriced',
      stream: i === 1,
      messages: [user(`unpriced ${i}`)],
      fake: { noCost: true },
    }));
    for (const b of bodies) await (await send(key, b)).text();
    await (await send(key, { model: MODEL, messages: [user('priced')] })).text();
    await flushAll();
    const tokens = bodies.reduce((n, b) => n + expectedUsage(b).prompt_tokens + expectedUsage(b).completion_tokens, 0);

    const q = `from=${today()}&to=${tomorrow()}&group_by=model&workspace=${workspace}`;
    const report = await fetch(`${env.gw.url}/admin/usage?${q}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) =>
      r.json(),
    );
    const byModel = Object.fromEntries(report.data.map((r: any) => [r.model, r]));
    expect(byModel['fake/unpriced']).toMatchObject({ requests: 3, cost_usd: '0', unpriced_requests: 3, unpriced_tokens: tokens });
    expect(byModel[MODEL]).toMatchObject({ requests: 1, unpriced_requests: 0, unpriced_tokens: 0 });
    expect(report.totals).toMatchObject({ unpriced_requests: 3, unpriced_tokens: tokens });

    const csv = await fetch(`${env.gw.url}/admin/usage?${q}&format=csv`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then(
      (r) => r.text(),
    );
    const [header, ...lines] = csv.trim().split(/\r?\n/);
    expect(header.split(',')).toEqual([
      'model',
      'requests',
      'errors',
      'prompt_tokens',
      'completion_tokens',
      'cost_usd',
      'unpriced_requests',
      'unpriced_tokens',
    ]);
    expect(
      lines
        .find((l) => l.startsWith('fake/unpriced,'))!
        .split(',')
        .slice(-2),
    ).toEqual(['3', String(tokens)]);

    const metrics = await fetch(`${env.gw.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/cmg_unpriced_requests_total\{model="fake\/unpriced"\} [3-9]/);
    expect(env.gw.logs.some((l) => l.model === 'fake/unpriced' && String(l.msg).startsWith('usage without a price'))).toBe(true);

    // A catalog refresh names the models in use that still have no price.
    await env.gw.deps.catalog.refresh();
    const named = () =>
      env.gw.logs.some(
        (l) => String(l.msg).startsWith('models in use without a price') && (l.models as string[]).includes('fake/unpriced'),
      );
    await expect.poll(named, { timeout: 3_000 }).toBe(true);
  });

  it('logs no message text, key or SQL parameter when ledger and memory writes fail', async () => {
    const { key, id } = await env.gw.createKey();
    const secret = 'my-password-is-TOPSECRET-42';
    const db = env.database.db;
    // The database refuses every new row (as a constraint would): each write fails with a data error.
    await db.execute(sql.raw('alter table thread_items add constraint refuse_all check (false) not valid'));
    await db.execute(sql.raw('alter table usage_records add constraint refuse_all check (false) not valid'));
    try {
      const before = env.gw.logs.length;
      for (const stream of [false, true]) {
        const res = await send(
          key,
          { model: MODEL, stream, messages: [user(`${secret} (${stream})`)] },
          { 'x-thread-id': 'secret-thread' },
        );
        expect(res.status).toBe(200);
        await res.text();
      }
      await flushAll();
      const lines = env.gw.logs.slice(before).map((l) => JSON.stringify(l));
      expect(lines.filter((l) => l.includes('quarantined')).length).toBeGreaterThanOrEqual(4);
      expect(lines.some((l) => l.includes('"code":"23514"'))).toBe(true);
      const text = lines.join('\n');
      for (const needle of [secret, key, key.slice(4), 'Bearer', 'params:', 'insert into']) expect(text).not.toContain(needle);
      expect(env.gw.deps.usage.stats().quarantined).toBeGreaterThanOrEqual(2);
      expect(env.gw.deps.memory.stats().quarantined).toBeGreaterThanOrEqual(2);
    } finally {
      await db.execute(sql.raw('alter table thread_items drop constraint refuse_all'));
      await db.execute(sql.raw('alter table usage_records drop constraint refuse_all'));
    }
    // The queue was never blocked: the next request is recorded.
    await (await send(key, { model: MODEL, messages: [user('after')] })).text();
    await flushAll();
    expect(await recordsOf(id)).toHaveLength(1);
  });

  it('replays a spill file with a poison record: the others are written, the bad one is quarantined', async () => {
    const { id } = await env.gw.createKey();
    const ws = (await env.gw.deps.keys.getKey(id))!.workspaceId;
    const dataDir = mkdtempSync(join(tmpdir(), 'cmg-replay-'));
    const record = (n: number, over: Partial<UsageRecord> = {}) =>
      usageRecord({
        requestId: `req_replay_${kind}_${n}_${Date.now()}`,
        workspaceId: ws,
        keyId: id,
        model: MODEL,
        costUsd: '0.0001',
        ...over,
      });
    // Written by an older version: a NUL in the model (made storable on replay) and a token count
    // no int column takes (refused by the database: quarantined).
    const spilled = [record(1), record(2, { model: 'bad\u0000model' }), record(3, { promptTokens: 1e12 }), record(4)];
    writeFileSync(join(dataDir, 'usage-spill.jsonl'), spilled.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const gw = await startTestGateway({ database: env.database, upstreamUrl: env.fake.baseUrl, config: { dataDir } });
    try {
      await gw.deps.usage.flush(10_000);
      const ids = (await recordsOf(id)).map((r) => r.request_id);
      expect(ids.sort()).toEqual([spilled[0], spilled[1], spilled[3]].map((r) => r.requestId).sort());
      expect(gw.deps.usage.stats()).toMatchObject({ quarantined: 1, lost: 0 });
      const dead = readFileSync(join(dataDir, 'usage-spill.deadletter.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(dead.map((d) => d.record.requestId)).toEqual([spilled[2].requestId]);
      expect(dead[0].error.code).toBe('22003'); // numeric value out of range
    } finally {
      await gw.close();
    }
  });
});
