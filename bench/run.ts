// `npm run bench`: the gateway's added latency, throughput and memory against a fast fake upstream,
// direct vs through the gateway, with one load generator, for chat completions and then, in the same
// run (same gateway, same upstream), the Responses API: its added latency and throughput with
// `store: false` (the proxy path, as chat's), the default `store: true` at the fixed rate (the cost of
// keeping the response), and what a `previous_response_id` rebuild on a 50-turn chain adds.
// See bench/RESULTS.md for results.
// Env: BENCH_DATABASE_URL (Postgres server; a scratch database is made and dropped),
// BENCH_REDIS_URL, BENCH_CPU_PROF=1 (profile the gateway), BENCH_PIN=0 (no CPU pinning),
// BENCH_QUICK=1 (short smoke run, RESULTS.md untouched).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad, type RunResult, type Target } from './loadgen.js';
import {
  cpuSeconds,
  createKey,
  machineBusySeconds,
  benchGatewayEnv,
  eventLoopDelay,
  freePort,
  pinBenchServices,
  startGateway,
  startReferenceProxy,
  startUpstream,
  stopChild,
  waitHealthy,
  watchRss,
} from './procs.js';
import { formatHotSpots } from './profile-summary.js';
import {
  describeCounts,
  latencyRows,
  machineInfo,
  markdownTable,
  percentile,
  saveResults,
  signedMs,
  throughputRow,
  type Row,
} from './report.js';
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
/** The Responses chain: turns stored before the measured call, and the sequential calls of each kind measured on it. */
const CHAIN_TURNS = 50;
const CHAIN_CALLS = quick ? 40 : 200;
const CHAIN_WARM = quick ? 10 : 20;

const config = env.BENCH_DATABASE_URL
  ? env.BENCH_REDIS_URL
    ? 'Postgres + Redis'
    : 'Postgres'
  : env.BENCH_REDIS_URL
    ? 'Embedded PGlite + Redis'
    : 'Embedded PGlite (default)';
const command = commandLine('bench', ['BENCH_DATABASE_URL', 'BENCH_REDIS_URL', 'BENCH_CPU_PROF', 'BENCH_PIN', 'BENCH_QUICK']);

// Cores: the gateway (and the bare reference proxy, idle while the gateway is measured) get core 1;
// the generator (this process) and the upstream share core 0.
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
const cores = pin ? { upstream: '0', gateway: '1' } : { upstream: undefined, gateway: undefined };

// Chat and the Responses API take about 6.5 minutes on a quiet machine, more when backlogs drain
// slowly; the fake upstream exits on its own after 15.
const guard = createRunGuard('bench', 12 * 60_000);

const msgs = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello in ten tokens.' },
];
const bodies = {
  plain: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: msgs, max_tokens: 32 }),
  stream: JSON.stringify({
    model: 'openai/gpt-4o-mini',
    messages: msgs,
    max_tokens: 32,
    stream: true,
    stream_options: { include_usage: true },
  }),
  ttfb: JSON.stringify({
    model: 'openai/gpt-4o-mini',
    messages: msgs,
    max_tokens: 32,
    stream: true,
    stream_options: { include_usage: true },
    bench_gap_ms: 20,
  }),
};
/** The Responses API with chat's messages as its input items. `store: false` is the proxy path (nothing kept); `stored` is the default. */
const responsesBodies = {
  plain: JSON.stringify({ model: 'openai/gpt-4o-mini', input: msgs, max_output_tokens: 32, store: false }),
  stream: JSON.stringify({ model: 'openai/gpt-4o-mini', input: msgs, max_output_tokens: 32, store: false, stream: true }),
  stored: JSON.stringify({ model: 'openai/gpt-4o-mini', input: msgs, max_output_tokens: 32 }),
};

