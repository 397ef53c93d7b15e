import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { openTestDatabase } from './helpers/databases.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL, user } from './helpers/proxy-env.js';
import { startTestRedis, type TestRedis } from './helpers/redis-server.js';
import { startTcpRelay, startUrlRelay, type TcpRelay } from './helpers/tcp-relay.js';

// Hung, not down: each dependency sits behind a relay that keeps its connections open and passes
// no byte (freeze), the case a refused connection never exercises.

const chat = (gw: TestGateway, key: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    signal,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL, messages: [user('hi')] }),
  });

/** Status, headers and wall time of one call, with its body read. */
async function timed(call: () => Promise<Response>) {
  const t0 = performance.now();
  const res = await call();
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, ms: performance.now() - t0 };
}

const fallbacks = async (gw: TestGateway) => {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return [...text.matchAll(/^cmg_limiter_fallbacks_total(?:\{[^}]*\})? (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
};

describe('a hung Redis (frozen, not refused)', () => {
  let fake: FakeOpenRouter;
  let database: Database;
  let redis: TestRedis;
  let relay: TcpRelay;
  let gw: TestGateway;

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    database = await openTestDatabase('pglite');
    redis = await startTestRedis();
    relay = await startTcpRelay(redis.port);
    // The default command deadline (REDIS_COMMAND_TIMEOUT_MS 100).
    gw = await startTestGateway({
      database,
      upstreamUrl: fake.baseUrl,
      config: { redisUrl: `redis://127.0.0.1:${relay.port}`, redisKeyPrefix: `h${randomBytes(4).toString('hex')}:` },
    });
  });
  afterAll(async () => {
    relay?.restore();
    await gw?.close();
    await relay?.close();
    await redis?.stop();
    await database?.close();
    await fake?.close();
  });

  it('answers rate-limited requests from the in-process limiter within the deadline, says so, and a revoke still answers', async () => {
    const rpm = await gw.createKey({ rpm: 1000 });
    const tpm = await gw.createKey({ tpm: 1_000_000 });
    const victim = await gw.createKey();
    for (const k of [rpm, tpm]) {
      const warm = await timed(() => chat(gw, k.key));
      expect(warm.status).toBe(200);
      expect(warm.headers.get('x-ratelimit-fallback')).toBeNull(); // Redis answered
    }
    expect((await timed(() => chat(gw, victim.key))).status).toBe(200); // cached on this instance
    const before = await fallbacks(gw);

    relay.freeze();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(() => chat(gw, (i % 2 ? tpm : rpm).key))));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(1_000);
    // The fallback answers within ~100 ms of the command deadline (the median request, upstream included).
    expect(answers.map((a) => a.ms).sort((x, y) => x - y)[10]).toBeLessThan(350);
    for (const a of answers) expect(a.headers.get('x-ratelimit-fallback')).toBe('local');
    // Limits still apply (counted in process) and their headers are still there.
    expect(answers[0].headers.get('x-ratelimit-limit-requests')).toBe('1000');
    expect(answers[1].headers.get('x-ratelimit-limit-tokens')).toBe('1000000');
    expect(await fallbacks(gw)).toBeGreaterThan(before);

    // A later wave, past the limiter's retry pause: Redis is tried again and still bounded.
    await new Promise((r) => setTimeout(r, 1_100));
    const later = await Promise.all(Array.from({ length: 20 }, () => timed(() => chat(gw, rpm.key))));
    expect(later.every((a) => a.status === 200 && a.headers.get('x-ratelimit-fallback') === 'local')).toBe(true);
    expect(Math.max(...later.map((a) => a.ms))).toBeLessThan(1_000);

    // A revoke publishes to Redis: bounded too, and it takes effect here at once.
    const revoke = await timed(() => gw.admin(`/admin/keys/${victim.id}/revoke`, { method: 'POST' }));
    expect(revoke.status).toBeLessThan(300);
    expect(revoke.ms).toBeLessThan(2_000);
    expect((await timed(() => chat(gw, victim.key))).status).toBe(401);

    // Readiness says Redis is not answering, within its bound.
    const ready = await timed(() => fetch(`${gw.url}/health/ready`));
    expect(ready.ms).toBeLessThan(2_000);
    expect(JSON.parse(ready.body).checks.redis.status).toBe('error');

    relay.restore();
    const until = Date.now() + 10_000;
    let back: Awaited<ReturnType<typeof timed>> | undefined;
    while (Date.now() < until) {
      back = await timed(() => chat(gw, rpm.key));
      if (back.headers.get('x-ratelimit-fallback') === null) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(back!.status).toBe(200);
    expect(back!.headers.get('x-ratelimit-fallback')).toBeNull(); // back on Redis
  }, 30_000);
});

