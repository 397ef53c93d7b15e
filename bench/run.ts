// `npm run bench`: the gateway's added latency, throughput and memory against a fast fake upstream,
// direct vs through the gateway, with one load generator. See bench/RESULTS.md for results.
// Env: BENCH_DATABASE_URL (Postgres server; a scratch database is made and dropped),
// BENCH_REDIS_URL, BENCH_CPU_PROF=1 (profile the gateway), BENCH_PIN=0 (no CPU pinning),
// BENCH_QUICK=1 (short smoke run, RESULTS.md untouched).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad, type RunResult, type Target } from './loadgen.js';
import { cpuSeconds, createKey, machineBusySeconds, benchGatewayEnv, eventLoopDelay, freePort, pinBenchServices, startGateway, startReferenceProxy, startUpstream, stopChild, waitHealthy, watchRss } from './procs.js';
import { formatHotSpots } from './profile-summary.js';
import { describeCounts, latencyRows, machineInfo, markdownTable, percentile, saveResults, throughputRow, type Row } from './report.js';
import { describeStalls, measureStalls } from './stalls.js';
import { commandLine, createRunGuard, gitRevision, loadavg } from './bench-env.js';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const profile = env.BENCH_CPU_PROF === '1';
const scale = quick ? 0.2 : 1;
const secs = (s: number) => Math.round(s * 1000 * scale);
const RATE = 500;
const MAX_CONNECTIONS = 64;
const TTFB_RATE = 200;
/** Fixed-rate phases run in this many alternating slices per target (see phase()). */
const SLICES = 10;
/** Rounds of unrecorded fixed-rate load (1 s non-stream and 1 s stream per target) before measuring. */
const SETTLE_ROUNDS = 2;
const UPSTREAM_KEY = 'sk-or-v1-bench';

const config = env.BENCH_DATABASE_URL ? (env.BENCH_REDIS_URL ? 'Postgres + Redis' : 'Postgres') : env.BENCH_REDIS_URL ? 'Embedded PGlite + Redis' : 'Embedded PGlite (default)';
const command = commandLine('bench', ['BENCH_DATABASE_URL', 'BENCH_REDIS_URL', 'BENCH_CPU_PROF', 'BENCH_PIN', 'BENCH_QUICK']);

// Cores: the gateway (and the bare reference proxy, idle while the gateway is measured) get core 1;
// the generator (this process) and the upstream share core 0.
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

const STALL_MS = 2_000;

