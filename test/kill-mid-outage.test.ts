import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { runScript, startGatewayProcess, type GatewayProcess } from './helpers/processes.js';
import { sendChatBurst } from './helpers/chat-burst.js';
import { MODEL } from './helpers/proxy-env.js';
import { startTcpRelay, type TcpRelay } from './helpers/tcp-relay.js';

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);

// Real gateway processes on a real Postgres behind a relay that freezes (accepts, passes nothing).
describe.runIf(inject('postgresUrl'))('a gateway killed or stopped in the middle of a Postgres outage', () => {
  let fake: FakeOpenRouter;
  let relay: TcpRelay;
  let direct: Database;
  const target = () => new URL(inject('postgresUrl'));
  const viaRelay = () => {
    const u = target();
    u.port = String(relay.port);
    return u.toString();
  };

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    relay = await startTcpRelay(Number(target().port || 5432), target().hostname);
    direct = await openDatabase({ url: target().toString() }, { poolSize: 2 });
  });
  afterAll(async () => {
    await direct?.close();
    await relay?.close();
    await fake?.close();
  });

  async function setUp(dataDir: string) {
    relay.restore();
    const env = {
      DATA_DIR: dataDir,
      DATABASE_URL: viaRelay(),
      OPENROUTER_API_KEY: 'sk-or-v1-fake',
      OPENROUTER_BASE_URL: fake.baseUrl,
      LOG_LEVEL: 'warn',
      SHUTDOWN_GRACE_MS: '500',
    };
    const workspace = `kill-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', workspace, '--name', 'kill'], {
      ...env,
      DATABASE_URL: target().toString(),
    });
    const key = /cmg_[A-Za-z0-9_-]{43}/.exec(created.stdout)![0];
    const count = async (): Promise<number> =>
      rowsOf(
        await direct.db.execute(
          sql`select count(*)::int as n from usage_records r join workspaces w on w.id = r.workspace_id where w.name = ${workspace}`,
        ),
      )[0].n;
    return { env, key, count };
  }

  const sendMany = (gw: GatewayProcess, key: string, n: number) => sendChatBurst(gw.url, key, n, MODEL);

  it('SIGKILL 1 s after the last answer, with Postgres hung: nothing lost, all replayed by the next start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cmg-kill-'));
    const { env, key, count } = await setUp(dataDir);
    let gw = await startGatewayProcess(env);
    try {
      await sendMany(gw, key, 20); // key cached, records written normally
      const until = Date.now() + 10_000;
      while ((await count()) < 20 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await count()).toBe(20);

      relay.freeze();
      await sendMany(gw, key, 500);
      await new Promise((r) => setTimeout(r, 1_000)); // the documented bound: on disk within ~625 ms
      expect(await gw.stop('SIGKILL')).toBe(null);
      expect(await count()).toBe(20); // nothing of the outage reached Postgres

      relay.restore();
      gw = await startGatewayProcess({ ...env, DATABASE_URL: target().toString() });
      const replayUntil = Date.now() + 20_000;
      while ((await count()) < 520 && Date.now() < replayUntil) await new Promise((r) => setTimeout(r, 100));
      expect(await count()).toBe(520);
    } finally {
      await gw.stop('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('an unwritable DATA_DIR during the outage: keeps serving, reports degraded, exits 0 on SIGTERM and counts every record it lost', async () => {
    // Root ignores permission bits: a DATA_DIR under a regular file can never be created (ENOTDIR).
    const parent = mkdtempSync(join(tmpdir(), 'cmg-unwritable-'));
    writeFileSync(join(parent, 'file'), '');
    const dataDir = join(parent, 'file', 'data');
    const { env, key, count } = await setUp(dataDir);
    const gw = await startGatewayProcess(env);
    try {
      await sendMany(gw, key, 5);
      const until = Date.now() + 10_000;
      while ((await count()) < 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      relay.freeze();
      await sendMany(gw, key, 100);
      await new Promise((r) => setTimeout(r, 1_000));
      const ready = await fetch(`${gw.url}/health/ready`).then((r) => r.json());
      expect(ready.status).toBe('degraded');
      expect(ready.checks.usage_writer).toMatchObject({ status: 'degraded', spill_writable: false });
      const metrics = await fetch(`${gw.url}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/cmg_spill_disk_failing\{writer="usage"\} 1/);
      expect(await gw.stop('SIGTERM')).toBe(0);
      const lost = gw
        .output()
        .split('\n')
        .filter((l) => l.includes('records lost'))
        .map((l) => JSON.parse(l));
      expect(lost.at(-1)?.lost_total).toBe(100);
      expect(
        gw
          .output()
          .split('\n')
          .filter((l) => l.includes('cannot write the spill file')),
      ).toHaveLength(1);
    } finally {
      relay.restore();
      await gw.stop('SIGKILL');
      rmSync(parent, { recursive: true, force: true });
    }
  }, 120_000);
});