// Needs a real Postgres behind a relay; CI always provides one (TEST_DATABASE_URL).
describe.runIf(inject('postgresUrl'))('a hung Postgres (frozen, not refused)', () => {
  let fake: FakeOpenRouter;
  let relay: TcpRelay;
  let database: Database;
  let gw: TestGateway;

  beforeAll(async () => {
    let viaRelay: string;
    ({ relay, url: viaRelay } = await startUrlRelay(inject('postgresUrl')));
    fake = await startFakeOpenRouter();
    // The defaults: statement timeout 5 s (the gateway waits 6 s), connect timeout 5 s.
    database = await openDatabase({ url: viaRelay }, { poolSize: 4, statementTimeoutMs: 5_000, connectTimeoutMs: 5_000 });
    gw = await startTestGateway({ database, upstreamUrl: fake.baseUrl });
  });
  afterAll(async () => {
    relay?.restore();
    await gw?.close();
    await database?.close();
    await relay?.close();
    await fake?.close();
  });

  it('forwards thread requests without memory within ~1 s, serves known keys, answers 503 on admin and thread routes, and recovers', async () => {
    const { key } = await gw.createKey();
    const thread = `hung-${randomBytes(4).toString('hex')}`;
    const first = await timed(() => chat(gw, key, { 'x-thread-id': thread }));
    expect(first.status).toBe(200);
    expect(first.headers.get('x-memory-status')).toBe('ok');
    expect((await timed(() => gw.admin('/admin/usage'))).status).toBe(200);

    relay.freeze();
    const [threaded, plain, usage, threads] = await Promise.all([
      timed(() => chat(gw, key, { 'x-thread-id': thread })),
      timed(() => chat(gw, key)),
      timed(() => gw.admin('/admin/usage')),
      timed(() => fetch(`${gw.url}/v1/threads`, { headers: { authorization: `Bearer ${key}` } })),
    ]);
    expect(threaded.status).toBe(200);
    expect(threaded.headers.get('x-memory-status')).toBe('unavailable');
    expect(threaded.ms).toBeLessThan(1_500);
    expect(plain.status).toBe(200); // the key is cached: never a 401 because the database hangs
    expect(plain.ms).toBeLessThan(1_000);
    for (const r of [usage, threads]) {
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body).error.code).toBe('service_unavailable');
      expect(r.ms).toBeLessThan(7_500);
    }

    relay.restore();
    const until = Date.now() + 15_000;
    let again: Awaited<ReturnType<typeof timed>> | undefined;
    while (Date.now() < until) {
      again = await timed(() => gw.admin('/admin/usage'));
      if (again.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(again!.status).toBe(200);
    const after = await timed(() => chat(gw, key, { 'x-thread-id': thread }));
    expect(after.status).toBe(200);
    expect(after.headers.get('x-memory-status')).toBe('ok');
    expect((await timed(() => fetch(`${gw.url}/v1/threads`, { headers: { authorization: `Bearer ${key}` } }))).status).toBe(200);
  }, 60_000);

  it('a database that hangs between the read and the commit costs the answer ~1 s at most, and the exchange still lands once', async () => {
    const { key } = await gw.createKey();
    const thread = `commit-${randomBytes(4).toString('hex')}`;
    const body = (content: string) => ({ model: MODEL, messages: [user(content)], fake: { delayMs: 400 } });
    const post = (content: string) =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-thread-id': thread },
        body: JSON.stringify(body(content)),
      });
    expect((await post('warm up')).status).toBe(200);
    const t0 = performance.now();
    const pending = post('My name is Ada.');
    // The read is done by the time the upstream answers (400 ms); the commit then meets a frozen database.
    await eventually(() => fake.requests.filter((r) => r.path.endsWith('/chat/completions')).length >= 2, 2_000);
    relay.freeze();
    let res: Response;
    let ms: number;
    try {
      res = await pending;
      ms = performance.now() - t0;
    } finally {
      relay.restore();
    }
    expect(res.status).toBe(200);
    expect((await res.json()).choices[0].message.content).toMatch(/my name is Ada/i);
    expect(ms).toBeLessThan(2_500);
    // The durable writer takes over; once the database answers, the exchange is stored exactly once.
    const items = async () => {
      const r = await fetch(`${gw.url}/v1/threads/${thread}/items`, { headers: { authorization: `Bearer ${key}` } });
      return r.status === 200 ? ((await r.json()).data as any[]) : [];
    };
    let stored: any[] = [];
    for (let i = 0; i < 150 && stored.filter((it) => it.content === 'My name is Ada.').length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      stored = await items();
    }
    expect(stored.filter((it) => it.content === 'My name is Ada.')).toHaveLength(1);
    expect(stored.map((it) => it.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  }, 40_000);

  it('a client that gave up while the gateway waited on the database is not forwarded, and is recorded client_aborted', async () => {
    const { key } = await gw.createKey();
    const thread = `gone-${randomBytes(4).toString('hex')}`;
    expect((await timed(() => chat(gw, key, { 'x-thread-id': thread }))).status).toBe(200);
    fake.reset();
    const before = gw.outcomes.length;

    relay.freeze();
    const ac = new AbortController();
    const gone = chat(gw, key, { 'x-thread-id': thread }, ac.signal).catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 300)); // the gateway is reading the thread from the frozen database
    ac.abort();
    expect(await gone).toBeInstanceOf(Error);
    // Memory gives up after ~1 s; the request would then go upstream, had its client stayed.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(fake.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(0);
    relay.restore();
    await eventually(() => gw.outcomes.length > before, 10_000);
    expect(gw.outcomes.slice(before)).toHaveLength(1);
    expect(gw.outcomes.at(-1)).toMatchObject({ status: 'client_aborted', threadId: thread, usage: null });
  }, 30_000);
});
