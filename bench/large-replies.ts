// `npm run bench:large-replies` (issue 13, "nothing hangs"): the gateway's memory on very large
// upstream replies. Four concurrent 200 MiB chat-completion streams through the gateway, each on a
// thread (`X-Thread-Id: bench-large-<n>`, so memory write-back runs), read and counted by the
// clients; then one non-stream request whose upstream JSON body is 200 MiB, on a fresh gateway
// process (so its VmHWM is that request's own). The fake upstream is bench/upstream.ts
// (`bench_large_bytes`). Reported: the gateway's peak RSS (VmRSS polled every 100 ms, and VmHWM),
// bytes each client got against what the upstream sent, times, and the non-stream status.
// Writes "## Memory: four 200 MB streams" in RESULTS.md.
// Env: BENCH_STREAM_BYTES (default 209715200), BENCH_NONSTREAM_BYTES (default 209715200),
// BENCH_CHUNK_BYTES (default 32768), BENCH_LARGE_STREAMS (default 4, at most 16),
// BENCH_DATABASE_URL / BENCH_REDIS_URL as the other benches, BENCH_PIN=0, BENCH_QUICK=1
// (RESULTS.md untouched). The gateway gets the benches' usual env and nothing else: its defaults are
// what is measured; any gateway variable set on the command line (e.g. UPSTREAM_MAX_BODY_BYTES)
// passes through to it. Loopback only; bounded: five requests, each at most 4 minutes, the whole
// run at most 10 minutes (then children are stopped and it exits 1).

import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { commandLine, createRunGuard, gitRevision, loadavg } from './bench-env.js';
import {
  ROOT,
  benchGatewayEnv,
  createKey,
  freePort,
  pinBenchServices,
  startGateway,
  startUpstream,
  stopChild,
  waitHealthy,
  watchRss,
} from './procs.js';
import { machineInfo, saveResults } from './report.js';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const size = (name: string, fallback: number) => Math.min(2 ** 31, Math.max(1, Number(env[name] ?? fallback)));
const STREAM_BYTES = size('BENCH_STREAM_BYTES', 200 * 2 ** 20);
const NONSTREAM_BYTES = size('BENCH_NONSTREAM_BYTES', 200 * 2 ** 20);
const CHUNK_BYTES = Math.min(2 ** 20, size('BENCH_CHUNK_BYTES', 32_768));
const STREAMS = Math.min(16, Math.max(1, Number(env.BENCH_LARGE_STREAMS ?? 4)));
const REQUEST_LIMIT_MS = 4 * 60_000;
const SETTLE_MS = 3_000;
const UPSTREAM_KEY = 'sk-or-v1-bench';
// Gateway settings this bench is about: shown in the command line when set (they pass through to the gateway).
const GATEWAY_VARS = [
  'UPSTREAM_MAX_BODY_BYTES',
  'UPSTREAM_MAX_CONNECTIONS',
  'UPSTREAM_IDLE_TIMEOUT_MS',
  'UPSTREAM_TIMEOUT_MS',
  'MEMORY_ENABLED',
  'BENCH_GATEWAY_FLAGS',
];
const command = commandLine('bench:large-replies', [
  'BENCH_DATABASE_URL',
  'BENCH_REDIS_URL',
  'BENCH_PIN',
  'BENCH_STREAM_BYTES',
  'BENCH_NONSTREAM_BYTES',
  'BENCH_CHUNK_BYTES',
  'BENCH_LARGE_STREAMS',
  'BENCH_QUICK',
  ...GATEWAY_VARS,
]);
const config = env.BENCH_DATABASE_URL
  ? env.BENCH_REDIS_URL
    ? 'Postgres + Redis'
    : 'Postgres'
  : env.BENCH_REDIS_URL
    ? 'PGlite + Redis'
    : 'PGlite';
const guard = createRunGuard('bench:large-replies', 10 * 60_000);

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

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const messages = [{ role: 'user', content: 'Write a very long answer.' }];

