// `npm run bench:memory`: the latency thread memory adds on a 10,000-item thread (X-Thread-Id +
// X-Memory: read) against the same request without a thread, same gateway, same run. Writes
// "## Thread memory (bench:memory)" in RESULTS.md (with BENCH_CPU_PROF=1: a profile section).
// Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; scratch database
// made and dropped), BENCH_CPU_PROF=1, BENCH_PIN=0, BENCH_QUICK=1 (short, RESULTS.md untouched).

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandLine, createRunGuard, gitRevision, loadavg, redactUrl } from './bench-env.js';
import { runLoad, type RunResult, type Target } from './loadgen.js';
import { THREAD_ID, UNIFORM_THREAD_ID, measureReadPath, seedThread, threadSize } from './memory-seed.js';
import {
  cpuSeconds,
  createKey,
  createScratchDatabase,
  freePort,
  machineBusySeconds,
  startGateway,
  startUpstream,
  stopChild,
  waitHealthy,
} from './procs.js';
import { formatProfileGroups } from './profile-groups.js';
import { formatHotSpots } from './profile-summary.js';
import { describeCounts, machineInfo, percentile, saveResults } from './report.js';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const profile = env.BENCH_CPU_PROF === '1';
// BENCH_VECTORS=1: vector retrieval on too (MEMORY_EMBEDDING_MODEL against the bench upstream's canned
// embeddings; every seeded item embedded at 256 dimensions). Written to its own section.
const vectors = env.BENCH_VECTORS === '1';
const serverUrl = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RATE = 100;
const LOW_RATE = 25;
const ROUNDS = quick ? 2 : 5;
const PHASE_MS = 2_000;
const ITEMS = 10_000;
const TARGET_P99 = 5;
const UPSTREAM_KEY = 'sk-or-v1-bench';
const guard = createRunGuard('bench:memory', 6 * 60_000);

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
const body = {
  model: 'openai/gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'What did we agree about the supplier contracts?' },
  ],
  max_tokens: 32,
};
const ms = (v: number) => `${v.toFixed(2)} ms`;
/** A difference with its sign (`+1.20`, `−0.40`). */
const signed = (v: number, digits: number) => (v < 0 ? `−${(-v).toFixed(digits)}` : `+${v.toFixed(digits)}`);

