// A/B of two gateway builds' max throughput on this machine, in alternating rounds so the machine's
// slow spells fall on both: `tsx bench/ab-throughput.ts <old checkout> <new checkout>` (each with
// dist/ built). Both gateways run pinned to core 1 (one loaded at a time), the load generator and
// fake upstream on core 0, Postgres and Redis from BENCH_DATABASE_URL / BENCH_REDIS_URL if given.
// Bounded: 6 rounds × 2 paths × 2 builds × 4 s, at most 3 minutes in all.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNodeFlags } from '../test/helpers/processes.js';
import { createRunGuard } from './bench-env.js';
import { runLoad } from './loadgen.js';
import { createKey, createScratchDatabase, freePort, startUpstream, stopChild, waitHealthy } from './procs.js';

const [oldDir, newDir] = process.argv.slice(2);
if (!oldDir || !newDir) throw new Error('usage: tsx bench/ab-throughput.ts <old checkout> <new checkout>');
const guard = createRunGuard('ab-throughput', 3 * 60_000);
const KEY = 'sk-or-v1-bench';
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
};

async function main() {
  const upstream = await startUpstream(KEY, '0');
  guard.push(() => stopChild(upstream.child));
  const gateways: { name: string; port: number; key: string; child: ChildProcess }[] = [];
  for (const [name, dir] of [
    ['old', oldDir],
    ['new', newDir],
  ] as const) {
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'cmg-ab-')),
      OPENROUTER_API_KEY: KEY,
      OPENROUTER_BASE_URL: `http://127.0.0.1:${upstream.port}/api/v1`,
      ADMIN_TOKEN: randomBytes(24).toString('hex'),
      LOG_LEVEL: 'warn',
    };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    if (process.env.BENCH_DATABASE_URL) {
      const db = await createScratchDatabase(process.env.BENCH_DATABASE_URL);
      guard.push(db.drop);
      env.DATABASE_URL = db.url;
    }
    if (process.env.BENCH_REDIS_URL) env.REDIS_URL = process.env.BENCH_REDIS_URL;
    const port = await freePort();
    const child = spawn('taskset', ['-c', '1', process.execPath, ...startNodeFlags(), join(dir, 'dist/main.js')], {
      cwd: env.DATA_DIR,
      env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    guard.push(() => stopChild(child));
    await waitHealthy(port, child);
    gateways.push({ name, port, key: await createKey(port, env.ADMIN_TOKEN), child });
  }
  const results: Record<string, number[]> = {};
  for (let round = 0; round < 6; round++) {
    for (const path of ['plain', 'stream'] as const) {
      for (const g of round % 2 ? [...gateways].reverse() : gateways) {
        const target = {
          port: g.port,
          path: '/v1/chat/completions',
          headers: { authorization: `Bearer ${g.key}`, 'content-type': 'application/json' },
          body: bodies[path],
          expect: path === 'stream' ? '[DONE]' : undefined,
        };
        await runLoad(target, { connections: 64, durationMs: 500, record: false });
        const r = await runLoad(target, { connections: 64, durationMs: 4_000 });
        (results[`${g.name} ${path}`] ??= []).push((r.okInWindow / r.elapsedMs) * 1000);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  for (const [k, xs] of Object.entries(results))
    console.log(`${k}: median ${median(xs).toFixed(0)} req/s (${xs.map((x) => x.toFixed(0)).join(', ')})`);
}

void guard.run(main);
