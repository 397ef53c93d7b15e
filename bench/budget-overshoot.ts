// `npm run bench:budget`: how far a burst overshoots a key's budget and its tokens per minute.
// 50 concurrent requests on a key whose limit fits N = 5 requests (and a half); admitted / N is
// reported, on one instance (in-process limiter) and on two instances sharing Redis. Also the
// sequential latency of a key without limits and of a key with a budget and a tpm (hot path).
// Everything runs in this process on 127.0.0.1 (fake upstream, gateways); bounded in count and
// time (a few hundred requests, at most 3 minutes). Prints a Markdown section for bench/RESULTS.md.
// Env: BENCH_REDIS_URL (loopback Redis; default redis://127.0.0.1:6379; "off" skips the two-instance
// part), BENCH_DATABASE_URL (loopback Postgres server for the two instances, in a scratch database
// cmg_bench_<hex> made and dropped; default: one shared PGlite), BENCH_ROUNDS (bursts per case, default 5, at most 20).
// Written against APIs that older versions of the gateway also have, so the same file measures a
// checkout from before reservations (copy it into that tree and run it there).

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { openDatabase, type Database } from '../src/db/client.js';
import { expectedUsage, startFakeOpenRouter } from '../test/fake-openrouter/server.js';
import { startTestGateway, type TestGateway } from '../test/helpers/gateway.js';
import { createScratchDatabase } from './procs.js';

const N = 5;
const BURST = 50;
const ROUNDS = Math.min(20, Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5)));
const LATENCY_REQUESTS = 2_000;
const MODEL = 'openai/gpt-4o-mini';
const deadline = Date.now() + 180_000;
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const pgUrl = process.env.BENCH_DATABASE_URL;

