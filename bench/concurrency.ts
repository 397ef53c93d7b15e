// `npm run bench:concurrency` (issue 13, "nothing hangs"): 1,000 streaming requests opened at once,
// first straight to the fake upstream, then through the gateway. Each stream sends its first
// content chunk right after the headers and nine more spread over 3 s (bench/upstream.ts,
// `bench_spread_ms`), then finish, usage and [DONE]. Reported per target: how many were open at
// the upstream at once, time to the first content chunk and to the end of the stream (p50/p99),
// ok/failed, and gateway/direct of the first-content p50. Writes "## Concurrency: 1,000 open
// streams" in RESULTS.md.
// Each target gets one unrecorded round first (same 1,000 streams), so connections are set up
// and code is compiled before the measured round; BENCH_WARMUP=0 measures a cold start instead.
// Env: BENCH_DATABASE_URL (Postgres server; scratch database made and dropped; default PGlite),
// BENCH_REDIS_URL, BENCH_PIN=0 (no CPU pinning), BENCH_STREAMS (default 1000, at most 5000),
// BENCH_SPREAD_MS (default 3000), BENCH_WARMUP=0, BENCH_QUICK=1 (RESULTS.md untouched).
// Gateway env: UPSTREAM_MAX_CONNECTIONS=0 (no cap) unless BENCH_UPSTREAM_MAX_CONNECTIONS is set.
// Loopback only; bounded: two or four rounds of BENCH_STREAMS requests, each at most 60 s, the
// whole run at most 5 minutes (then children are stopped and it exits 1).

import { execFileSync } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { commandLine, createRunGuard, gitRevision, loadavg } from './bench-env.js';
import { benchGatewayEnv, createKey, freePort, pinBenchServices, startGateway, startUpstream, stopChild, waitHealthy } from './procs.js';
import { machineInfo, percentile, saveResults } from './report.js';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const STREAMS = Math.min(5_000, Math.max(1, Number(env.BENCH_STREAMS ?? 1_000)));
const SPREAD_MS = Math.min(20_000, Math.max(0, Number(env.BENCH_SPREAD_MS ?? 3_000)));
const WARMUP = env.BENCH_WARMUP !== '0';
// By default the streams start evenly over BENCH_RAMP_MS (1 s: 1,000 new streams a second, all
// 1,000 open together for most of the run) and the upstream takes BENCH_TTFT_MS (500 ms, a fast
// model) to its first token. BENCH_RAMP_MS=0 starts them all in the same instant (a burst: the
// gateway's CPU per request, ~0.5 ms on its one core, then queues the last ones behind the first);
// BENCH_TTFT_MS=0 makes the first token immediate.
const RAMP_MS = Math.min(10_000, Math.max(0, Number(env.BENCH_RAMP_MS ?? 1_000)));
const TTFT_MS = Math.min(10_000, Math.max(0, Number(env.BENCH_TTFT_MS ?? 500)));
const ROUND_LIMIT_MS = 60_000;
const UPSTREAM_KEY = 'sk-or-v1-bench';
const TARGET_RATIO = 1.2;
const guard = createRunGuard('bench:concurrency', 5 * 60_000);
const command = commandLine('bench:concurrency', [
  'BENCH_DATABASE_URL',
  'BENCH_REDIS_URL',
  'BENCH_PIN',
  'BENCH_STREAMS',
  'BENCH_SPREAD_MS',
  'BENCH_RAMP_MS',
  'BENCH_TTFT_MS',
  'BENCH_WARMUP',
  'BENCH_UPSTREAM_MAX_CONNECTIONS',
  'BENCH_QUICK',
]);
const config = env.BENCH_DATABASE_URL
  ? env.BENCH_REDIS_URL
    ? 'Postgres + Redis'
    : 'Postgres'
  : env.BENCH_REDIS_URL
    ? 'PGlite + Redis'
    : 'PGlite';

// Cores as in bench/run.ts: the gateway on core 1; this process (the clients) and the upstream on core 0.
const pin =
  env.BENCH_PIN !== '0' &&
  (() => {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

const body = JSON.stringify({
  model: 'openai/gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in ten tokens.' }],
  max_tokens: 32,
  stream: true,
  stream_options: { include_usage: true },
  bench_spread_ms: SPREAD_MS,
  bench_ttft_ms: TTFT_MS,
});

