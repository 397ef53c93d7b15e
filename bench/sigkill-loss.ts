// `npm run bench:sigkill` — how many usage records a SIGKILL loses while Postgres is hung.
//
// For each delay: a fresh gateway process (the built dist/, as `npm start` runs it) on a real
// Postgres behind a relay; 20 requests are written normally, then the relay freezes (connections
// stay open, no byte passes), 500 requests are answered, and the process is killed with SIGKILL
// `delay` ms after the last answer. A second process on the same DATA_DIR, straight to Postgres,
// replays what was spilled; the records that never arrive are the loss. Bounded: 6 rounds of
// 520 requests, each waited on for at most 20 s. Loopback only.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../src/db/client.js';
import { startFakeOpenRouter } from '../test/fake-openrouter/server.js';
import { ROOT, runScript, startGatewayProcess, type GatewayProcess } from '../test/helpers/processes.js';
import { startTcpRelay } from '../test/helpers/tcp-relay.js';
import { sendChatBurst } from '../test/helpers/chat-burst.js';
import { commandLine, gitRevision } from './bench-env.js';
import { createScratchDatabase } from './procs.js';

const DELAYS_MS = (process.env.BENCH_KILL_DELAYS ?? '0,100,250,500,750,1000').split(',').map(Number);
const DURING = 500;
const BEFORE = 20;
const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);

const sendMany = (gw: GatewayProcess, key: string, n: number) => sendChatBurst(gw.url, key, n);

async function main() {
  const base = process.env.BENCH_DATABASE_URL;
  if (!base) throw new Error('set BENCH_DATABASE_URL (a Postgres server; a scratch database is created and dropped)');
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const scratch = await createScratchDatabase(base);
  const target = new URL(scratch.url);
  const fake = await startFakeOpenRouter();
  const relay = await startTcpRelay(Number(target.port || 5432), target.hostname);
  const viaRelay = new URL(target);
  viaRelay.port = String(relay.port);
  const direct = await openDatabase({ url: scratch.url }, { poolSize: 2 });
  const results: { delay: number; lost: number; replayed: number }[] = [];
  try {
    for (const delay of DELAYS_MS) {
      relay.restore();
      const dataDir = mkdtempSync(join(tmpdir(), 'cmg-bench-kill-'));
      const env = {
        DATA_DIR: dataDir,
        DATABASE_URL: viaRelay.toString(),
        OPENROUTER_API_KEY: 'sk-or-v1-fake',
        OPENROUTER_BASE_URL: fake.baseUrl,
        LOG_LEVEL: 'error',
      };
      const workspace = `kill-${delay}-${Date.now()}`;
      const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', workspace, '--name', 'k'], {
        ...env,
        DATABASE_URL: scratch.url,
      });
      const key = /cmg_[A-Za-z0-9_-]{43}/.exec(created.stdout)![0];
      const count = async () =>
        Number(
          rowsOf(
            await direct.db.execute(
              sql`select count(*)::int as n from usage_records r join workspaces w on w.id = r.workspace_id where w.name = ${workspace}`,
            ),
          )[0].n,
        );
      const waitFor = async (n: number, ms: number) => {
        const until = Date.now() + ms;
        while ((await count()) < n && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        return count();
      };
      let gw = await startGatewayProcess(env);
      await sendMany(gw, key, BEFORE);
      await waitFor(BEFORE, 10_000);
      relay.freeze();
      await sendMany(gw, key, DURING);
      if (delay) await new Promise((r) => setTimeout(r, delay));
      await gw.stop('SIGKILL');
      relay.restore();
      gw = await startGatewayProcess({ ...env, DATABASE_URL: scratch.url });
      const found = await waitFor(BEFORE + DURING, 20_000);
      await gw.stop('SIGTERM');
      rmSync(dataDir, { recursive: true, force: true });
      results.push({ delay, lost: BEFORE + DURING - found, replayed: found - BEFORE });
      console.log(`kill ${delay} ms after the last answer: ${BEFORE + DURING - found} of ${DURING} lost`);
    }
  } finally {
    await direct.close();
    await relay.close();
    await fake.close();
    await scratch.drop();
  }
  console.log(`\n${commandLine('bench:sigkill', ['BENCH_DATABASE_URL'])} on ${gitRevision()}\n`);
  console.log('| SIGKILL after the last answer | records lost (of 500 answered while Postgres hung) |');
  console.log('| ---: | ---: |');
  for (const r of results) console.log(`| ${r.delay} ms | ${r.lost} |`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