/** Spins on each core for a moment (see bench/stalls.ts): how much of it the machine takes away. */
function checkStalls(when: string): string[] {
  if (!pin) return [];
  const lines = ['0', '1'].flatMap((core) => {
    const s = measureStalls(core, secs(STALL_MS / 1000));
    return s ? [`${when} the phases, ${describeStalls(s)}`] : [];
  });
  for (const l of lines) console.log(`stalls: ${l}`);
  return lines;
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'cmg-bench-'));
  guard.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const quiet = await waitForQuiet();
  console.log(`# ${config}: ${machineInfo()}; pinning ${pin ? 'on' : 'off'}; load ${loadavg()}; ${quiet}`);

  // The gateway's core is its own: the local Postgres and Redis (when used) run on core 0 too.
  const services = pinBenchServices(guard, { pin, databaseUrl: env.BENCH_DATABASE_URL, redisUrl: env.BENCH_REDIS_URL });
  console.log(`cores: ${services}`);
  const stallsBefore = checkStalls('before');

  const upstream = await startUpstream(UPSTREAM_KEY, cores.upstream);
  guard.push(() => stopChild(upstream.child));

  const gwEnv = await benchGatewayEnv(guard, {
    dataDir: join(tmp, 'data'),
    upstreamPort: upstream.port,
    upstreamKey: UPSTREAM_KEY,
    databaseUrl: env.BENCH_DATABASE_URL,
    redisUrl: env.BENCH_REDIS_URL,
  });

  const profDir = profile ? mkdtempSync(join(tmpdir(), 'cmg-bench-prof-')) : undefined;
  const gwPort = await freePort();
  const spawnedAt = performance.now();
  const gateway = startGateway({ port: gwPort, env: gwEnv, cwd: tmp, cpus: cores.gateway, cpuProfDir: profDir });
  guard.push(() => stopChild(gateway));
  await waitHealthy(gwPort, gateway);
  const rss = watchRss(gateway.pid!);
  const gwKey = await createKey(gwPort, gwEnv.ADMIN_TOKEN);

  // The yardstick: a bare Hono + undici proxy on the gateway's core, measured in the same run.
  const reference = await startReferenceProxy(upstream.port, UPSTREAM_KEY, cores.gateway);
  guard.push(() => stopChild(reference.child));

  type Via = 'direct' | 'reference' | 'gateway';
  const target = (via: Via, body: string, stream: boolean): Target => {
    const expect = stream ? '[DONE]' : '"choices"';
    const json = { 'content-type': 'application/json' };
    if (via === 'direct') return { port: upstream.port, path: '/api/v1/chat/completions', headers: { authorization: `Bearer ${UPSTREAM_KEY}`, ...json }, body, expect };
    if (via === 'reference') return { port: reference.port, path: '/v1/chat/completions', headers: json, body, expect };
    return { port: gwPort, path: '/v1/chat/completions', headers: { authorization: `Bearer ${gwKey}`, ...json }, body, expect };
  };
  const pidOf: Record<Via, number> = { direct: upstream.child.pid!, reference: reference.child.pid!, gateway: gateway.pid! };

  const checks: string[] = [];
  let allClean = true;
  const cpuNotes: string[] = [];
  let maxOthers = 0;
  const merge = (a: RunResult, b: RunResult): RunResult => {
    for (const [k, n] of b.non2xx) a.non2xx.set(k, (a.non2xx.get(k) ?? 0) + n);
    for (const [k, n] of b.errors) a.errors.set(k, (a.errors.get(k) ?? 0) + n);
    for (const v of b.latency) a.latency.push(v);
    for (const v of b.ttfb) a.ttfb.push(v);
    return { ...a, ok: a.ok + b.ok, okInWindow: a.okInWindow + b.okInWindow, incomplete: a.incomplete + b.incomplete, elapsedMs: a.elapsedMs + b.elapsedMs };
  };
  /**
   * Measures targets in turn, in `slices` rounds of durationMs / slices each (a short unrecorded
   * lead-in before each), so slow spells of a shared machine fall on all of them alike; records
   * counts and the CPU each process used.
   */
  async function phase(name: string, vias: Via[], body: string, stream: boolean, o: { rate?: number; connections: number; durationMs: number }, slices = 1): Promise<Record<Via, RunResult>> {
    const out = {} as Record<Via, RunResult>;
    const cpu = {} as Record<Via, { proxy: number; up: number; gen: number; others: number }>;
    let loop = null as { p99Ms: number; maxMs: number } | null;
    for (let i = 0; i < slices; i++) {
      for (const via of vias) {
        const t = target(via, body, stream);
        const slice = { ...o, durationMs: Math.round(o.durationMs / slices), preconnect: 4 };
        await runLoad(t, { ...slice, durationMs: slices > 1 ? secs(0.2) : secs(0.5), record: false });
        if (via === 'gateway') await eventLoopDelay(gwPort);
        const before = { proxy: cpuSeconds(pidOf[via]), up: cpuSeconds(upstream.child.pid!), gen: process.cpuUsage(), all: machineBusySeconds() };
        const r = await runLoad(t, slice);
        if (via === 'gateway') {
          const d = await eventLoopDelay(gwPort);
          if (d) loop = { p99Ms: Math.max(loop?.p99Ms ?? 0, d.p99Ms), maxMs: Math.max(loop?.maxMs ?? 0, d.maxMs) };
        }
        const gen = process.cpuUsage(before.gen);
        const used = { proxy: via === 'direct' ? 0 : cpuSeconds(pidOf[via]) - before.proxy, up: cpuSeconds(upstream.child.pid!) - before.up, gen: (gen.user + gen.system) / 1e6 };
        const others = Math.max(0, machineBusySeconds() - before.all - used.proxy - used.up - used.gen);
        const c = (cpu[via] ??= { proxy: 0, up: 0, gen: 0, others: 0 });
        c.proxy += used.proxy;
        c.up += used.up;
        c.gen += used.gen;
        c.others += others;
        out[via] = out[via] ? merge(out[via], r) : r;
      }
    }
    for (const via of vias) {
      const r = out[via];
      const c = cpu[via];
      const wall = r.elapsedMs / 1000;
      maxOthers = Math.max(maxOthers, c.others / wall);
      const pct = (v: number) => `${((v / wall) * 100).toFixed(0)}%`;
      const label = `${name}, ${via === 'reference' ? 'bare proxy' : via}`;
      const proxyCpu = via === 'direct' ? '' : `, ${via === 'reference' ? 'bare proxy' : 'gateway'} ${pct(c.proxy)}${r.ok ? ` (${((c.proxy / r.ok) * 1e6).toFixed(0)} µs CPU/req)` : ''}`;
      const loopNote = via === 'gateway' && loop ? `; gateway event-loop delay (worst ${slices > 1 ? 'slice' : 'phase'}): p99 ${loop.p99Ms.toFixed(1)} ms, max ${loop.maxMs.toFixed(1)} ms` : '';
      const cpuLine = `${label}: CPU of one core: generator ${pct(c.gen)}, upstream ${pct(c.up)}${proxyCpu}, other processes ${pct(c.others)}${loopNote}`;
      const { line, clean } = describeCounts(label, r);
      allClean &&= clean;
      checks.push(line);
      cpuNotes.push(cpuLine);
      console.log(`${line}\n  ${cpuLine}`);
    }
    return out;
  }

  const all: Via[] = ['direct', 'reference', 'gateway'];
  /** Unrecorded load on every target, 1 s non-stream then 1 s stream each. */
  const warm = async (o: { rate?: number; connections: number; preconnect?: number }) => {
    for (const via of all) {
      await runLoad(target(via, bodies.plain, false), { ...o, durationMs: secs(1), record: false });
      await runLoad(target(via, bodies.stream, true), { ...o, durationMs: secs(1), record: false });
    }
  };
  // JIT warm-up of every path before anything is measured.
  await warm({ connections: 16 });
  // Settling: the fixed-rate pattern itself, alternated as the phases are. After the saturating
  // warm-up every process (the generator and the bare proxy too) spent its first seconds at a
  // fixed rate compiling and collecting: the first measured slices ran inside that.
  for (let i = 0; i < SETTLE_ROUNDS; i++) await warm({ rate: RATE, connections: 256, preconnect: 4 });

  const warmedAfterMs = performance.now() - spawnedAt;
  const rows: Row[] = [];

  const fixed = { rate: RATE, connections: 256, durationMs: secs(10) };
  const p = await phase(`non-stream @ ${RATE} req/s`, all, bodies.plain, false, fixed, SLICES);
  rows.push(...latencyRows(`Non-stream @ ${RATE} req/s, latency`, p.direct.latency, p.gateway.latency, { p50: 0.5, p99: 2 }, p.reference.latency));
  const s = await phase(`stream @ ${RATE} req/s`, all, bodies.stream, true, fixed, SLICES);
  rows.push(...latencyRows(`Stream @ ${RATE} req/s, full-stream latency`, s.direct.latency, s.gateway.latency, { p50: 0.5, p99: 2 }, s.reference.latency));

  const closed = { connections: MAX_CONNECTIONS, durationMs: secs(8) };
  const m = await phase(`non-stream max, ${MAX_CONNECTIONS} conns`, all, bodies.plain, false, closed);
  rows.push(throughputRow('Non-stream', m.direct, m.gateway, 4000, m.reference));
  const ms = await phase(`stream max, ${MAX_CONNECTIONS} conns`, all, bodies.stream, true, closed);
  rows.push(throughputRow('Stream', ms.direct, ms.gateway, 3000, ms.reference));

  const t = await phase(`stream TTFB @ ${TTFB_RATE} req/s`, all, bodies.ttfb, true, { rate: TTFB_RATE, connections: 256, durationMs: secs(5) }, SLICES);
  rows.push(...latencyRows(`Stream @ ${TTFB_RATE} req/s, time to first byte`, t.direct.ttfb, t.gateway.ttfb, { p50: 1, p99: undefined }, t.reference.ttfb));

  const stallsAfter = checkStalls('after');
  const mem = rss.stop();
  rows.push({ metric: 'Gateway peak RSS', direct: '', gateway: `${mem.peakRssMb.toFixed(0)} MB`, delta: '', target: '≤ 150 MB', pass: mem.peakRssMb <= 150 });

  const table = markdownTable(rows);
  console.log(`\n${table}\n`);
  if (maxOthers > 0.1) console.log(`WARNING: other processes used up to ${(maxOthers * 100).toFixed(0)}% of a core during a phase; the numbers are pessimistic.`);
  console.log(`max-throughput latency p50/p99: non-stream direct ${fmt(m.direct)}, bare proxy ${fmt(m.reference)}, gateway ${fmt(m.gateway)}; stream direct ${fmt(ms.direct)}, bare proxy ${fmt(ms.reference)}, gateway ${fmt(ms.gateway)}`);

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
    `- Cores: ${pin ? `gateway pinned to core 1 (the bare proxy too, idle while the gateway is measured); load generator (bench/run.ts) and fake upstream (bench/upstream.ts) share core 0 (taskset); ${services}` : 'no pinning: all three processes share both cores'}`,
    `- All responses 200 with complete bodies: ${allClean ? 'yes' : '**NO** (see response check)'}`,
    `- Other processes on the machine used up to ${(maxOthers * 100).toFixed(0)}% of a core during a phase${maxOthers > 0.1 ? ' (**noisy run**: numbers are pessimistic)' : ''}.`,
    '',
    table,
    '',
    '### Notes',
    '',
    `- Warm-up, unrecorded: 1 s closed loop per path and target (JIT), then ${SETTLE_ROUNDS} rounds of 1 s non-stream and 1 s stream at ${RATE} req/s per target (settling).`,
    `- Fixed rate: open loop at ${RATE} req/s for ${secs(10) / 1000} s per target, in ${SLICES} slices of ${secs(1) / 1000} s taken in turn (direct, bare proxy, gateway, direct, …), each after a ${secs(0.2) / 1000} s unrecorded lead-in, so the machine's slow spells fall on all three alike; connections are open before a slice's clock starts. Latency from writing the request to the last body byte. Max throughput: closed loop, ${MAX_CONNECTIONS} keep-alive connections, ${secs(8) / 1000} s per target after a 0.5 s unrecorded warm-up. TTFB: ${TTFB_RATE} req/s in slices as above, the upstream pauses 20 ms after its first event.`,
    `- Upstream: bench/upstream.ts, canned JSON and a 13-event SSE stream (comment, 10 content chunks, finish, usage, [DONE]), one write per event. Same request body for direct and gateway.`,
    `- Max-throughput latency p50/p99: non-stream direct ${fmt(m.direct)}, bare proxy ${fmt(m.reference)}, gateway ${fmt(m.gateway)}; stream direct ${fmt(ms.direct)}, bare proxy ${fmt(ms.reference)}, gateway ${fmt(ms.gateway)}.`,
    `- Bare proxy, same run: bench/reference-proxy.ts, a bare Hono app that forwards with undici's \`request\` over a keep-alive Pool (no keys, ledger, metrics or memory), pinned to the gateway's core with the gateway's node flags. Its column is what the machine allows a proxy at all; the gateway's cost for its features is the difference.`,
    `- Gateway event-loop delay (in the CPU lines below): the gateway's own \`cmg_event_loop_delay_seconds\` from its /metrics, scraped before and after each slice (a scrape resets it); the worst slice of each phase. It includes the machine's stalls of core 1 as well as the gateway's own pauses (GC, synchronous work), so a tail far above it came from elsewhere.`,
    ...(stallsBefore.length
      ? [`- Machine stalls (a spin loop pinned to each core, ${secs(STALL_MS / 1000) / 1000} s; gaps over 0.1 ms are time the core was taken away): ${[...stallsBefore, ...stallsAfter].join('; ')}. A request through the gateway crosses both cores, so stalls on either add to its p99; a direct request only feels core 0's.`]
      : []),
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
