// `npm run bench`: the gateway's added latency, throughput and memory against a fast fake upstream,
// direct vs through the gateway, with one load generator. See bench/RESULTS.md for results.
// Env: BENCH_DATABASE_URL (Postgres server; a scratch database is made and dropped),
// BENCH_REDIS_URL, BENCH_CPU_PROF=1 (profile the gateway), BENCH_PIN=0 (no CPU pinning),
// BENCH_QUICK=1 (short smoke run, RESULTS.md untouched).

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad, type RunResult, type Target } from './loadgen.js';
import { cpuSeconds, createKey, machineBusySeconds, createScratchDatabase, freePort, pinServices, startGateway, startUpstream, stopChild, waitHealthy, watchRss } from './procs.js';
import { formatHotSpots } from './profile-summary.js';
import { describeCounts, latencyRows, machineInfo, markdownTable, percentile, saveResults, throughputRow, type Row } from './report.js';
import { commandLine, createRunGuard, gitRevision, loadavg, redactUrl } from './bench-env.js';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const profile = env.BENCH_CPU_PROF === '1';
const scale = quick ? 0.2 : 1;
const secs = (s: number) => Math.round(s * 1000 * scale);
const RATE = 500;
const MAX_CONNECTIONS = 64;
const TTFB_RATE = 200;
const UPSTREAM_KEY = 'sk-or-v1-bench';

const config = env.BENCH_DATABASE_URL ? (env.BENCH_REDIS_URL ? 'Postgres + Redis' : 'Postgres') : env.BENCH_REDIS_URL ? 'Embedded PGlite + Redis' : 'Embedded PGlite (default)';
const command = commandLine('bench', ['BENCH_DATABASE_URL', 'BENCH_REDIS_URL', 'BENCH_CPU_PROF', 'BENCH_PIN', 'BENCH_QUICK']);

// Cores: the gateway gets core 1 to itself; the generator (this process) and the upstream share core 0.
const pin = env.BENCH_PIN !== '0' && (() => { try { execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' }); return true; } catch { return false; } })();
const cores = pin ? { upstream: '0', gateway: '1' } : { upstream: undefined, gateway: undefined };

const guard = createRunGuard('bench', 5 * 60_000);

const msgs = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello in ten tokens.' },
];
const bodies = {
  plain: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: msgs, max_tokens: 32 }),
  stream: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: msgs, max_tokens: 32, stream: true, stream_options: { include_usage: true } }),
  ttfb: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: msgs, max_tokens: 32, stream: true, stream_options: { include_usage: true }, bench_gap_ms: 20 }),
};

