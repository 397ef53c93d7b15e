import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/client.js';
import { parseUsage } from '../src/proxy/outcome.js';
import { estimateRequest } from '../src/usage/budget-estimate.js';
import { formatDecimal, parseDecimal } from '../src/usage/decimal.js';
import { expectedUsage, FAKE_MODELS, startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';
import { startTestRedis } from './helpers/redis-server.js';
import { openTestDatabase } from './helpers/databases.js';

// Budgets and tokens per minute are reserved at admission and settled when each request ends, so
// a burst cannot spend what it has not reserved. Each request here costs exactly C (the fake's
// price) and is estimated at a little more; the limits fit N = 5 requests and a half, so at most
// N + 1 = 6 may ever be admitted, whether all at once or one by one.
const N = 5;
const BURST = 50;

const bodyFor = (i: number, extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [user('spend a little please')],
  max_tokens: 8,
  stream: i % 3 === 0,
  fake: { delayMs: 50 },
  ...extra,
});
const usage = expectedUsage(bodyFor(1));
const COST = parseDecimal(parseUsage(usage)!.cost!);
const TOKENS = usage.total_tokens;
const BUDGET = COST * BigInt(N) + COST / 2n;
const TPM = Math.floor(TOKENS * (N + 0.5));
const ALL_THAT_FITS = N + 1; // ceil(5.5)

const mini = FAKE_MODELS.find((m) => m.id === MODEL)!;
const FAKE_MODELS_INFO = {
  id: mini.id,
  contextLength: mini.context_length,
  maxCompletionTokens: mini.top_provider.max_completion_tokens,
  promptPrice: mini.pricing.prompt,
  completionPrice: mini.pricing.completion,
};

function post(gw: TestGateway, key: string, body: unknown) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const outcomesOf = (gws: TestGateway[], keyId: string) => gws.reduce((n, g) => n + g.outcomes.filter((o) => o.keyId === keyId).length, 0);

/** Waits until every request on the key has its outcome and every settle has landed. */
async function settledAll(gws: TestGateway[], keyId: string, expected: number) {
  await eventually(() => outcomesOf(gws, keyId) >= expected, 10_000);
  await Promise.all(gws.map((g) => g.deps.usage.spend.settled()));
}

/** BURST concurrent requests spread over the gateways: statuses and refusal codes. */
async function burst(gws: TestGateway[], key: string) {
  const answers = await Promise.all(
    Array.from({ length: BURST }, async (_, i) => {
      const res = await post(gws[i % gws.length], key, bodyFor(i));
      const text = await res.text();
      return { status: res.status, code: res.status === 200 ? null : JSON.parse(text).error.code };
    }),
  );
  return { admitted: answers.filter((a) => a.status === 200).length, refused: answers.filter((a) => a.status !== 200) };
}

/** Then one request at a time (alternating gateways) until refused: how many more were admitted. */
async function oneByOne(gws: TestGateway[], key: string, keyId: string, already: number) {
  let more = 0;
  let last: Response | undefined;
  for (let i = 0; i < 10; i++) {
    last = await post(gws[i % gws.length], key, bodyFor(1, { stream: false }));
    await settledAll(gws, keyId, already + i + 1);
    if (last.status !== 200) break;
    await last.text();
    more++;
  }
  return { more, last: last! };
}

function budgetScenario(gws: () => TestGateway[]) {
  return async () => {
    expect(estimateRequest(bodyFor(1), FAKE_MODELS_INFO).costUnits).toBeGreaterThanOrEqual(COST); // the estimate covers the cost
    const { key, id } = await gws()[0].createKey({ budget_usd: formatDecimal(BUDGET), budget_period: 'day' });
    const { admitted, refused } = await burst(gws(), key);
    expect(admitted).toBeGreaterThanOrEqual(1);
    expect(admitted).toBeLessThanOrEqual(N + 1);
    expect(new Set(refused.map((r) => `${r.status} ${r.code}`))).toEqual(new Set(['429 insufficient_quota']));
    await settledAll(gws(), id, BURST);
    // Settled: the holds are gone and exactly what is left of the budget can still be used.
    const { more, last } = await oneByOne(gws(), key, id, BURST);
    expect(admitted + more).toBe(ALL_THAT_FITS);
    expect(last.status).toBe(429);
    expect(last.headers.get('x-should-retry')).toBe('false');
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(1);
    expect((await last.json()).error.message).toMatch(/has used its daily budget/);
    for (const g of gws()) expect(g.deps.usage.spend.holding()).toBe(0);
  };
}