interface Round {
  firstContent: number[];
  full: number[];
  ok: number;
  failed: Map<string, number>;
  wallMs: number;
}

interface UpstreamStats {
  open: number;
  maxOpen: number;
  arrivals: number[];
  sent: { bytes: number; complete: boolean }[];
}

const upstreamStats = async (port: number, reset: boolean): Promise<UpstreamStats> =>
  (
    await fetch(`http://127.0.0.1:${port}/bench/${reset ? 'reset' : 'stats'}`, {
      method: reset ? 'POST' : 'GET',
      signal: AbortSignal.timeout(10_000),
    })
  ).json() as Promise<UpstreamStats>;

/** One stream: ms to the first non-empty content chunk and to the end; throws unless 200 with [DONE]. */
async function oneStream(
  agent: Agent,
  origin: string,
  path: string,
  headers: Record<string, string>,
  t0: number,
  signal: AbortSignal,
): Promise<{ first: number; full: number }> {
  const res = await request(`${origin}${path}`, { method: 'POST', headers, body, dispatcher: agent, signal });
  if (res.statusCode !== 200) {
    await res.body.text().catch(() => '');
    throw new Error(`HTTP ${res.statusCode}`);
  }
  let first = 0;
  let last = '';
  for await (const chunk of res.body) {
    const s = (chunk as Buffer).toString('latin1');
    if (!first && /"content":"[^"]/.test(last + s)) first = performance.now() - t0;
    last = (last + s).slice(-256);
  }
  if (!first) throw new Error('no content chunk');
  if (!last.includes('[DONE]')) throw new Error('stream ended without [DONE]');
  return { first, full: performance.now() - t0 };
}

/** STREAMS requests started in one go (a fresh agent allowing that many sockets), bounded by ROUND_LIMIT_MS. */
async function round(origin: string, path: string, headers: Record<string, string>, agent: Agent): Promise<Round> {
  const signal = AbortSignal.timeout(ROUND_LIMIT_MS);
  setMaxListeners(STREAMS + 10, signal); // one listener per request on the round's shared deadline
  const r: Round = { firstContent: [], full: [], ok: 0, failed: new Map(), wallMs: 0 };
  const t0 = performance.now();
  // Request i starts at t0 + i·RAMP/STREAMS; its times count from its own start.
  const startAt = (i: number) =>
    new Promise<number>((resolve) => {
      const due = t0 + (RAMP_MS * i) / STREAMS;
      const wait = due - performance.now();
      if (wait <= 0) resolve(performance.now());
      else setTimeout(() => resolve(performance.now()), wait);
    });
  await Promise.all(
    Array.from({ length: STREAMS }, (_, i) =>
      startAt(i)
        .then((start) => oneStream(agent, origin, path, headers, start, signal))
        .then(
          (t) => {
            r.ok++;
            r.firstContent.push(t.first);
            r.full.push(t.full);
          },
          (err: Error & { code?: string }) => {
            const k = err.code ?? err.message;
            r.failed.set(k, (r.failed.get(k) ?? 0) + 1);
          },
        ),
    ),
  );
  r.wallMs = performance.now() - t0;
  return r;
}