async function main() {
  const loadBefore = loadavg();
  console.log(`# bench:memory on ${machineInfo()}; pinning ${pin ? 'on' : 'off'}; loadavg ${loadBefore}`);
  const tmp = mkdtempSync(join(tmpdir(), 'cmg-bench-mem-'));
  guard.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const upstream = await startUpstream(UPSTREAM_KEY, pin ? '0' : undefined);
  guard.push(() => stopChild(upstream.child));
  const scratch = await createScratchDatabase(serverUrl);
  guard.push(scratch.drop);
  console.log(`scratch database: ${redactUrl(scratch.url)}`);
  const adminToken = randomBytes(24).toString('hex');
  const gwEnv: Record<string, string> = {
    DATA_DIR: join(tmp, 'data'),
    DATABASE_URL: scratch.url,
    OPENROUTER_API_KEY: UPSTREAM_KEY,
    OPENROUTER_BASE_URL: `http://127.0.0.1:${upstream.port}/api/v1`,
    ADMIN_TOKEN: adminToken,
    LOG_LEVEL: 'warn',
  };
  if (vectors) Object.assign(gwEnv, { MEMORY_EMBEDDING_MODEL: 'bench/embed', MEMORY_EMBEDDING_DIMENSIONS: '256' });
  const profDir = profile ? mkdtempSync(join(tmpdir(), 'cmg-bench-prof-')) : undefined;
  const gwPort = await freePort();
  const spawnedAt = performance.now();
  const gateway = startGateway({ port: gwPort, env: gwEnv, cwd: tmp, cpus: pin ? '1' : undefined, cpuProfDir: profDir });
  guard.push(() => stopChild(gateway));
  await waitHealthy(gwPort, gateway);
  const key = await createKey(gwPort, adminToken);
  const seed = await seedThread(scratch.url, ITEMS, vectors ? 256 : 0, 'varied');
  const uniformSeed = await seedThread(scratch.url, ITEMS, vectors ? 256 : 0, 'uniform');
  console.log(
    `seeded 2 × ${ITEMS} items in ${(seed.seedMs + uniformSeed.seedMs).toFixed(0)} ms (workspace ${seed.workspaceId}, ~${seed.contentTokens} / ~${uniformSeed.contentTokens} content tokens each)`,
  );

  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const onThread = (id: string): Target => ({
    port: gwPort,
    path: '/v1/chat/completions',
    headers: { ...headers, 'x-thread-id': id, 'x-memory': 'read' },
    body: JSON.stringify(body),
    expect: '"choices"',
  });
  const targets: Record<'plain' | 'thread' | 'uniform', Target> = {
    plain: { port: gwPort, path: '/v1/chat/completions', headers, body: JSON.stringify(body), expect: '"choices"' },
    thread: onThread(THREAD_ID),
    uniform: onThread(UNIFORM_THREAD_ID),
  };
  // Sanity: memory is really read on the thread requests.
  for (const t of [targets.thread, targets.uniform]) {
    const probe = await fetch(`http://127.0.0.1:${gwPort}/v1/chat/completions`, {
      method: 'POST',
      headers: t.headers,
      body: t.body,
      signal: AbortSignal.timeout(10_000),
    });
    const memoryStatus = probe.headers.get('x-memory-status');
    await probe.text();
    if (probe.status !== 200 || memoryStatus !== 'ok')
      throw new Error(`thread probe: HTTP ${probe.status}, x-memory-status ${memoryStatus}`);
  }

  // Warm-up (JIT, pools, caches), unrecorded: closed loop, then the fixed rate.
  for (const t of [targets.plain, targets.thread, targets.uniform]) {
    await runLoad(t, { connections: 8, durationMs: quick ? 500 : 1_500, maxRequests: 5_000, record: false });
    await runLoad(t, { rate: RATE, connections: 64, durationMs: quick ? 500 : 1_500, record: false });
  }
  const warmedAfterMs = performance.now() - spawnedAt;

  // Alternating phases, ABBA order so drift in machine load hits both variants alike.
  const checks: string[] = [];
  let clean = true;
  const loadMid: string[] = [];
  async function alternate(rate: number, rounds: number, phaseMs: number, other: 'thread' | 'uniform' = 'thread') {
    const acc = { plain: [] as number[], thread: [] as number[] };
    const cpu = { plain: { gw: 0, ok: 0, others: 0, wall: 0 }, thread: { gw: 0, ok: 0, others: 0, wall: 0 } };
    for (let round = 0; round < rounds; round++) {
      for (const v of round % 2 === 0 ? (['plain', 'thread'] as const) : (['thread', 'plain'] as const)) {
        const g0 = cpuSeconds(gateway.pid!);
        const u0 = cpuSeconds(upstream.child.pid!);
        const b0 = machineBusySeconds();
        const c0 = process.cpuUsage();
        const r: RunResult = await runLoad(targets[v === 'thread' ? other : 'plain'], { rate, connections: 64, durationMs: phaseMs });
        const gen = process.cpuUsage(c0);
        const gw = cpuSeconds(gateway.pid!) - g0;
        const own = gw + (cpuSeconds(upstream.child.pid!) - u0) + (gen.user + gen.system) / 1e6;
        cpu[v].gw += gw;
        cpu[v].ok += r.ok;
        cpu[v].others += Math.max(0, machineBusySeconds() - b0 - own);
        cpu[v].wall += r.elapsedMs / 1000;
        acc[v].push(...r.latency);
        const label = v === 'plain' ? 'no thread' : other === 'thread' ? 'with thread' : 'with the uniform thread';
        const d = describeCounts(`${rate} req/s, round ${round + 1}, ${label}`, r);
        clean &&= d.clean;
        checks.push(d.line);
        console.log(`${d.line}; p50 ${ms(percentile(r.latency, 50))} p99 ${ms(percentile(r.latency, 99))}`);
      }
      loadMid.push(loadavg().split(' ')[0]);
    }
    return { acc, cpu };
  }
  const { acc, cpu } = await alternate(RATE, ROUNDS, PHASE_MS);
  const low = await alternate(LOW_RATE, quick ? 2 : 4, quick ? 2_000 : 4_000);
  // Lexical retrieval's worst case: the thread where the question matches every message.
  const worst = await alternate(RATE, 2, PHASE_MS, 'uniform');
  const after = await threadSize(scratch.url, seed.workspaceId);
  const afterUniform = await threadSize(scratch.url, seed.workspaceId, UNIFORM_THREAD_ID);
  const read = await measureReadPath(scratch.url, seed.workspaceId, body);
  const readUniform = await measureReadPath(scratch.url, seed.workspaceId, body, UNIFORM_THREAD_ID);

  // What read-your-writes costs: the same request on a short thread with X-Memory: write (the
  // exchange is committed before the response ends) against X-Memory: read (nothing written),
  // sequential (one at a time, so each write is on the request's own clock), ABBA.
  const ryw = { read: [] as number[], write: [] as number[] };
  const rywThread = 'bench-ryw';
  const rywTarget = (mode: 'read' | 'write'): Target => ({
    ...targets.thread,
    headers: { ...headers, 'x-thread-id': rywThread, 'x-memory': mode },
  });
  await runLoad(rywTarget('write'), { connections: 1, durationMs: 500, maxRequests: 200, record: false });
  for (let round = 0; round < (quick ? 2 : 4); round++) {
    for (const mode of round % 2 === 0 ? (['read', 'write'] as const) : (['write', 'read'] as const)) {
      const r = await runLoad(rywTarget(mode), { connections: 1, durationMs: 1_000, maxRequests: 400 });
      ryw[mode].push(...r.latency);
      const d = describeCounts(`read-your-writes, round ${round + 1}, X-Memory: ${mode}`, r);
      clean &&= d.clean;
      checks.push(d.line);
    }
  }
  const loadAfter = loadavg();

  const p = (v: 'plain' | 'thread', q: number) => percentile(acc[v], q);
  const added50 = p('thread', 50) - p('plain', 50);
  const added99 = p('thread', 99) - p('plain', 99);
  const lp = (v: 'plain' | 'thread', q: number) => percentile(low.acc[v], q);
  const wp = (v: 'plain' | 'thread', q: number) => percentile(worst.acc[v], q);
  const cpuReq = (c: { gw: number; ok: number }) => (c.gw / c.ok) * 1e6;
  const table = [
    '| Metric | Without thread | With thread (10,000 items, X-Memory: read) | Added | Target | Result |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    `| Non-stream @ ${RATE} req/s, latency p50 | ${ms(p('plain', 50))} | ${ms(p('thread', 50))} | ${signed(added50, 2)} ms | | |`,
    `| Non-stream @ ${RATE} req/s, latency p99 | ${ms(p('plain', 99))} | ${ms(p('thread', 99))} | ${signed(added99, 2)} ms | added ≤ ${TARGET_P99} ms | ${added99 <= TARGET_P99 ? 'PASS' : '**FAIL**'} |`,
    `| Gateway CPU per request @ ${RATE} req/s | ${cpuReq(cpu.plain).toFixed(0)} µs | ${cpuReq(cpu.thread).toFixed(0)} µs | ${signed(cpuReq(cpu.thread) - cpuReq(cpu.plain), 0)} µs | | |`,
    ...[50, 99].map(
      (q) =>
        `| Contrast: non-stream @ ${LOW_RATE} req/s, latency p${q} | ${ms(lp('plain', q))} | ${ms(lp('thread', q))} | ${signed(lp('thread', q) - lp('plain', q), 2)} ms | | |`,
    ),
    ...[50, 99].map(
      (q) =>
        `| Worst case for retrieval (the question matches all ${readUniform.span} messages searched; uniform thread) @ ${RATE} req/s, latency p${q} | ${ms(wp('plain', q))} | ${ms(wp('thread', q))} | ${signed(wp('thread', q) - wp('plain', q), 2)} ms | | |`,
    ),
    `| Worst case: gateway CPU per request @ ${RATE} req/s | ${cpuReq(worst.cpu.plain).toFixed(0)} µs | ${cpuReq(worst.cpu.thread).toFixed(0)} µs | ${signed(cpuReq(worst.cpu.thread) - cpuReq(worst.cpu.plain), 0)} µs | | |`,
    ...[50, 99].map(
      (q) =>
        `| Read-your-writes: commit before the response ends, latency p${q} (short thread, X-Memory: read → write, one request at a time) | ${ms(percentile(ryw.read, q))} | ${ms(percentile(ryw.write, q))} | ${signed(percentile(ryw.write, q) - percentile(ryw.read, q), 2)} ms | | |`,
    ),
  ].join('\n');
  console.log(`\n${table}\n`, read, readUniform, after, afterUniform);

  await stopChild(gateway);
  let hot = '';
  if (profDir) {
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    hot = file
      ? `${formatProfileGroups(join(profDir, file), warmedAfterMs)}\n\n${formatHotSpots(join(profDir, file), 30, warmedAfterMs)}`
      : `no .cpuprofile in ${profDir}`;
    console.log(`\n${hot}\n(profile kept in ${profDir})`);
  }
  const otherPct = (v: 'plain' | 'thread') => `${((cpu[v].others / cpu[v].wall) * 100).toFixed(0)}%`;
  const command = commandLine('bench:memory', ['BENCH_DATABASE_URL', 'BENCH_CPU_PROF', 'BENCH_PIN', 'BENCH_QUICK', 'BENCH_VECTORS']);
  const bodyMd = [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineInfo()}`,
    `- Gateway code: ${gitRevision()}; Postgres on 127.0.0.1 (scratch database, dropped at the end), no Redis`,
    `- Command: \`${command}\``,
    `- Cores: ${pin ? 'gateway pinned to core 1; load generator and fake upstream share core 0 (taskset); Postgres unpinned' : 'no pinning'}`,
    `- Load average (1/5/15 min, runnable/total): before ${loadBefore}, after ${loadAfter}; 1-min load after each round: ${loadMid.join(', ')}. Other processes (not gateway, upstream, generator) used on average ${otherPct('plain')} of a core during the no-thread phases and ${otherPct('thread')} during the thread phases (Postgres, serving the thread reads, counts here too).`,
    `- All responses 200 with complete bodies: ${clean ? 'yes' : '**NO**'}; threads after the run: ${after.items} and ${afterUniform.items} items, next_seq ${after.nextSeq} and ${afterUniform.nextSeq} (unchanged: ${[after, afterUniform].every((t) => t.items === ITEMS && t.nextSeq === ITEMS + 1) ? 'yes' : '**NO**'})`,
    '',
    table,
    '',
    '### Notes',
    '',
    `- Method: bench/upstream.ts (fake OpenRouter, /models lists openai/gpt-4o-mini with context_length 128,000) and the gateway (dist/main.js, built from src/) as separate processes, as \`npm run bench\` does; a key made through the admin API; retrieval on (the default MEMORY_RETRIEVAL_SHARE, lexical). Thread \`${THREAD_ID}\` seeded directly in thread_items: ${ITEMS} complete messages, alternating user/assistant, each two of 25 work topics (picked by a fixed hash of its seq; ~${seed.contentTokens}-token contents, tokens = 45, distinct content_hash), with a threads row at next_seq ${ITEMS + 1}. The question (\`${body.messages[1].content}\`) shares words with two of the topics: it matches ${read.matches} of the ${read.span} messages the search looks through. Same non-stream request (system + user message, max_tokens 32) with \`X-Thread-Id\` + \`X-Memory: read\`, or without them; open loop at ${RATE} req/s, ${ROUNDS} rounds of ${PHASE_MS / 1000} s per variant in ABBA order (${acc.plain.length} vs ${acc.thread.length} requests), after 3 s of unrecorded warm-up per variant; then the same at ${LOW_RATE} req/s (${low.acc.plain.length} vs ${low.acc.thread.length} requests) as a contrast with less queueing; then 2 rounds at ${RATE} req/s on \`${UNIFORM_THREAD_ID}\` (${ITEMS} messages all saying the same sentence, which shares the question's words: it matches ${readUniform.matches} of ${readUniform.span}, lexical retrieval's worst case; ${worst.acc.plain.length} vs ${worst.acc.thread.length} requests). Latency: request written → last body byte. Gateway CPU per request from /proc/<pid>/stat over the phases.`,
    `- What the thread request costs, timed in the bench process against the same database, one at a time (${50} runs; varied / uniform thread): loadView p50 ${ms(read.loadViewP50)} / p99 ${ms(read.loadViewP99)} and ${ms(readUniform.loadViewP50)} / ${ms(readUniform.loadViewP99)} (the thread row; the newest ${read.loaded} complete messages and pinned items when the cached view is stale); the whole plan (memory-service.plan: view, retrieval, assembly) p50 ${ms(read.planP50)} / p99 ${ms(read.planP99)} and ${ms(readUniform.planP50)} / ${ms(readUniform.planP99)}; of which the lexical search alone p50 ${ms(read.searchP50)} / p99 ${ms(read.searchP99)} and ${ms(readUniform.searchP50)} / ${ms(readUniform.searchP99)} (the thread row, the question's stemmed words and the ranking over the instance's index of the span); on an instance that has not indexed the thread yet, the first search reads the span's ${read.span} messages: ${ms(read.coldSearchMs)} and ${ms(readUniform.coldSearchMs)} (median of 5). It injects ${read.injected} stored messages and ${read.retrieved} retrieved ones (${read.memoryTokens} tokens, the 16,000-token default cap), so the body forwarded upstream grows from ${read.plainBytes} B to ${(read.forwardedBytes / 1024).toFixed(0)} KiB; serializing and sending it (and the fake upstream reading it) is part of the added latency.`,
    `- CPU profile of the gateway under this load: run with \`BENCH_CPU_PROF=1\`, section "Profile: Thread memory (bench:memory)".`,
    '',
    'Response check:',
    '',
    ...checks.map((l) => `- ${l}`),
  ].join('\n');
  saveResults({
    heading: vectors ? 'Thread memory with vector retrieval (BENCH_VECTORS=1 npm run bench:memory)' : 'Thread memory (bench:memory)',
    body: bodyMd,
    quick,
    profile: profile ? { command, hot, table, extra: `- Load average before ${loadBefore}, after ${loadAfter}` } : undefined,
  });
  if (!clean) process.exitCode = 1;
}

void guard.run(main);