function tpmScenario(gws: () => TestGateway[]) {
  return async () => {
    expect(estimateRequest(bodyFor(1), FAKE_MODELS_INFO).totalTokens).toBeGreaterThanOrEqual(TOKENS);
    const { key, id } = await gws()[0].createKey({ tpm: TPM });
    const { admitted, refused } = await burst(gws(), key);
    expect(admitted).toBeGreaterThanOrEqual(1);
    expect(admitted).toBeLessThanOrEqual(N + 1);
    expect(new Set(refused.map((r) => `${r.status} ${r.code}`))).toEqual(new Set(['429 rate_limit_exceeded']));
    await settledAll(gws(), id, BURST);
    const { more, last } = await oneByOne(gws(), key, id, BURST);
    expect(admitted + more).toBe(ALL_THAT_FITS);
    expect(last.status).toBe(429);
    expect(last.headers.get('x-ratelimit-remaining-tokens')).toBe('0');
  };
}

describe('budgets and tokens per minute under a burst, one instance (in-process reservations)', () => {
  const env = useProxyEnv();

  it(
    `${BURST} concurrent requests on a budget that fits ${N}.5 admit at most ${N + 1}; settled, the rest stays usable`,
    budgetScenario(() => [env.gw]),
  );

  it(
    `${BURST} concurrent requests on a tpm that fits ${N}.5 requests admit at most ${N + 1}; settled, the rest stays usable`,
    tpmScenario(() => [env.gw]),
  );

  it('the openai SDK with its default retries (2) does not multiply admitted requests', async () => {
    const { key, id } = await env.gw.createKey({ budget_usd: formatDecimal(BUDGET), budget_period: 'day' });
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: key, timeout: 20_000 });
    expect(client.maxRetries).toBe(2);
    const t0 = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: BURST }, () =>
        client.chat.completions.create({ ...bodyFor(1, { stream: false }) } as OpenAI.ChatCompletionCreateParamsNonStreaming),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as InstanceType<typeof OpenAI.APIError>] : []));
    expect(ok).toBeGreaterThanOrEqual(1);
    expect(ok).toBeLessThanOrEqual(N + 1);
    expect(errors.every((e) => e.status === 429 && e.code === 'insufficient_quota')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // Every admitted request reached the upstream once; no refused one (nor any retry of one) did.
    expect(env.fake.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(ok);
    await settledAll([env.gw], id, BURST);
    const seen = outcomesOf([env.gw], id);
    const { more } = await oneByOne([env.gw], key, id, seen);
    expect(ok + more).toBe(ALL_THAT_FITS);
    // A used-up budget says "do not retry": one refusal, not three.
    const before = outcomesOf([env.gw], id);
    await expect(
      client.chat.completions.create(bodyFor(1, { stream: false }) as OpenAI.ChatCompletionCreateParamsNonStreaming),
    ).rejects.toMatchObject({ status: 429, code: 'insufficient_quota' });
    await settledAll([env.gw], id, before + 1);
    expect(outcomesOf([env.gw], id)).toBe(before + 1);
  });

  it('keys without a budget or tpm reserve nothing and read no spend; a key with both reserves and settles once per request', async () => {
    const plain = await env.gw.createKey();
    const limited = await env.gw.createKey({ tpm: 100_000, budget_usd: '10', budget_period: 'month' });
    const calls: string[] = [];
    const deps = env.gw.deps;
    const spy = <T extends object>(obj: T, names: (keyof T)[]) => {
      const originals = names.map((n) => [n, obj[n]] as const);
      for (const [n, f] of originals) (obj as any)[n] = (...args: unknown[]) => (calls.push(String(n)), (f as any).apply(obj, args));
      return () => originals.forEach(([n, f]) => ((obj as any)[n] = f));
    };
    const restore = [
      spy(deps.limiter, ['reserveTokens', 'settleTokens', 'reserveSpend', 'settleSpend', 'hitRequest']),
      spy(deps.usage.spend, ['spent', 'known', 'hold']),
    ];
    try {
      for (let i = 0; i < 4; i++) {
        const res = await post(env.gw, plain.key, bodyFor(i));
        expect(res.status).toBe(200);
        await res.text();
      }
      await settledAll([env.gw], plain.id, 4);
      expect(calls).toEqual([]);
      for (let i = 0; i < 2; i++) {
        const res = await post(env.gw, limited.key, bodyFor(i));
        expect(res.status).toBe(200);
        await res.text();
      }
      await settledAll([env.gw], limited.id, 2);
      const count = (name: string) => calls.filter((c) => c === name).length;
      expect(['reserveTokens', 'settleTokens', 'reserveSpend', 'hold', 'settleSpend', 'hitRequest'].map(count)).toEqual([2, 2, 2, 2, 2, 0]);
    } finally {
      restore.forEach((r) => r());
    }
  });
});