async function measure(name: string, upstreamPort: number, origin: string, path: string, headers: Record<string, string>) {
  // One agent per target, kept across the warm-up and the measured round (keep-alive sockets).
  const agent = new Agent({
    connections: STREAMS + 100,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: ROUND_LIMIT_MS,
    bodyTimeout: ROUND_LIMIT_MS,
  });
  guard.push(() => agent.destroy().catch(() => undefined));
  if (WARMUP) {
    const w = await round(origin, path, headers, agent);
    console.log(`${name}, warm-up (unrecorded): ${w.ok} ok, ${STREAMS - w.ok} failed in ${(w.wallMs / 1000).toFixed(1)} s`);
  }
  await upstreamStats(upstreamPort, true);
  const r = await round(origin, path, headers, agent);
  const up = await upstreamStats(upstreamPort, false);
  const arrivals = [...up.arrivals].sort((a, b) => a - b);
  const failed = [...r.failed].map(([k, n]) => `${k}×${n}`).join(', ') || '0';
  console.log(
    `${name}: ${r.ok} ok, failed ${failed}; at the upstream ${up.maxOpen} open at once, ${arrivals.length} arrived (first ${arrivals[0]?.toFixed(0)} ms, last ${arrivals.at(-1)?.toFixed(0)} ms after the start); ` +
      `first content p50 ${percentile(r.firstContent, 50).toFixed(1)} ms p99 ${percentile(r.firstContent, 99).toFixed(1)} ms; full stream p50 ${percentile(r.full, 50).toFixed(0)} ms p99 ${percentile(r.full, 99).toFixed(0)} ms; round ${(r.wallMs / 1000).toFixed(1)} s`,
  );
  await agent.close().catch(() => undefined);
  return { r, up, arrivals, failed };
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'cmg-bench-conc-'));
  guard.push(async () => rmSync(tmp, { recursive: true, force: true }));
  let nofile = 'unknown';
  try {
    nofile = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    // no sh
  }
  // Each stream through the gateway holds about three sockets on the machine (client, gateway in and out, upstream).
  if (nofile !== 'unlimited' && Number(nofile) < STREAMS * 2 + 200)
    throw new Error(`ulimit -n is ${nofile}: raise it to at least ${STREAMS * 2 + 200} (e.g. \`ulimit -n 65536\` before npm run)`);
  const loadBefore = loadavg();
  console.log(`# bench:concurrency, ${config}: ${machineInfo()}; pinning ${pin ? 'on' : 'off'}; load ${loadBefore}; ulimit -n ${nofile}`);
  const services = pinBenchServices(guard, { pin, databaseUrl: env.BENCH_DATABASE_URL, redisUrl: env.BENCH_REDIS_URL });

  const upstream = await startUpstream(UPSTREAM_KEY, pin ? '0' : undefined);
  guard.push(() => stopChild(upstream.child));
  const gwEnv = await benchGatewayEnv(guard, {
    dataDir: join(tmp, 'data'),
    upstreamPort: upstream.port,
    upstreamKey: UPSTREAM_KEY,
    databaseUrl: env.BENCH_DATABASE_URL,
    redisUrl: env.BENCH_REDIS_URL,
    extra: { UPSTREAM_MAX_CONNECTIONS: env.BENCH_UPSTREAM_MAX_CONNECTIONS ?? '0' },
  });
  const adminToken = gwEnv.ADMIN_TOKEN;
  const gwPort = await freePort();
  const gateway = startGateway({ port: gwPort, env: gwEnv, cwd: tmp, cpus: pin ? '1' : undefined });
  guard.push(() => stopChild(gateway));
  await waitHealthy(gwPort, gateway);
  const key = await createKey(gwPort, adminToken);

  const json = { 'content-type': 'application/json' };
  const direct = await measure('direct', upstream.port, `http://127.0.0.1:${upstream.port}`, '/api/v1/chat/completions', {
    authorization: `Bearer ${UPSTREAM_KEY}`,
    ...json,
  });
  const viaGw = await measure('gateway', upstream.port, `http://127.0.0.1:${gwPort}`, '/v1/chat/completions', {
    authorization: `Bearer ${key}`,
    ...json,
  });

  let metrics: string[] = [];
  try {
    const text = await fetch(`http://127.0.0.1:${gwPort}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
    metrics = text.split('\n').filter((l) => l.startsWith('cmg_upstream_'));
  } catch (err) {
    metrics = [`(scrape failed: ${(err as Error).message})`];
  }
  console.log(metrics.length ? `gateway /metrics, cmg_upstream_*:\n${metrics.join('\n')}` : 'gateway /metrics: no cmg_upstream_* lines');
  const gatewayAlive = gateway.exitCode === null && gateway.signalCode === null;

  const p = (xs: number[], q: number, digits = 1) => (xs.length ? `${percentile(xs, q).toFixed(digits)} ms` : 'n/a');
  const ratio = percentile(viaGw.r.firstContent, 50) / percentile(direct.r.firstContent, 50);
  const spread = (a: number[]) => (a.length ? `${a[0].toFixed(0)}–${a.at(-1)!.toFixed(0)} ms` : 'n/a');
  const allAtOnce = (m: { up: UpstreamStats }) => m.up.maxOpen >= STREAMS;
  const rows = [
    `| Metric | Direct | Gateway | Target | Result |`,
    `| --- | ---: | ---: | --- | --- |`,
    `| Open at the upstream at once (max) | ${direct.up.maxOpen} | ${viaGw.up.maxOpen} | ${STREAMS} via the gateway | ${allAtOnce(viaGw) ? 'PASS' : '**FAIL**'} |`,
    `| Arrivals at the upstream (first–last, after the start) | ${spread(direct.arrivals)} | ${spread(viaGw.arrivals)} | | |`,
    `| Time to first content chunk p50 | ${p(direct.r.firstContent, 50)} | ${p(viaGw.r.firstContent, 50)} | | |`,
    `| Time to first content chunk p99 | ${p(direct.r.firstContent, 99)} | ${p(viaGw.r.firstContent, 99)} | | |`,
    `| Full stream p50 | ${p(direct.r.full, 50, 0)} | ${p(viaGw.r.full, 50, 0)} | | |`,
    `| Full stream p99 | ${p(direct.r.full, 99, 0)} | ${p(viaGw.r.full, 99, 0)} | | |`,
    `| OK / failed | ${direct.r.ok} / ${direct.failed} | ${viaGw.r.ok} / ${viaGw.failed} | ${STREAMS} / 0 | ${viaGw.r.ok === STREAMS ? 'PASS' : '**FAIL**'} |`,
    `| First-content p50, gateway / direct | | ×${ratio.toFixed(2)} | ≤ ${TARGET_RATIO} | ${ratio <= TARGET_RATIO ? 'PASS' : '**FAIL**'} |`,
  ].join('\n');
  console.log(`\n${rows}\n`);
  const md = [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineInfo()}; ulimit -n ${nofile}`,
    `- Gateway code: ${gitRevision()}; ${config}; gateway env UPSTREAM_MAX_CONNECTIONS=${gwEnv.UPSTREAM_MAX_CONNECTIONS}, otherwise as \`npm run bench\` starts it`,
    `- Command: \`${command}\``,
    `- Cores: ${pin ? `gateway pinned to core 1; clients (bench/concurrency.ts) and fake upstream (bench/upstream.ts) share core 0; ${services}` : 'no pinning'}; load average before ${loadBefore}, after ${loadavg()}`,
    '',
    rows,
    '',
    '### Notes',
    '',
    `- Method: ${STREAMS} POST /chat/completions with \`stream: true\` from one undici Agent allowing ${STREAMS + 100} connections per origin, first to the fake upstream directly, then to the gateway (a key made through the admin API, no limits, no thread). ${RAMP_MS > 0 ? `Streams start evenly over ${RAMP_MS / 1000} s (BENCH_RAMP_MS), so all ${STREAMS} are open together for most of the run` : "All streams start in one go (BENCH_RAMP_MS=0: a burst, where the gateway's CPU per request, ~0.5 ms on one core, queues the last ones)"}. Each stream: ${TTFT_MS > 0 ? `headers and a \`: OPENROUTER PROCESSING\` comment at once, the first content chunk after ${TTFT_MS} ms (BENCH_TTFT_MS, a fast model's time to first token)` : 'first content chunk right after the headers'}, nine more spread over ${SPREAD_MS / 1000} s, finish, usage (with cost), [DONE]. ${WARMUP ? `Each target had one unrecorded round of the same ${STREAMS} streams just before (so sockets are open and code compiled; \`BENCH_WARMUP=0\` measures a cold start)` : 'No warm-up round (cold start: connections are set up inside the measured round)'}. Times from each request's own start to the first chunk with non-empty \`content\` and to the end of the body; a stream counts as ok when it answered 200 and ended with [DONE].`,
    `- "Open at the upstream at once": the fake upstream counts a request as open from its arrival until its response closes, and keeps the maximum over the measured round. Below ${STREAMS} via the gateway means the gateway queued the rest before calling the upstream (the first ones stream for ${SPREAD_MS / 1000} s, so every queued one waits at least that long for its first byte).`,
    `- Gateway /metrics after the run (warm-up rounds included), lines starting with \`cmg_upstream_\`${metrics.some((l) => l.includes('_bucket{')) ? ' (histogram buckets left out here; the run prints them)' : ''}: ${metrics.length ? '' : 'none.'}`,
    ...(metrics.length ? ['', '```', ...metrics.filter((l) => !l.includes('_bucket{')), '```'] : []),
    ...(gatewayAlive ? [] : ['- **The gateway process had exited by the end of the run.**']),
  ].join('\n');
  saveResults({ heading: 'Concurrency: 1,000 open streams', body: md, quick });
  if (direct.r.ok !== STREAMS) process.exitCode = 1;
}

void guard.run(main);
