import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { runScript, startGatewayProcess, type GatewayProcess } from './helpers/processes.js';
import { MODEL, user } from './helpers/proxy-env.js';
import { startTcpRelay } from './helpers/tcp-relay.js';

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);

/** Opens n slow streams and resolves once each has received its first bytes; then reads them to the end. */
async function openStreams(gw: GatewayProcess, key: string, n: number, delayMs: number) {
  const started: Promise<void>[] = [];
  const done: Promise<string>[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        stream: true,
        messages: [user('one two three four five six')],
        fake: { mode: 'slow', delayMs },
      }),
    });
    const reader = res.body!.getReader();
    let text = '';
    let signalStart!: () => void;
    started.push(new Promise<void>((r) => (signalStart = r)));
    done.push(
      (async () => {
        for (;;) {
          const { done: end, value } = await reader.read();
          if (end) return text;
          text += new TextDecoder().decode(value);
          signalStart();
        }
      })(),
    );
  }
  await Promise.all(started);
  return done;
}

describe('graceful restart of a real gateway process', () => {
  let fake: FakeOpenRouter;
  let dataDir: string;
  let env: Record<string, string>;
  let key: string;

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    dataDir = mkdtempSync(join(tmpdir(), 'cmg-restart-'));
    env = { DATA_DIR: dataDir, OPENROUTER_API_KEY: 'sk-or-v1-fake', OPENROUTER_BASE_URL: fake.baseUrl, LOG_LEVEL: 'warn' };
    const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', 'acme', '--name', 'restart'], env);
    key = /cmg_[A-Za-z0-9_-]{43}/.exec(created.stdout)![0];
  });
  afterAll(async () => {
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('SIGTERM with 20 open streams: each finishes with [DONE], every request is recorded, exit 0', async () => {
    const gw = await startGatewayProcess({ ...env, SHUTDOWN_GRACE_MS: '10000' });
    const streams = await openStreams(gw, key, 20, 120);
    const exit = gw.stop('SIGTERM');
    // Readiness turns 503 while draining (or the listener is already gone): poll, bounded.
    let ready: number | string = 200;
    for (let i = 0; i < 50 && ready === 200; i++) {
      ready = await fetch(`${gw.url}/health/ready`).then(
        (r) => r.status,
        () => 'refused',
      );
      if (ready === 200) await new Promise((r) => setTimeout(r, 20));
    }
    expect([503, 'refused']).toContain(ready);
    const bodies = await Promise.all(streams);
    for (const body of bodies) expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(await exit).toBe(0);
    const db = await openDatabase({ dataDir });
    const rows = rowsOf(await db.db.execute(sql`select status, count(*)::int as n from usage_records group by status`));
    await db.close();
    expect(rows).toEqual([{ status: 'ok', n: 20 }]);
  }, 60_000);

  it('past the grace period, open streams get an error event and are recorded as aborted', async () => {
    const gw = await startGatewayProcess({ ...env, SHUTDOWN_GRACE_MS: '300' });
    const streams = await openStreams(gw, key, 3, 1_000);
    const exit = gw.stop('SIGTERM');
    const bodies = await Promise.all(streams);
    for (const body of bodies) {
      const last = body.trim().split('\n\n').at(-1)!;
      expect(JSON.parse(last.slice(6)).error.code).toBe('service_unavailable');
    }
    expect(await exit).toBe(0);
    const db = await openDatabase({ dataDir });
    const rows = rowsOf(await db.db.execute(sql`select count(*)::int as n from usage_records where status = 'aborted'`));
    await db.close();
    expect(rows[0].n).toBe(3);
  }, 60_000);
});

// A real Postgres behind a relay the test can cut; CI always provides one.
describe.runIf(inject('postgresUrl'))('records spilled at shutdown during a Postgres outage', () => {
  it('are written to disk, then replayed by the next start', async () => {
    const fake = await startFakeOpenRouter();
    const target = new URL(inject('postgresUrl'));
    const relay = await startTcpRelay(Number(target.port || 5432), target.hostname);
    const viaRelay = new URL(target);
    viaRelay.port = String(relay.port);
    const dataDir = mkdtempSync(join(tmpdir(), 'cmg-spill-'));
    const env = {
      DATA_DIR: dataDir,
      DATABASE_URL: viaRelay.toString(),
      OPENROUTER_API_KEY: 'sk-or-v1-fake',
      OPENROUTER_BASE_URL: fake.baseUrl,
      LOG_LEVEL: 'warn',
      SHUTDOWN_GRACE_MS: '1000',
    };
    const workspace = `spill-${Date.now()}`;
    const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', workspace, '--name', 'spill'], env);
    const key = /cmg_[A-Za-z0-9_-]{43}/.exec(created.stdout)![0];
    let gw = await startGatewayProcess(env);
    try {
      const send = async () => {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, messages: [user('hello')] }),
        });
        expect(res.status).toBe(200);
        await res.text();
      };
      for (let i = 0; i < 5; i++) await send(); // caches the key and writes normally
      relay.cut();
      for (let i = 0; i < 15; i++) await send();
      expect(await gw.stop('SIGTERM')).toBe(0);
      expect(readdirSync(dataDir).some((f) => f.startsWith('usage-spill'))).toBe(true);

      relay.restore();
      gw = await startGatewayProcess(env);
      const direct = await openDatabase({ url: target.toString() }, { migrate: false, poolSize: 1 });
      try {
        const count = async () =>
          rowsOf(
            await direct.db.execute(
              sql`select count(*)::int as n from usage_records r join workspaces w on w.id = r.workspace_id where w.name = ${workspace}`,
            ),
          )[0].n;
        const until = Date.now() + 15_000;
        while ((await count()) < 20 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
        expect(await count()).toBe(20);
        expect(existsSync(join(dataDir, 'usage-spill.jsonl'))).toBe(false);
      } finally {
        await direct.close();
      }
    } finally {
      await gw.stop('SIGTERM');
      await relay.close();
      await fake.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