// Two gateways on one Postgres and one Redis (CI provides both): the reservation is atomic across them.
describe.runIf(inject('postgresUrl') && inject('redisUrl'))(
  'budgets and tokens per minute under a burst, two instances sharing Redis',
  () => {
    let fake: FakeOpenRouter;
    const dbs: Database[] = [];
    const gws: TestGateway[] = [];

    beforeAll(async () => {
      fake = await startFakeOpenRouter();
      const config = { redisUrl: inject('redisUrl'), redisKeyPrefix: `bc${randomBytes(4).toString('hex')}:` };
      for (let i = 0; i < 2; i++) {
        const database = await openDatabase({ url: inject('postgresUrl') }, { poolSize: 4 });
        dbs.push(database);
        gws.push(await startTestGateway({ database, upstreamUrl: fake.baseUrl, config }));
      }
    });
    afterAll(async () => {
      await Promise.all(gws.map((g) => g.close()));
      await Promise.all(dbs.map((d) => d.close()));
      await fake?.close();
    });

    it(
      `${BURST} concurrent requests over both on a budget that fits ${N}.5 admit at most ${N + 1}; each sees the other's spend at once`,
      budgetScenario(() => gws),
    );

    it(
      `${BURST} concurrent requests over both on a tpm that fits ${N}.5 requests admit at most ${N + 1}`,
      tpmScenario(() => gws),
    );

    it('the shared spend is held in Redis, not in either process', async () => {
      const { key, id } = await gws[0].createKey({ budget_usd: formatDecimal(BUDGET), budget_period: 'day' });
      const res = await post(gws[1], key, bodyFor(1, { stream: false }));
      expect(res.status).toBe(200);
      await res.text();
      await settledAll(gws, id, 1);
      const redis = gws[0].deps.redis!;
      const day = new Date().toISOString().slice(0, 10);
      const state = (await redis.command(['HGETALL', redis.key(`bud:${id}:day:${day}`)])) as string[] | Record<string, string>;
      const fields = Array.isArray(state) ? Object.fromEntries(state.flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]]))) : state;
      expect(fields).toEqual({ spent: String(COST), reserved: '0' });
    });
  },
);

describe('budgets while Redis is away', () => {
  it('falls back to in-process holds: the burst stays bounded and no request hangs', async () => {
    const fake = await startFakeOpenRouter();
    const database = await openTestDatabase('pglite');
    const redis = await startTestRedis();
    const gw = await startTestGateway({
      database,
      upstreamUrl: fake.baseUrl,
      config: { redisUrl: redis.url, redisKeyPrefix: `bo${randomBytes(4).toString('hex')}:`, redisCommandTimeoutMs: 200 },
    });
    let stopped = false;
    try {
      const { key, id } = await gw.createKey({ budget_usd: formatDecimal(BUDGET), budget_period: 'day', tpm: 1_000_000 });
      await redis.stop();
      stopped = true; // stop() only once: a second one waits for an exit that already happened
      const t0 = performance.now();
      const { admitted, refused } = await burst([gw], key);
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(admitted).toBeGreaterThanOrEqual(1);
      expect(admitted).toBeLessThanOrEqual(N + 1);
      expect(new Set(refused.map((r) => `${r.status} ${r.code}`))).toEqual(new Set(['429 insufficient_quota']));
      await settledAll([gw], id, BURST);
      const { more } = await oneByOne([gw], key, id, BURST);
      expect(admitted + more).toBe(ALL_THAT_FITS);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(metrics).toMatch(/cmg_limiter_fallbacks_total\{[^}]*\} [1-9]/);
    } finally {
      await gw.close();
      if (!stopped) await redis.stop();
      await database.close();
      await fake.close();
    }
  });
});
