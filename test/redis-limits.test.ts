import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { openTestDatabase } from './helpers/databases.js';
import { startTestGateway, statusAfterChange, type TestGateway } from './helpers/gateway.js';
import { MODEL, user } from './helpers/proxy-env.js';
import { startTestRedis, type TestRedis } from './helpers/redis-server.js';

const send = (gw: TestGateway, key: string) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [user('hi')] }),
  });

describe('rate limits on Redis, and a Redis outage', () => {
  let fake: FakeOpenRouter;
  let database: Database;
  let redis: TestRedis;
  let gw: TestGateway;

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    database = await openTestDatabase('pglite');
    redis = await startTestRedis();
    gw = await startTestGateway({
      database,
      upstreamUrl: fake.baseUrl,
      config: { redisUrl: redis.url, redisKeyPrefix: `t${randomBytes(4).toString('hex')}:`, redisCommandTimeoutMs: 200 },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
    await database?.close();
    await fake?.close();
  });

  it('enforces rpm through the Lua limiter', async () => {
    const { key, id } = await gw.createKey({ rpm: 2 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(gw, key)).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    const stored = await gw.deps.redis!.command(['ZCARD', gw.deps.redis!.key(`rl:req:${id}`)]);
    expect(stored).toBe(2);
  });

  it('keeps answering when Redis stops (bounded waits, in-process fallback, counted), and returns to Redis', async () => {
    const { key, id } = await gw.createKey({ rpm: 1000 });
    expect((await send(gw, key)).status).toBe(200);
    await redis.stop();
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const res = await send(gw, key);
      expect(res.status).toBe(200);
      await res.text();
      times.push(performance.now() - t0);
    }
    expect(Math.max(...times)).toBeLessThan(1_500);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/cmg_limiter_fallbacks_total\{[^}]*\} [1-9]/);
    const ready = await (await fetch(`${gw.url}/health/ready`)).json();
    expect(ready.checks.redis.status).toBe('error');
    expect(ready.checks.database).toMatchObject({ status: 'ok', latency_ms: expect.any(Number) });
    expect(ready.checks.upstream_catalog.status).toBe('ok');
    expect(ready.status).toBe('degraded');

    await redis.start();
    // Back on Redis within a bounded time: new hits land in Redis again.
    const until = Date.now() + 10_000;
    let onRedis = 0;
    while (Date.now() < until) {
      await (await send(gw, key)).text();
      onRedis = Number(await gw.deps.redis!.command(['ZCARD', gw.deps.redis!.key(`rl:req:${id}`)]).catch(() => 0));
      if (onRedis > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(onRedis).toBeGreaterThan(0);
  }, 30_000);
});

describe.runIf(inject('redisUrl'))('key changes reach other instances through pub/sub', () => {
  it('a revoke on one gateway is refused by another within one second', async () => {
    const fake = await startFakeOpenRouter();
    const database = await openTestDatabase('pglite');
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const config = { redisUrl: inject('redisUrl'), redisKeyPrefix: prefix, keyCacheTtlMs: 600_000 };
    const a = await startTestGateway({ database, upstreamUrl: fake.baseUrl, config });
    const b = await startTestGateway({ database, upstreamUrl: fake.baseUrl, config });
    try {
      const { key, id } = await a.createKey();
      expect((await send(b, key)).status).toBe(200); // cached on b for 10 minutes
      await a.admin(`/admin/keys/${id}/revoke`, { method: 'POST' });
      expect(await statusAfterChange(() => send(b, key), 1_000)).toBe(401);
    } finally {
      await a.close();
      await b.close();
      await database.close();
      await fake.close();
    }
  });
});