/** Waits (at most BENCH_QUIET_WAIT_S, default 30 s) for other load on the machine to drop under 15% of a core. */
async function waitForQuiet(): Promise<string> {
  const deadline = Date.now() + Number(env.BENCH_QUIET_WAIT_S ?? 30) * 1000;
  for (;;) {
    const b0 = machineBusySeconds();
    await new Promise((r) => setTimeout(r, 1_000));
    const busy = machineBusySeconds() - b0;
    if (busy < 0.15 || Date.now() > deadline) return `${(busy * 100).toFixed(0)}% of a core busy before the start`;
  }
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'cmg-bench-'));
  guard.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const quiet = await waitForQuiet();
  console.log(`# ${config}: ${machineInfo()}; pinning ${pin ? 'on' : 'off'}; load ${loadavg()}; ${quiet}`);

  // The gateway's core is its own: the local Postgres and Redis (when used) run on core 0 too.
  let services = 'local services not pinned';
  if (pin && (env.BENCH_DATABASE_URL || env.BENCH_REDIS_URL)) {
    const pinnedServices = pinServices([...(env.BENCH_DATABASE_URL ? ['postgres'] : []), ...(env.BENCH_REDIS_URL ? ['redis-server'] : [])], '0');
    guard.push(async () => pinnedServices.restore());
    services = pinnedServices.note;
  }
  console.log(`cores: ${services}`);

  const upstream = await startUpstream(UPSTREAM_KEY, cores.upstream);
  guard.push(() => stopChild(upstream.child));

  const gwEnv: Record<string, string> = {
    DATA_DIR: join(tmp, 'data'),
    OPENROUTER_API_KEY: UPSTREAM_KEY,
    OPENROUTER_BASE_URL: `http://127.0.0.1:${upstream.port}/api/v1`,
    ADMIN_TOKEN: randomBytes(24).toString('hex'),
    LOG_LEVEL: 'warn',
  };
  if (env.BENCH_DATABASE_URL) {
    const db = await createScratchDatabase(env.BENCH_DATABASE_URL);
    guard.push(db.drop);
    gwEnv.DATABASE_URL = db.url;
    console.log(`scratch database: ${redactUrl(db.url)}`);
  }
  if (env.BENCH_REDIS_URL) gwEnv.REDIS_URL = env.BENCH_REDIS_URL;

  const profDir = profile ? mkdtempSync(join(tmpdir(), 'cmg-bench-prof-')) : undefined;
  const gwPort = await freePort();
  const spawnedAt = performance.now();
  const gateway = startGateway({ port: gwPort, env: gwEnv, cwd: tmp, cpus: cores.gateway, cpuProfDir: profDir });
  guard.push(() => stopChild(gateway));
  await waitHealthy(gwPort, gateway);
  const rss = watchRss(gateway.pid!);
  const gwKey = await createKey(gwPort, gwEnv.ADMIN_TOKEN);

  const target = (via: 'direct' | 'gateway', body: string, stream: boolean): Target =>
    via === 'direct'
      ? { port: upstream.port, path: '/api/v1/chat/completions', headers: { authorization: `Bearer ${UPSTREAM_KEY}`, 'content-type': 'application/json' }, body, expect: stream ? '[DONE]' : '"choices"' }
      : { port: gwPort, path: '/v1/chat/completions', headers: { authorization: `Bearer ${gwKey}`, 'content-type': 'application/json' }, body, expect: stream ? '[DONE]' : '"choices"' };

  const checks: string[] = [];
  let allClean = true;
  const cpuNotes: string[] = [];
  let maxOthers = 0;
  /** Warms up briefly, then measures one phase, recording counts and the CPU each process used. */
  async function phase(name: string, t: Target, o: { rate?: number; connections: number; durationMs: number }): Promise<RunResult> {
    await runLoad(t, { ...o, durationMs: secs(0.5), record: false });
    const before = { gw: cpuSeconds(gateway.pid!), up: cpuSeconds(upstream.child.pid!), gen: process.cpuUsage(), all: machineBusySeconds() };
    const r = await runLoad(t, o);
    const wall = r.elapsedMs / 1000;
    const gen = process.cpuUsage(before.gen);
    const used = { gw: cpuSeconds(gateway.pid!) - before.gw, up: cpuSeconds(upstream.child.pid!) - before.up, gen: (gen.user + gen.system) / 1e6 };
    const others = Math.max(0, machineBusySeconds() - before.all - used.gw - used.up - used.gen);
    maxOthers = Math.max(maxOthers, others / wall);
    const pct = (s: number) => `${((s / wall) * 100).toFixed(0)}%`;
    const perReq = r.ok ? ` (gateway ${((used.gw / r.ok) * 1e6).toFixed(0)} µs CPU/req)` : '';
    const cpuLine = `${name}: CPU of one core: generator ${pct(used.gen)}, upstream ${pct(used.up)}, gateway ${pct(used.gw)}, other processes ${pct(others)}${t.port === gwPort ? perReq : ''}`;
    const { line, clean } = describeCounts(name, r);
    allClean &&= clean;
    checks.push(line);
    cpuNotes.push(cpuLine);
    console.log(`${line}\n  ${cpuLine}`);
    return r;
  }

  // JIT warm-up of every path before anything is measured.
  for (const via of ['direct', 'gateway'] as const) {
    await runLoad(target(via, bodies.plain, false), { connections: 16, durationMs: secs(1), record: false });
    await runLoad(target(via, bodies.stream, true), { connections: 16, durationMs: secs(1), record: false });
  }

  const warmedAfterMs = performance.now() - spawnedAt;
  const rows: Row[] = [];
  const both = async (name: string, body: string, stream: boolean, o: { rate?: number; connections: number; durationMs: number }) => {
    const d = await phase(`${name}, direct`, target('direct', body, stream), o);
    const g = await phase(`${name}, gateway`, target('gateway', body, stream), o);
    return [d, g] as const;
  };

  const fixed = { rate: RATE, connections: 256, durationMs: secs(10) };
  const [pd, pg] = await both(`non-stream @ ${RATE} req/s`, bodies.plain, false, fixed);
  rows.push(...latencyRows(`Non-stream @ ${RATE} req/s, latency`, pd.latency, pg.latency, { p50: 0.5, p99: 2 }));
  const [sd, sg] = await both(`stream @ ${RATE} req/s`, bodies.stream, true, fixed);
  rows.push(...latencyRows(`Stream @ ${RATE} req/s, full-stream latency`, sd.latency, sg.latency, { p50: 0.5, p99: 2 }));

  const closed = { connections: MAX_CONNECTIONS, durationMs: secs(8) };
  const [md, mg] = await both(`non-stream max, ${MAX_CONNECTIONS} conns`, bodies.plain, false, closed);
  rows.push(throughputRow('Non-stream', md, mg, 4000));
  const [msd, msg] = await both(`stream max, ${MAX_CONNECTIONS} conns`, bodies.stream, true, closed);
  rows.push(throughputRow('Stream', msd, msg, 3000));

  const [td, tg] = await both(`stream TTFB @ ${TTFB_RATE} req/s`, bodies.ttfb, true, { rate: TTFB_RATE, connections: 256, durationMs: secs(5) });
  rows.push(...latencyRows(`Stream @ ${TTFB_RATE} req/s, time to first byte`, td.ttfb, tg.ttfb, { p50: 1, p99: undefined }));

  const mem = rss.stop();
  rows.push({ metric: 'Gateway peak RSS', direct: '', gateway: `${mem.peakRssMb.toFixed(0)} MB`, delta: '', target: '≤ 150 MB', pass: mem.peakRssMb <= 150 });

  const table = markdownTable(rows);
  console.log(`\n${table}\n`);
  if (maxOthers > 0.1) console.log(`WARNING: other processes used up to ${(maxOthers * 100).toFixed(0)}% of a core during a phase; the numbers are pessimistic.`);
  console.log(`max-throughput latency p50/p99: non-stream direct ${fmt(md)}, gateway ${fmt(mg)}; stream direct ${fmt(msd)}, gateway ${fmt(msg)}`);

  await stopChild(gateway);
  let hot = '';
  if (profDir) {
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    hot = file ? formatHotSpots(join(profDir, file), 25, warmedAfterMs) : `no .cpuprofile was written in ${profDir}`;
    console.log(`\n${hot}\n(profile kept in ${profDir})`);
  }

  const body = [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineInfo()}`,
    `- Gateway code: ${gitRevision()}`,
    `- Command: \`${command}\``,
    `- Cores: ${pin ? `gateway pinned to core 1 alone; load generator (bench/run.ts) and fake upstream (bench/upstream.ts) share core 0 (taskset); ${services}` : 'no pinning: all three processes share both cores'}`,
    `- All responses 200 with complete bodies: ${allClean ? 'yes' : '**NO** (see response check)'}`,
    `- Other processes on the machine used up to ${(maxOthers * 100).toFixed(0)}% of a core during a phase${maxOthers > 0.1 ? ' (**noisy run**: numbers are pessimistic)' : ''}.`,
    '',
    table,
    '',
    '### Notes',
    '',
    `- Fixed rate: open loop at ${RATE} req/s for ${secs(10) / 1000} s per target; latency from writing the request to the last body byte. Max throughput: closed loop, ${MAX_CONNECTIONS} keep-alive connections, ${secs(8) / 1000} s per target. TTFB: ${TTFB_RATE} req/s, the upstream pauses 20 ms after its first event. Each phase has a 0.5 s unrecorded warm-up.`,
    `- Upstream: bench/upstream.ts, canned JSON and a 13-event SSE stream (comment, 10 content chunks, finish, usage, [DONE]), one write per event. Same request body for direct and gateway.`,
    `- Max-throughput latency p50/p99: non-stream direct ${fmt(md)}, gateway ${fmt(mg)}; stream direct ${fmt(msd)}, gateway ${fmt(msg)}.`,
    `- Gateway peak RSS ${mem.peakRssMb.toFixed(1)} MB (VmHWM ${mem.hwmMb.toFixed(1)} MB, VmRSS polled every 100 ms: ${mem.polledPeakMb.toFixed(1)} MB).`,
    '',
    'CPU per phase (share of one core):',
    '',
    ...cpuNotes.map((l) => `- ${l}`),
    '',
    'Response check:',
    '',
    ...checks.map((l) => `- ${l}`),
  ].join('\n');
  saveResults({ heading: config, body, quick, profile: profile ? { command, hot, table } : undefined });
  if (!allClean) process.exitCode = 1;
}

const fmt = (r: RunResult) => `${percentile(r.latency, 50).toFixed(2)}/${percentile(r.latency, 99).toFixed(2)} ms`;


void guard.run(main);