/** A /proc/<pid>/status field in MB (0 when unreadable). */
function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** Resets the process's VmHWM to its current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0). */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

interface Sent {
  bytes: number;
  contentBytes: number;
  complete: boolean;
}
const upstreamStats = async (port: number, reset: boolean): Promise<{ maxOpen: number; sent: Sent[] }> =>
  (
    await fetch(`http://127.0.0.1:${port}/bench/${reset ? 'reset' : 'stats'}`, {
      method: reset ? 'POST' : 'GET',
      signal: AbortSignal.timeout(10_000),
    })
  ).json() as Promise<{ maxOpen: number; sent: Sent[] }>;

interface ClientResult {
  status: number | string;
  bytes: number;
  /** Characters of delta.content (streams) or of message.content's bytes (non-stream, approximated by body bytes). */
  contentBytes: number;
  done: boolean;
  headersMs: number;
  totalMs: number;
  memoryStatus: string | null;
  error?: string;
}

/** A stream read to the end: bytes counted, SSE events split and their delta.content lengths summed. */
async function readStream(agent: Agent, origin: string, headers: Record<string, string>, signal: AbortSignal): Promise<ClientResult> {
  const t0 = performance.now();
  const r: ClientResult = { status: 0, bytes: 0, contentBytes: 0, done: false, headersMs: 0, totalMs: 0, memoryStatus: null };
  try {
    const body = JSON.stringify({
      model: 'openai/gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
      bench_large_bytes: STREAM_BYTES,
      bench_chunk_bytes: CHUNK_BYTES,
    });
    const res = await request(`${origin}/v1/chat/completions`, { method: 'POST', headers, body, dispatcher: agent, signal });
    r.status = res.statusCode;
    r.headersMs = performance.now() - t0;
    r.memoryStatus = String(res.headers['x-memory-status'] ?? '') || null;
    let buf = '';
    for await (const chunk of res.body) {
      r.bytes += (chunk as Buffer).length;
      buf += (chunk as Buffer).toString('latin1');
      let from = 0;
      for (let end = buf.indexOf('\n\n', from); end >= 0; end = buf.indexOf('\n\n', from)) {
        const event = buf.slice(from, end);
        from = end + 2;
        if (event.startsWith('data: {')) {
          const content = JSON.parse(event.slice(6)).choices?.[0]?.delta?.content;
          if (typeof content === 'string') r.contentBytes += content.length;
        } else if (event.startsWith('data: [DONE]')) r.done = true;
      }
      buf = buf.slice(from);
    }
  } catch (err) {
    r.error = (err as Error & { code?: string }).code ?? (err as Error).message;
  }
  r.totalMs = performance.now() - t0;
  return r;
}