function loopbackOnly(url: string | undefined): void {
  if (url && url !== 'off' && !['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname))
    throw new Error(`not a loopback address: ${url}`);
}
loopbackOnly(redisUrl);
loopbackOnly(pgUrl);

const bodyFor = (i: number, stream = i % 3 === 0) => ({
  model: MODEL,
  messages: [{ role: 'user', content: 'spend a little please' }],
  max_tokens: 8,
  stream,
  fake: { delayMs: 50 },
});
const usage = expectedUsage(bodyFor(1));
const COST_NANO = Math.round(usage.cost * 1e9);
// Budget of 5.5 requests, as a decimal string (costs are whole nano-dollars).
const BUDGET = ((COST_NANO * (N * 2 + 1)) / 2 / 1e9).toFixed(10).replace(/0+$/, '');
const TPM = Math.floor(usage.total_tokens * (N + 0.5));

function post(gw: TestGateway, key: string, body: unknown): Promise<Response> {
  if (Date.now() > deadline) throw new Error('bench:budget ran past its 3-minute bound');
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function waitForOutcomes(gws: TestGateway[], keyId: string, n: number): Promise<void> {
  const until = Date.now() + 10_000;
  const count = () => gws.reduce((s, g) => s + g.outcomes.filter((o) => o.keyId === keyId).length, 0);
  while (count() < n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  // Older versions have no settle to wait for.
  await Promise.all(gws.map((g) => (g.deps.usage.spend as { settled?: () => Promise<void> }).settled?.() ?? Promise.resolve()));
}

/** Admitted requests out of BURST concurrent ones, per round, each round on a fresh key. */
async function bursts(gws: TestGateway[], keyOpts: Record<string, unknown>): Promise<number[]> {
  const admitted: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const { key, id } = await gws[0].createKey(keyOpts);
    const statuses = await Promise.all(
      Array.from({ length: BURST }, async (_, i) => {
        const res = await post(gws[i % gws.length], key, bodyFor(i));
        await res.arrayBuffer();
        return res.status;
      }),
    );
    admitted.push(statuses.filter((s) => s === 200).length);
    await waitForOutcomes(gws, id, BURST);
  }
  return admitted;
}

/**
 * Sequential non-stream requests on two keys, in alternating blocks of 100 after 200 unrecorded:
 * this process's CPU per request in µs (client, gateway and fake upstream together: the same work
 * in every tree, and steadier than wall time on a busy machine) and the wall p50 in µs.
 */
async function hotPath(gw: TestGateway, keys: Record<string, unknown>[]): Promise<{ cpu: number; p50: number }[]> {
  const made = await Promise.all(keys.map((k) => gw.createKey(k)));
  const body = { model: MODEL, messages: [{ role: 'user', content: 'hello from the bench, a few words' }] };
  const cpu = keys.map(() => 0);
  const times: number[][] = keys.map(() => []);
  const send = async (key: string) => {
    const t0 = performance.now();
    const res = await post(gw, key, body);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`hot-path request answered ${res.status}`);
    return (performance.now() - t0) * 1000;
  };
  for (let i = 0; i < 200; i++) await send(made[i % made.length].key);
  for (let block = 0; block < LATENCY_REQUESTS / 100; block++) {
    const k = block % made.length;
    const c0 = process.cpuUsage();
    for (let i = 0; i < 100; i++) times[k].push(await send(made[k].key));
    const c = process.cpuUsage(c0);
    cpu[k] += c.user + c.system;
  }
  return times.map((t, k) => {
    t.sort((x, y) => x - y);
    return { cpu: cpu[k] / t.length, p50: t[Math.floor(t.length / 2)] };
  });
}

const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0]}–${s[s.length - 1]} (median ${s[Math.floor(s.length / 2)]}) → ${(s[s.length - 1] / N).toFixed(1)}× at worst`;
};

async function main() {
  const fake = await startFakeOpenRouter();
  const quiet = { logLevel: 'warn' as const };
  const rows: string[] = [];
  const gwsToClose: TestGateway[] = [];
  const dbs: Database[] = [];
  const scratch = pgUrl ? await createScratchDatabase(pgUrl) : undefined;
  try {
    // Postgres when given (its inserts then run in its own process, not on this thread), else PGlite.
    const one = scratch ? await openDatabase({ url: scratch.url }, { poolSize: 4 }) : await openDatabase({ dataDir: undefined });
    dbs.push(one);
    const gw = await startTestGateway({ database: one, upstreamUrl: fake.baseUrl, config: quiet });
    gwsToClose.push(gw);
    rows.push(`| one instance, in-process | budget | ${summary(await bursts([gw], { budget_usd: BUDGET, budget_period: 'day' }))} |`);
    rows.push(`| one instance, in-process | tpm | ${summary(await bursts([gw], { tpm: TPM }))} |`);
    const [plain, limited] = await hotPath(gw, [{}, { tpm: 10_000_000, budget_usd: '1000', budget_period: 'month' }]);

    if (redisUrl !== 'off') {
      const shared = pgUrl ? undefined : await openDatabase({ dataDir: undefined });
      if (shared) dbs.push(shared);
      const config = { ...quiet, redisUrl, redisKeyPrefix: `bb${randomBytes(4).toString('hex')}:` };
      const pair: TestGateway[] = [];
      for (let i = 0; i < 2; i++) {
        const database = shared ?? (await openDatabase({ url: scratch!.url }, { poolSize: 4 }));
        if (!shared) dbs.push(database);
        pair.push(await startTestGateway({ database, upstreamUrl: fake.baseUrl, config }));
      }
      gwsToClose.push(...pair);
      const where = `two instances, Redis, ${pgUrl ? 'Postgres' : 'one PGlite'}`;
      rows.push(`| ${where} | budget | ${summary(await bursts(pair, { budget_usd: BUDGET, budget_period: 'day' }))} |`);
      rows.push(`| ${where} | tpm | ${summary(await bursts(pair, { tpm: TPM }))} |`);
    }

    let rev = 'unknown';
    try {
      rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      // not a git checkout (e.g. an exported tree)
    }
    console.log(
      [
        `Budget $${BUDGET}/day (${N}.5 requests at $${COST_NANO / 1e9} each) or tpm ${TPM} (${N}.5 × ${usage.total_tokens} tokens); ` +
          `${BURST} concurrent requests per round (a third streamed, 50 ms upstream delay), ${ROUNDS} rounds, fresh key each; tree at ${rev}, cwd ${process.cwd()}.`,
        '',
        '| Setup | Limit | Admitted of 50 (N = 5) |',
        '| --- | --- | --- |',
        ...rows,
        '',
        `Sequential non-stream requests (${LATENCY_REQUESTS} in alternating blocks of 100, one instance, ${scratch ? 'Postgres' : 'PGlite'}), CPU per request of this process and wall p50: ` +
          `key without limits ${Math.round(plain.cpu)} µs, ${Math.round(plain.p50)} µs; key with a budget and a tpm ${Math.round(limited.cpu)} µs, ${Math.round(limited.p50)} µs ` +
          `(load average ${loadavg()[0].toFixed(2)}).`,
      ].join('\n'),
    );
  } finally {
    await Promise.allSettled(gwsToClose.map((g) => g.close()));
    await Promise.allSettled(dbs.map((d) => d.close()));
    await fake.close();
    await scratch?.drop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