/** What a phase sends: chat or the Responses API, the body, and (Responses) the body of the `stored` target. */
interface Load {
  api: 'chat' | 'responses';
  body: string;
  stream: boolean;
  storedBody?: string;
}
const chat = (body: string, stream: boolean): Load => ({ api: 'chat', body, stream });
const responses = (body: string, stream: boolean): Load => ({
  api: 'responses',
  body,
  stream,
  storedBody: stream ? undefined : responsesBodies.stored,
});

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

  /** `stored`: the gateway with the Responses API's default `store: true` (the load's storedBody). */
  type Via = 'direct' | 'reference' | 'gateway' | 'stored';
  const target = (via: Via, load: Load): Target => {
    const { stream } = load;
    const path = load.api === 'chat' ? '/chat/completions' : '/responses';
    // A Responses stream ends with response.completed (no [DONE]); its JSON says its status.
    const expect = load.api === 'chat' ? (stream ? '[DONE]' : '"choices"') : stream ? 'event: response.completed' : '"status":"completed"';
    const body = via === 'stored' ? load.storedBody! : load.body;
    const json = { 'content-type': 'application/json' };
    if (via === 'direct')
      return { port: upstream.port, path: `/api/v1${path}`, headers: { authorization: `Bearer ${UPSTREAM_KEY}`, ...json }, body, expect };
    if (via === 'reference') return { port: reference.port, path: `/v1${path}`, headers: json, body, expect };
    return { port: gwPort, path: `/v1${path}`, headers: { authorization: `Bearer ${gwKey}`, ...json }, body, expect };
  };
  const pidOf: Record<Via, number> = {
    direct: upstream.child.pid!,
    reference: reference.child.pid!,
    gateway: gateway.pid!,
    stored: gateway.pid!,
  };
  const isGateway = (via: Via) => via === 'gateway' || via === 'stored';
  const viaLabel = (via: Via, load: Load) =>
    via === 'reference'
      ? 'bare proxy'
      : via === 'stored'
        ? 'gateway, store: true'
        : via === 'gateway' && load.api === 'responses'
          ? 'gateway, store: false'
          : via;

  // The run's own database and cache processes (by exact name, as pinBenchServices finds them), so
  // their CPU is not counted as other load; a backend started during a slice is missed.
  const serviceNames = [...(env.BENCH_DATABASE_URL ? ['postgres'] : []), ...(env.BENCH_REDIS_URL ? ['redis-server'] : [])];
  const servicePids = (): number[] =>
    serviceNames.flatMap((n) => {
      try {
        return execFileSync('pgrep', ['-x', n], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });

  const checks: string[] = [];
  let allClean = true;
  const cpuNotes: string[] = [];
  let maxOthers = 0;
  const merge = (a: RunResult, b: RunResult): RunResult => {
    for (const [k, n] of b.non2xx) a.non2xx.set(k, (a.non2xx.get(k) ?? 0) + n);
    for (const [k, n] of b.errors) a.errors.set(k, (a.errors.get(k) ?? 0) + n);
    for (const v of b.latency) a.latency.push(v);
    for (const v of b.ttfb) a.ttfb.push(v);
    return {
      ...a,
      ok: a.ok + b.ok,
      okInWindow: a.okInWindow + b.okInWindow,
      incomplete: a.incomplete + b.incomplete,
      elapsedMs: a.elapsedMs + b.elapsedMs,
    };
  };
  /**
   * Measures targets in turn, in `slices` rounds of durationMs / slices each (a short unrecorded
   * lead-in before each), so slow spells of a shared machine fall on all of them alike; records
   * counts and the CPU each process used.
   */
  async function phase(
    name: string,
    vias: Via[],
    load: Load,
    o: { rate?: number; connections: number; durationMs: number },
    slices = 1,
  ): Promise<Record<Via, RunResult>> {
    const out = {} as Record<Via, RunResult>;
    const cpu = {} as Record<Via, { proxy: number; up: number; gen: number; gwIdle: number; services: number; others: number }>;
    const loops = {} as Partial<Record<Via, { p99Ms: number; maxMs: number }>>;
    for (let i = 0; i < slices; i++) {
      for (const via of vias) {
        const t = target(via, load);
        const slice = { ...o, durationMs: Math.round(o.durationMs / slices), preconnect: 4 };
        await runLoad(t, { ...slice, durationMs: slices > 1 ? secs(0.2) : secs(0.5), record: false });
        if (isGateway(via)) await eventLoopDelay(gwPort);
        const svcPids = servicePids();
        const before = {
          proxy: cpuSeconds(pidOf[via]),
          gw: cpuSeconds(gateway.pid!),
          svc: cpuOf(svcPids),
          up: cpuSeconds(upstream.child.pid!),
          gen: process.cpuUsage(),
          all: machineBusySeconds(),
        };
        const r = await runLoad(t, slice);
        if (isGateway(via)) {
          const d = await eventLoopDelay(gwPort);
          const loop = loops[via];
          if (d) loops[via] = { p99Ms: Math.max(loop?.p99Ms ?? 0, d.p99Ms), maxMs: Math.max(loop?.maxMs ?? 0, d.maxMs) };
        }
        const gen = process.cpuUsage(before.gen);
        const used = {
          proxy: via === 'direct' ? 0 : cpuSeconds(pidOf[via]) - before.proxy,
          // The gateway's own CPU while another target is measured (background work it still does).
          gwIdle: isGateway(via) ? 0 : cpuSeconds(gateway.pid!) - before.gw,
          services: cpuDelta(before.svc, cpuOf(svcPids)),
          up: cpuSeconds(upstream.child.pid!) - before.up,
          gen: (gen.user + gen.system) / 1e6,
        };
        const others = Math.max(0, machineBusySeconds() - before.all - used.proxy - used.gwIdle - used.services - used.up - used.gen);
        const c = (cpu[via] ??= { proxy: 0, up: 0, gen: 0, gwIdle: 0, services: 0, others: 0 });
        c.proxy += used.proxy;
        c.gwIdle += used.gwIdle;
        c.services += used.services;
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
      const label = `${name}, ${viaLabel(via, load)}`;
      const proxyCpu =
        via === 'direct'
          ? ''
          : `, ${via === 'reference' ? 'bare proxy' : 'gateway'} ${pct(c.proxy)}${r.ok ? ` (${((c.proxy / r.ok) * 1e6).toFixed(0)} µs CPU/req)` : ''}`;
      const loop = loops[via];
      const loopNote =
        isGateway(via) && loop
          ? `; gateway event-loop delay (worst ${slices > 1 ? 'slice' : 'phase'}): p99 ${loop.p99Ms.toFixed(1)} ms, max ${loop.maxMs.toFixed(1)} ms`
          : '';
      const idle = isGateway(via) ? '' : `, gateway (not the target) ${pct(c.gwIdle)}`;
      const svc = serviceNames.length ? `, ${serviceNames.join(' + ')} ${pct(c.services)}` : '';
      const cpuLine = `${label}: CPU of one core: generator ${pct(c.gen)}, upstream ${pct(c.up)}${proxyCpu}${idle}${svc}, other processes ${pct(c.others)}${loopNote}`;
      const { line, clean } = describeCounts(label, r);
      allClean &&= clean;
      checks.push(line);
      cpuNotes.push(cpuLine);
      console.log(`${line}\n  ${cpuLine}`);
    }
    return out;
  }

  const all: Via[] = ['direct', 'reference', 'gateway'];
  /** Unrecorded load on every target, 1 s non-stream then 1 s stream each (Responses: and 1 s with the default store). */
  const warm = async (o: { rate?: number; connections: number; preconnect?: number }, api: 'chat' | 'responses' = 'chat') => {
    const [plain, stream] =
      api === 'chat'
        ? [chat(bodies.plain, false), chat(bodies.stream, true)]
        : [responses(responsesBodies.plain, false), responses(responsesBodies.stream, true)];
    for (const via of all) {
      await runLoad(target(via, plain), { ...o, durationMs: secs(1), record: false });
      await runLoad(target(via, stream), { ...o, durationMs: secs(1), record: false });
    }
    if (api === 'responses') await runLoad(target('stored', plain), { ...o, durationMs: secs(1), record: false });
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
  const p = await phase(`non-stream @ ${RATE} req/s`, all, chat(bodies.plain, false), fixed, SLICES);
  rows.push(
    ...latencyRows(`Non-stream @ ${RATE} req/s, latency`, p.direct.latency, p.gateway.latency, { p50: 0.5, p99: 2 }, p.reference.latency),
  );
  const s = await phase(`stream @ ${RATE} req/s`, all, chat(bodies.stream, true), fixed, SLICES);
  rows.push(
    ...latencyRows(
      `Stream @ ${RATE} req/s, full-stream latency`,
      s.direct.latency,
      s.gateway.latency,
      { p50: 0.5, p99: 2 },
      s.reference.latency,
    ),
  );

  const closed = { connections: MAX_CONNECTIONS, durationMs: secs(8) };
  const m = await phase(`non-stream max, ${MAX_CONNECTIONS} conns`, all, chat(bodies.plain, false), closed);
  rows.push(throughputRow('Non-stream', m.direct, m.gateway, 4000, m.reference));
  const ms = await phase(`stream max, ${MAX_CONNECTIONS} conns`, all, chat(bodies.stream, true), closed);
  rows.push(throughputRow('Stream', ms.direct, ms.gateway, 3000, ms.reference));

  const t = await phase(
    `stream TTFB @ ${TTFB_RATE} req/s`,
    all,
    chat(bodies.ttfb, true),
    { rate: TTFB_RATE, connections: 256, durationMs: secs(5) },
    SLICES,
  );
  rows.push(
    ...latencyRows(
      `Stream @ ${TTFB_RATE} req/s, time to first byte`,
      t.direct.ttfb,
      t.gateway.ttfb,
      { p50: 1, p99: undefined },
      t.reference.ttfb,
    ),
  );
  // Chat's peak as before; the Responses phases get a watcher (and a row) of their own.
  const chatMem = rss.stop();
  const responsesRss = watchRss(gateway.pid!);

  // The Responses API, same gateway and upstream, after chat's phases (which run as before): its own
  // JIT warm-up and settling, then the same fixed-rate and closed-loop phases. `store: false` is the
  // proxy path like chat's; the non-stream phase also takes the default `store: true` in turn with
  // the others, so what keeping the response costs shows beside it. No targets of its own yet.
  await warm({ connections: 16 }, 'responses');
  for (let i = 0; i < SETTLE_ROUNDS; i++) await warm({ rate: RATE, connections: 256, preconnect: 4 }, 'responses');
  const rp = await phase(`responses non-stream @ ${RATE} req/s`, all, responses(responsesBodies.plain, false), fixed, SLICES);
  rows.push(
    ...latencyRows(
      `Responses non-stream @ ${RATE} req/s, store: false, latency`,
      rp.direct.latency,
      rp.gateway.latency,
      {},
      rp.reference.latency,
    ),
  );
  const rs = await phase(`responses stream @ ${RATE} req/s`, all, responses(responsesBodies.stream, true), fixed, SLICES);
  rows.push(
    ...latencyRows(
      `Responses stream @ ${RATE} req/s, store: false, full-stream latency`,
      rs.direct.latency,
      rs.gateway.latency,
      {},
      rs.reference.latency,
    ),
  );
  // The default store in a phase of its own (with direct in turn), after the store: false ones, so
  // the database's writes do not spill into their slices.
  const rw = await phase(
    `responses non-stream @ ${RATE} req/s, default store`,
    ['direct', 'stored'],
    responses(responsesBodies.plain, false),
    fixed,
    SLICES,
  );
  rows.push(
    ...latencyRows(`Responses non-stream @ ${RATE} req/s, store: true (default), latency`, rw.direct.latency, rw.stored.latency, {}),
  );
  const rm = await phase(
    `responses non-stream max, ${MAX_CONNECTIONS} conns`,
    [...all, 'stored'],
    responses(responsesBodies.plain, false),
    closed,
  );
  rows.push(throughputRow('Responses non-stream, store: false,', rm.direct, rm.gateway, undefined, rm.reference));
  rows.push(throughputRow('Responses non-stream, store: true (default),', rm.direct, rm.stored, undefined, rm.reference));
  const rms = await phase(`responses stream max, ${MAX_CONNECTIONS} conns`, all, responses(responsesBodies.stream, true), closed);
  rows.push(throughputRow('Responses stream, store: false,', rms.direct, rms.gateway, undefined, rms.reference));
  const storeCost = (['p50', 'p99'] as const).map((q) => {
    const n = q === 'p50' ? 50 : 99;
    return `${q} ${(percentile(rw.stored.latency, n) - percentile(rp.gateway.latency, n)).toFixed(2)} ms`;
  });

  const rebuild = await chainRebuild({ gwPort, gwKey, upstreamPort: upstream.port });
  if (!rebuild.clean) allClean = false;
  checks.push(...rebuild.checks);

  const stallsAfter = checkStalls('after');
  const mem = responsesRss.stop();
  rows.push({
    metric: 'Gateway peak RSS',
    direct: '',
    gateway: `${chatMem.peakRssMb.toFixed(0)} MB`,
    delta: '',
    target: '≤ 150 MB',
    pass: chatMem.peakRssMb <= 150,
  });
  rows.push({
    metric: 'Gateway peak RSS, Responses phases',
    direct: '',
    gateway: `${mem.polledPeakMb.toFixed(0)} MB`,
    delta: '',
    target: '≤ 150 MB',
    pass: mem.polledPeakMb <= 150,
  });

  const table = markdownTable(rows);
  console.log(`\n${table}\n\n${rebuild.table}\n\n${rebuild.note}\n`);
  if (maxOthers > 0.1)
    console.log(
      `WARNING: other processes used up to ${(maxOthers * 100).toFixed(0)}% of a core during a phase; the numbers are pessimistic.`,
    );
  console.log(
    `max-throughput latency p50/p99: non-stream direct ${fmt(m.direct)}, bare proxy ${fmt(m.reference)}, gateway ${fmt(m.gateway)}; stream direct ${fmt(ms.direct)}, bare proxy ${fmt(ms.reference)}, gateway ${fmt(ms.gateway)}`,
  );
  console.log(
    `responses max-throughput latency p50/p99: non-stream direct ${fmt(rm.direct)}, bare proxy ${fmt(rm.reference)}, gateway ${fmt(rm.gateway)}, gateway with store: true ${fmt(rm.stored)}; stream direct ${fmt(rms.direct)}, bare proxy ${fmt(rms.reference)}, gateway ${fmt(rms.gateway)}; store: true over store: false at ${RATE} req/s: ${storeCost.join(', ')}`,
  );

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
    `### Responses API: \`previous_response_id\` on a ${CHAIN_TURNS}-turn chain`,
    '',
    rebuild.table,
    '',
    rebuild.note,
    '',
    '### Notes',
    '',
    `- Warm-up, unrecorded: 1 s closed loop per path and target (JIT), then ${SETTLE_ROUNDS} rounds of 1 s non-stream and 1 s stream at ${RATE} req/s per target (settling).`,
    `- Fixed rate: open loop at ${RATE} req/s for ${secs(10) / 1000} s per target, in ${SLICES} slices of ${secs(1) / 1000} s taken in turn (direct, bare proxy, gateway, direct, …), each after a ${secs(0.2) / 1000} s unrecorded lead-in, so the machine's slow spells fall on all three alike; connections are open before a slice's clock starts. Latency from writing the request to the last body byte. Max throughput: closed loop, ${MAX_CONNECTIONS} keep-alive connections, ${secs(8) / 1000} s per target after a 0.5 s unrecorded warm-up. TTFB: ${TTFB_RATE} req/s in slices as above, the upstream pauses 20 ms after its first event.`,
    `- Upstream: bench/upstream.ts, canned JSON and a 13-event SSE stream (comment, 10 content chunks, finish, usage, [DONE]), one write per event. Same request body for direct and gateway.`,
    `- Max-throughput latency p50/p99: non-stream direct ${fmt(m.direct)}, bare proxy ${fmt(m.reference)}, gateway ${fmt(m.gateway)}; stream direct ${fmt(ms.direct)}, bare proxy ${fmt(ms.reference)}, gateway ${fmt(ms.gateway)}.`,
    `- Responses API, same run, after chat's phases: the same gateway and upstream, its own warm-up (1 s closed loop per path and target, then ${SETTLE_ROUNDS} settling rounds at ${RATE} req/s), then the same fixed-rate and max-throughput phases as chat with the Responses form of the same request (chat's two messages as \`input\`, \`max_output_tokens\` 32). Rows marked \`store: false\` measure the proxy path as chat's do (nothing kept, nothing read); \`store: true (default)\` (each response's input and output items, its own thread and its row written to the database before the answer ends) is measured at ${RATE} req/s in a phase of its own after the \`store: false\` ones, in slices taken in turn with direct as above (so its writes do not spill into their slices), and in the non-stream max-throughput phase after the other targets: at ${RATE} req/s it took ${storeCost.join(', ')} more than \`store: false\` in its phase. The upstream answers \`/api/v1/responses\` with a ~600-byte response object (one message item, output_text, usage with cost) or an 18-event stream (created, in_progress, output_item.added, content_part.added, 10 output_text deltas, output_text.done, content_part.done, output_item.done, completed with usage) after a comment, one write per event, a new \`resp_…\` id each time. No targets are set for the Responses rows. Max-throughput latency p50/p99: non-stream direct ${fmt(rm.direct)}, bare proxy ${fmt(rm.reference)}, gateway ${fmt(rm.gateway)}, gateway with store: true ${fmt(rm.stored)}; stream direct ${fmt(rms.direct)}, bare proxy ${fmt(rms.reference)}, gateway ${fmt(rms.gateway)}.`,
    `- Bare proxy, same run: bench/reference-proxy.ts, a bare Hono app that forwards with undici's \`request\` over a keep-alive Pool (no keys, ledger, metrics or memory), pinned to the gateway's core with the gateway's node flags. Its column is what the machine allows a proxy at all; the gateway's cost for its features is the difference.`,
    `- Gateway event-loop delay (in the CPU lines below): the gateway's own \`cmg_event_loop_delay_seconds\` from its /metrics, scraped before and after each slice (a scrape resets it); the worst slice of each phase. It includes the machine's stalls of core 1 as well as the gateway's own pauses (GC, synchronous work), so a tail far above it came from elsewhere.`,
    ...(stallsBefore.length
      ? [
          `- Machine stalls (a spin loop pinned to each core, ${secs(STALL_MS / 1000) / 1000} s; gaps over 0.1 ms are time the core was taken away): ${[...stallsBefore, ...stallsAfter].join('; ')}. A request through the gateway crosses both cores, so stalls on either add to its p99; a direct request only feels core 0's.`,
        ]
      : []),
    `- Gateway peak RSS ${chatMem.peakRssMb.toFixed(1)} MB over chat's phases (VmHWM ${chatMem.hwmMb.toFixed(1)} MB, VmRSS polled every 100 ms: ${chatMem.polledPeakMb.toFixed(1)} MB); over the Responses phases that followed, VmRSS polled every 100 ms peaked at ${mem.polledPeakMb.toFixed(1)} MB (VmHWM at the end of the run, the whole run's peak: ${mem.hwmMb.toFixed(1)} MB).`,
    `- CPU lines: a process's CPU is counted from the start of a slice to its last answer, so a phase whose answers were still coming after its window (a backlog) shows more than 100% of a core for a pinned process; the µs CPU/req are exact either way. "Gateway (not the target)" is the gateway's CPU while direct or the bare proxy is measured (work it still does in the background)${serviceNames.length ? `; ${serviceNames.join(' + ')} is the run's own database${serviceNames.length > 1 ? ' and cache' : ''} (the processes present at each slice's start), which the gateway's writes keep busy` : ''}; "other processes" is the rest of the machine, and what the noisy-run warning counts.`,
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

/** CPU seconds of each process still there; cpuDelta sums what those present at both ends used between. */
function cpuOf(pids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of pids) {
    try {
      m.set(pid, cpuSeconds(pid));
    } catch {
      // exited
    }
  }
  return m;
}
function cpuDelta(a: Map<number, number>, b: Map<number, number>): number {
  let sum = 0;
  for (const [pid, v] of b) if (a.has(pid)) sum += v - a.get(pid)!;
  return sum;
}

const fmt = (r: RunResult) => `${percentile(r.latency, 50).toFixed(2)}/${percentile(r.latency, 99).toFixed(2)} ms`;

interface Reply {
  status: number;
  ms: number;
  text: string;
}

/** Requests one at a time, one keep-alive connection per port (node:http); each answer within 10 s. */
function sequentialClient() {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (port: number, path: string, headers: Record<string, string>, body: string) =>
    new Promise<Reply>((resolve, reject) => {
      const bytes = Buffer.from(body);
      const t0 = performance.now();
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent,
          timeout: 10_000,
          headers: { ...headers, 'content-type': 'application/json', 'content-length': bytes.length },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (p: Buffer) => parts.push(p));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, text: Buffer.concat(parts).toString() }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', reject);
      req.end(bytes);
    });
  return { post, close: () => agent.destroy() };
}

