// A quick probe of where tail latency comes from: 500 req/s non-stream through the gateway (Postgres + Redis),
// printing per 3 s window the latency p50/p99/max next to the gateway's event-loop delay and GC pauses.
// Run: npx tsx bench/latency-probe.ts (BENCH_GATEWAY_FLAGS to try node flags). Loopback only; bounded.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './loadgen.js';
import {
  createKey,
  createScratchDatabase,
  eventLoopDelay,
  freePort,
  startGateway,
  startUpstream,
  stopChild,
  waitHealthy,
} from './procs.js';

const db = await createScratchDatabase('postgres://postgres@127.0.0.1:5432/postgres');
const up = await startUpstream('sk-bench', '0');
const port = await freePort();
const gw = startGateway({
  port,
  cwd: mkdtempSync(join(tmpdir(), 'eld-')),
  cpus: '1',
  env: {
    DATABASE_URL: db.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    OPENROUTER_API_KEY: 'sk-bench',
    OPENROUTER_BASE_URL: `http://127.0.0.1:${up.port}/api/v1`,
    ADMIN_TOKEN: 'admin-token-123456789',
    LOG_LEVEL: 'warn',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'eldd-')),
  },
});
await waitHealthy(port, gw);
const key = await createKey(port, 'admin-token-123456789');
const body = JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
const target = {
  port,
  path: '/v1/chat/completions',
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
  body,
};
await runLoad(target, { durationMs: 2000, rate: 500, connections: 64, record: false });
await eventLoopDelay(port); // resets the gateway's event-loop histogram
for (let i = 0; i < 4; i++) {
  const r = await runLoad(target, { durationMs: 3000, rate: 500, connections: 64 });
  const lat = r.latency.sort((a, b) => a - b);
  const loop = await eventLoopDelay(port);
  const m = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  const gc = m.split('\n').filter((l) => l.startsWith('cmg_gc_pause_seconds_') && !l.includes('bucket'));
  const loopText = loop
    ? `event-loop delay p99 ${loop.p99Ms.toFixed(1)} ms, max ${loop.maxMs.toFixed(1)} ms`
    : 'event-loop delay unavailable';
  console.log(
    `p50 ${lat[Math.floor(lat.length * 0.5)].toFixed(2)} p99 ${lat[Math.floor(lat.length * 0.99)].toFixed(2)} max ${lat.at(-1)!.toFixed(2)} | ${loopText} |`,
    gc.join(' '),
  );
}
await stopChild(gw);
await stopChild(up.child);
await db.drop();