/** The non-stream request: status, bytes counted (the body is not kept). */
async function readCompletion(agent: Agent, origin: string, headers: Record<string, string>, signal: AbortSignal): Promise<ClientResult> {
  const t0 = performance.now();
  const r: ClientResult = { status: 0, bytes: 0, contentBytes: 0, done: false, headersMs: 0, totalMs: 0, memoryStatus: null };
  let head = '';
  try {
    const body = JSON.stringify({ model: 'openai/gpt-4o-mini', messages, bench_large_bytes: NONSTREAM_BYTES });
    const res = await request(`${origin}/v1/chat/completions`, { method: 'POST', headers, body, dispatcher: agent, signal });
    r.status = res.statusCode;
    r.headersMs = performance.now() - t0;
    for await (const chunk of res.body) {
      r.bytes += (chunk as Buffer).length;
      if (head.length < 300) head += (chunk as Buffer).subarray(0, 300).toString('latin1');
    }
    r.done = true;
  } catch (err) {
    r.error = (err as Error & { code?: string }).code ?? (err as Error).message;
  }
  r.totalMs = performance.now() - t0;
  if (r.status !== 200 && head) r.error = `${r.error ? `${r.error}; ` : ''}body: ${head.slice(0, 200).replace(/\s+/g, ' ')}`;
  return r;
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'cmg-bench-large-'));
  guard.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const loadBefore = loadavg();
  console.log(`# bench:large-replies, ${config}: ${machineInfo()}; pinning ${pin ? 'on' : 'off'}; load ${loadBefore}`);
  const services = pinBenchServices(guard, { pin, databaseUrl: env.BENCH_DATABASE_URL, redisUrl: env.BENCH_REDIS_URL });
  const upstream = await startUpstream(UPSTREAM_KEY, pin ? '0' : undefined);
  guard.push(() => stopChild(upstream.child));
  const agent = new Agent({ connections: STREAMS + 4, pipelining: 1, headersTimeout: REQUEST_LIMIT_MS, bodyTimeout: REQUEST_LIMIT_MS });
  guard.push(() => agent.destroy().catch(() => undefined));

  /** A gateway with the benches' usual env (own DATA_DIR or scratch database) and a key. */
  async function gatewayWithKey(name: string): Promise<{ child: ChildProcess; origin: string; key: string }> {
    const gwEnv = await benchGatewayEnv(guard, {
      dataDir: join(tmp, name),
      upstreamPort: upstream.port,
      upstreamKey: UPSTREAM_KEY,
      databaseUrl: env.BENCH_DATABASE_URL,
      redisUrl: env.BENCH_REDIS_URL,
    });
    const adminToken = gwEnv.ADMIN_TOKEN;
    const port = await freePort();
    let child = startGateway({ port, env: gwEnv, cwd: tmp, cpus: pin ? '1' : undefined });
    guard.push(() => stopChild(child));
    try {
      await waitHealthy(port, child);
    } catch (err) {
      // dist/ is shared with whoever else builds in this checkout: rebuild once and retry.
      console.error(`gateway did not start (${(err as Error).message}); rebuilding dist/ and trying once more`);
      await stopChild(child);
      execFileSync(process.execPath, [`${ROOT}scripts/build.mjs`], { stdio: 'inherit' });
      child = startGateway({ port, env: gwEnv, cwd: tmp, cpus: pin ? '1' : undefined });
      await waitHealthy(port, child);
    }
    return { child, origin: `http://127.0.0.1:${port}`, key: await createKey(port, adminToken) };
  }
  const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  const exitOf = (c: ChildProcess) => (alive(c) ? 'running' : `exited (${c.signalCode ?? `code ${c.exitCode}`})`);

  // Part 1: STREAMS concurrent large streams, each on its own thread.
  const gw1 = await gatewayWithKey('data');
  const startHwmMb = statusMb(gw1.child.pid!, 'VmHWM');
  const idleMb = statusMb(gw1.child.pid!, 'VmRSS');
  await upstreamStats(upstream.port, true);
  const reset1 = resetPeak(gw1.child.pid!);
  const rss1 = watchRss(gw1.child.pid!);
  const signal1 = AbortSignal.timeout(REQUEST_LIMIT_MS);
  const t1 = performance.now();
  const streams = await Promise.all(
    Array.from({ length: STREAMS }, (_, i) =>
      readStream(
        agent,
        gw1.origin,
        { authorization: `Bearer ${gw1.key}`, 'content-type': 'application/json', 'x-thread-id': `bench-large-${i + 1}` },
        signal1,
      ),
    ),
  );
  const streamsMs = performance.now() - t1;
  // Write-back and release happen after the last byte: keep watching a little longer.
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const mem1 = rss1.stop();
  const up1 = await upstreamStats(upstream.port, false);
  const gw1State = exitOf(gw1.child);
  const mem1Alive = alive(gw1.child);
  for (const [i, s] of streams.entries())
    console.log(
      `stream ${i + 1}: HTTP ${s.status}, ${s.bytes} bytes, ${s.contentBytes} content bytes, [DONE] ${s.done ? 'yes' : 'no'}, headers ${secs(s.headersMs)}, end ${secs(s.totalMs)}${s.error ? `, error ${s.error}` : ''}`,
    );
  console.log(
    `upstream sent: ${up1.sent.map((s) => `${s.bytes} bytes (${s.contentBytes} content, ${s.complete ? 'complete' : 'cut short'})`).join('; ')}; max open ${up1.maxOpen}`,
  );
  console.log(
    `gateway RSS: idle ${idleMb.toFixed(0)} MB (VmHWM since start ${startHwmMb.toFixed(0)} MB), peak ${mem1.peakRssMb.toFixed(0)} MB (polled ${mem1.polledPeakMb.toFixed(0)}, VmHWM ${mem1.hwmMb.toFixed(0)}); gateway ${gw1State}`,
  );

  // Part 2: one non-stream request with a large upstream body, on the same gateway (a fresh one if it died).
  const gw2 = alive(gw1.child) ? gw1 : await gatewayWithKey('data-2');
  const idle2Mb = statusMb(gw2.child.pid!, 'VmRSS');
  await upstreamStats(upstream.port, true);
  const reset2 = resetPeak(gw2.child.pid!);
  const rss2 = watchRss(gw2.child.pid!);
  const one = await readCompletion(
    agent,
    gw2.origin,
    { authorization: `Bearer ${gw2.key}`, 'content-type': 'application/json' },
    AbortSignal.timeout(REQUEST_LIMIT_MS),
  );
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const mem2 = rss2.stop();
  const up2 = await upstreamStats(upstream.port, false);
  const gw2State = exitOf(gw2.child);
  console.log(
    `non-stream: HTTP ${one.status}, ${one.bytes} bytes in ${secs(one.totalMs)}${one.error ? `, error ${one.error}` : ''}; upstream sent ${up2.sent.map((s) => `${s.bytes} bytes (${s.complete ? 'complete' : 'cut short'})`).join('; ') || 'nothing closed yet'}`,
  );
  console.log(
    `gateway RSS: idle ${idle2Mb.toFixed(0)} MB, peak ${mem2.peakRssMb.toFixed(0)} MB (polled ${mem2.polledPeakMb.toFixed(0)}, VmHWM ${mem2.hwmMb.toFixed(0)}); gateway ${gw2State}`,
  );
  await stopChild(gw2.child);
  const hwmNote =
    reset1 && reset2
      ? 'VmHWM reset to the current RSS before each part (/proc/<pid>/clear_refs)'
      : '**VmHWM could not be reset** (no /proc/<pid>/clear_refs): it is the process peak since start';

  const sentStream = up1.sent.filter((s) => s.contentBytes > 0);
  const expectedBytes = sentStream[0]?.bytes;
  const expectedContent = sentStream[0]?.contentBytes;
  const whole =
    streams.every((s) => s.status === 200 && s.done && s.contentBytes === expectedContent) &&
    sentStream.length === STREAMS &&
    sentStream.every((s) => s.complete);
  const sameBytes = streams.every((s) => s.bytes === expectedBytes);
  const rows = [
    '| Measurement | Value |',
    '| --- | --- |',
    `| ${STREAMS} concurrent ${MiB(STREAM_BYTES)} streams: gateway peak RSS | ${mem1.peakRssMb.toFixed(0)} MB (VmHWM ${mem1Alive ? `${mem1.hwmMb.toFixed(0)} MB` : 'n/a, the process was gone'}, polled VmRSS ${mem1.polledPeakMb.toFixed(0)} MB; ${idleMb.toFixed(0)} MB idle before) |`,
    `| Upstream sent, per stream (in the order they closed) | ${sentStream.map((s) => `${s.bytes} B${s.complete ? '' : ' (cut short)'}`).join(', ') || 'nothing'} (content ${sentStream.map((s) => s.contentBytes).join(', ')} B) |`,
    `| Clients received, per stream | ${streams.map((s) => `${s.bytes} B`).join(', ')} (content ${streams.map((s) => s.contentBytes).join(', ')} B) |`,
    `| Relayed whole (200, [DONE], every content byte) | ${whole ? 'yes' : '**NO**'}; raw bytes equal to the upstream's: ${sameBytes ? 'yes' : 'no'} |`,
    `| Time for the ${STREAMS} streams (all started together) | ${secs(streamsMs)} (each: ${streams.map((s) => secs(s.totalMs)).join(', ')}); x-memory-status ${[...new Set(streams.map((s) => s.memoryStatus ?? 'none'))].join(', ')} |`,
    `| Non-stream, upstream body ${MiB(NONSTREAM_BYTES)}: HTTP status at the client | ${one.status || 'none'}${one.error ? ` (${one.error})` : ''}; ${one.bytes} B received in ${secs(one.totalMs)}; upstream ${up2.sent.map((s) => `${s.complete ? 'sent it all' : `was cut off after ${s.bytes} B`}`).join(', ') || 'still open'} |`,
    `| Non-stream: gateway peak RSS | ${mem2.peakRssMb.toFixed(0)} MB (VmHWM ${mem2.hwmMb.toFixed(0)} MB, polled VmRSS ${mem2.polledPeakMb.toFixed(0)} MB; ${idle2Mb.toFixed(0)} MB idle before) |`,
    `| Gateway process after each part | streams: ${gw1State}; non-stream: ${gw2State} |`,
  ].join('\n');
  console.log(`\n${rows}\n`);
  const md = [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineInfo()}`,
    `- Gateway code: ${gitRevision()}; ${config}; gateway env as the other benches pass it (defaults measured${
      GATEWAY_VARS.some((k) => env[k])
        ? `; set here: ${GATEWAY_VARS.filter((k) => env[k])
            .map((k) => `${k}=${env[k]}`)
            .join(' ')}`
        : ''
    })`,
    `- Command: \`${command}\``,
    `- Cores: ${pin ? `gateway pinned to core 1; clients (bench/large-replies.ts) and fake upstream (bench/upstream.ts) share core 0; ${services}` : 'no pinning'}; load average before ${loadBefore}, after ${loadavg()}`,
    '',
    rows,
    '',
    '### Notes',
    '',
    `- Streams: ${STREAMS} POST /v1/chat/completions with \`stream: true\` started together, each with \`X-Thread-Id: bench-large-<n>\` (default X-Memory readwrite, so the reply is written back to the thread). The fake upstream answers each with about ${MiB(STREAM_BYTES)} of SSE: content chunks of ${CHUNK_BYTES} bytes of ASCII text each (\`chat.completion.chunk\` events), then finish, usage and [DONE], writing with backpressure. The clients count every byte, split the events and add up \`delta.content\` lengths, and keep nothing.`,
    `- Non-stream: one POST without \`stream\`, on the same gateway process (a fresh one only if the first had died: ${gw2 === gw1 ? 'not needed' : '**it had**'}); the upstream answers one JSON completion with a ${MiB(NONSTREAM_BYTES)} \`message.content\` (content-length set), in 64 KiB writes. The client counts the body's bytes.`,
    ...(gw1State === 'running'
      ? []
      : [
          `- **The gateway process died during the streams (${gw1State})**; the clients' sockets closed (\`UND_ERR_SOCKET\`) after the byte counts above. Its RSS peak is the last 100 ms poll before it went (VmHWM is unreadable after exit). The non-stream request ran on a fresh gateway.`,
        ]),
    `- RSS: the gateway's VmRSS from /proc/<pid>/status every 100 ms, and VmHWM (the kernel's peak) at the end, from just before the requests until ${SETTLE_MS / 1000} s after the last one ended (write-back and release included). Peak = the larger of the two; ${hwmNote}. The gateway's VmHWM from its start to the first request (start-up, migrations): ${startHwmMb.toFixed(0)} MB.`,
  ].join('\n');
  saveResults({ heading: 'Memory: four 200 MB streams', body: md, quick });
  // As bench/run.ts: the section is written either way, the exit status says whether it all held.
  if (!whole || gw1State !== 'running' || gw2State !== 'running') {
    console.error('bench:large-replies: streams not relayed whole, or the gateway died (see the table)');
    process.exitCode = 1;
  }
}

void guard.run(main);