/** A user turn of the chain: about 200 bytes of text. */
const turnText = (n: number) =>
  `Turn ${n}: here is what happened next in the story, with enough detail to matter later: the fox jumped over the lazy dog, the dog woke up, and both of them walked to the river to look at the boats.`;

/**
 * What a `previous_response_id` rebuild costs: a CHAIN_TURNS-turn (50) chain built through the gateway
 * (default store, each turn chained to the last), then sequential calls in turn: chained on the
 * last turn vs unchained with the same new input (both `store: false`, so neither writes), and the
 * two bodies the gateway forwarded sent straight to the upstream (the part of the difference that
 * is only the bigger body on the wire). Non-stream. Bounded: 60 s for the measured calls.
 */
async function chainRebuild(o: {
  gwPort: number;
  gwKey: string;
  upstreamPort: number;
}): Promise<{ table: string; note: string; checks: string[]; clean: boolean }> {
  const model = 'openai/gpt-4o-mini';
  const client = sequentialClient();
  const gw = (body: string) => client.post(o.gwPort, '/v1/responses', { authorization: `Bearer ${o.gwKey}` }, body);
  const direct = (body: string) => client.post(o.upstreamPort, '/api/v1/responses', { authorization: `Bearer ${UPSTREAM_KEY}` }, body);
  const forwardedBody = async () =>
    (await fetch(`http://127.0.0.1:${o.upstreamPort}/bench/last-responses`, { signal: AbortSignal.timeout(5_000) })).text();
  const title = `Responses: ${CHAIN_TURNS}-turn previous_response_id chain`;
  try {
    let last: string | null = null;
    const buildMs: number[] = [];
    for (let turn = 1; turn <= CHAIN_TURNS; turn++) {
      const r = await gw(
        JSON.stringify({ model, input: turnText(turn), max_output_tokens: 32, ...(last ? { previous_response_id: last } : {}) }),
      );
      const id = r.status === 200 ? JSON.parse(r.text).id : undefined;
      if (typeof id !== 'string') throw new Error(`building the chain, turn ${turn}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      last = id;
      buildMs.push(r.ms);
    }
    const input = 'One more question: what did the dog do in the first turn?';
    const bodies = {
      chained: JSON.stringify({ model, input, max_output_tokens: 32, store: false, previous_response_id: last }),
      unchained: JSON.stringify({ model, input, max_output_tokens: 32, store: false }),
    };
    const forwarded = {} as Record<'chained' | 'unchained', { body: string; items: number; bytes: number }>;
    for (const kind of ['chained', 'unchained'] as const) {
      const r = await gw(bodies[kind]);
      if (r.status !== 200) throw new Error(`the ${kind} call: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      const body = await forwardedBody();
      const inputOf = JSON.parse(body).input;
      forwarded[kind] = { body, items: Array.isArray(inputOf) ? inputOf.length : 1, bytes: Buffer.byteLength(body) };
    }
    type Kind = 'chained' | 'unchained' | 'directChained' | 'directUnchained';
    const send: Record<Kind, () => Promise<Reply>> = {
      chained: () => gw(bodies.chained),
      unchained: () => gw(bodies.unchained),
      directChained: () => direct(forwarded.chained.body),
      directUnchained: () => direct(forwarded.unchained.body),
    };
    const kinds = Object.keys(send) as Kind[];
    const res = Object.fromEntries(
      kinds.map((k) => [k, { ms: [] as number[], non200: new Map<number, number>(), errors: new Map<string, number>() }]),
    ) as Record<Kind, { ms: number[]; non200: Map<number, number>; errors: Map<string, number> }>;
    const deadline = performance.now() + 60_000;
    for (let i = 0; i < CHAIN_WARM + CHAIN_CALLS && performance.now() < deadline; i++) {
      for (const k of kinds) {
        const into = res[k];
        try {
          const r = await send[k]();
          if (i < CHAIN_WARM) continue;
          if (r.status !== 200 || !r.text.includes('"status":"completed"')) into.non200.set(r.status, (into.non200.get(r.status) ?? 0) + 1);
          else into.ms.push(r.ms);
        } catch (err) {
          if (i >= CHAIN_WARM) into.errors.set((err as Error).message, (into.errors.get((err as Error).message) ?? 0) + 1);
        }
      }
    }
    const checks: string[] = [];
    let clean = true;
    const names: Record<Kind, string> = {
      chained: 'gateway, chained',
      unchained: 'gateway, unchained',
      directChained: 'direct, rebuilt body',
      directUnchained: 'direct, unchained body',
    };
    for (const k of kinds) {
      const r = res[k];
      const non = [...r.non200].map(([s, n]) => `${s}×${n}`).join(', ');
      const errs = [...r.errors].map(([e, n]) => `${e}×${n}`).join(', ');
      clean &&= r.non200.size === 0 && r.errors.size === 0 && r.ms.length === CHAIN_CALLS;
      checks.push(`${title}, ${names[k]}: ${r.ms.length} ok of ${CHAIN_CALLS}, non-200 or not completed ${non || 0}, errors ${errs || 0}`);
    }
    const q = (v: number[], p: number) => percentile(v, p);
    const rowsOut = [50, 99].map((p) => {
      const u = q(res.unchained.ms, p);
      const c = q(res.chained.ms, p);
      const du = q(res.directUnchained.ms, p);
      const dc = q(res.directChained.ms, p);
      return `| Non-stream, store: false, sequential: latency p${p} | ${u.toFixed(2)} ms | ${c.toFixed(2)} ms | ${signedMs(c - u)} | ${du.toFixed(2)} → ${dc.toFixed(2)} ms (${signedMs(dc - du)}) |`;
    });
    const f = forwarded;
    const table = [
      '| Metric | Unchained | Chained on turn ' +
        CHAIN_TURNS +
        ' | Added | Direct to the upstream, the bodies the gateway forwarded (unchained → rebuilt) |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...rowsOut,
      `| Forwarded input | ${f.unchained.items} item, ${f.unchained.bytes.toLocaleString('en-US')} B | ${f.chained.items} items, ${f.chained.bytes.toLocaleString('en-US')} B | +${f.chained.items - f.unchained.items} items, +${(f.chained.bytes - f.unchained.bytes).toLocaleString('en-US')} B |  |`,
    ].join('\n');
    const med = (v: number[]) => q(v, 50).toFixed(2);
    const note = [
      `- The chain: ${CHAIN_TURNS} turns through the gateway, each a ~200-byte user message with the default store (true), turn n+1 naming turn n's \`previous_response_id\`; the upstream's canned reply each time. Building it took ${med(buildMs.slice(0, 10))} ms a turn (median) over turns 1–10 and ${med(buildMs.slice(-10))} ms over turns ${CHAIN_TURNS - 9}–${CHAIN_TURNS} (each rebuilding the chain so far and storing its turn).`,
      `- Then ${CHAIN_CALLS} calls of each kind, one at a time on one keep-alive connection per target (node:http, so a little more client overhead than the load generator's), in turn: chained (\`previous_response_id\` of turn ${CHAIN_TURNS}) and unchained, both with the same new input and \`store: false\` (nothing written: the difference is reading the chain, fitting it to the context window, and forwarding and estimating the bigger input), and the two bodies the gateway forwarded posted straight to the upstream, after ${CHAIN_WARM} unrecorded rounds. Added = chained − unchained at the same percentile; the last column is the part that is only the bigger body on the loopback and in the upstream's hands.`,
      `- Forwarded input: what the upstream received (bench/upstream.ts's GET /bench/last-responses): the whole chain as input items (every turn's user message and assistant message) plus the new one; bytes are the whole request body.`,
    ].join('\n');
    console.log(checks.join('\n'));
    return { table, note, checks, clean };
  } catch (err) {
    const msg = `${title}: **not measured**: ${(err as Error).message}`;
    console.log(msg);
    return { table: msg, note: '', checks: [msg], clean: false };
  } finally {
    client.close();
  }
}

void guard.run(main);
