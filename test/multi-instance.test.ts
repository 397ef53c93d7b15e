import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { ADMIN_TOKEN, statusAfterChange } from './helpers/gateway.js';
import { runScript, startGatewayProcess, type GatewayProcess } from './helpers/processes.js';
import { MODEL, user } from './helpers/proxy-env.js';

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: any[] }).rows);

// Two real gateway processes on one Postgres and one Redis (CI provides both).
describe.runIf(inject('postgresUrl') && inject('redisUrl'))('two gateway instances, one truth', () => {
  let fake: FakeOpenRouter;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let db: Database;
  let prefix = '';
  const dirs: string[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    const env = (name: string) => {
      const dir = mkdtempSync(join(tmpdir(), `cmg-${name}-`));
      dirs.push(dir);
      return {
        DATABASE_URL: inject('postgresUrl'),
        REDIS_URL: inject('redisUrl'),
        REDIS_KEY_PREFIX: `mi${randomBytes(4).toString('hex')}:`,
        DATA_DIR: dir,
        OPENROUTER_API_KEY: 'sk-or-v1-fake',
        OPENROUTER_BASE_URL: fake.baseUrl,
        ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        KEY_CACHE_TTL_MS: '600000',
      };
    };
    const shared = env('a');
    prefix = shared.REDIS_KEY_PREFIX;
    [a, b] = await Promise.all([
      startGatewayProcess(shared),
      startGatewayProcess({ ...env('b'), REDIS_KEY_PREFIX: shared.REDIS_KEY_PREFIX }),
    ]);
    db = await openDatabase({ url: inject('postgresUrl') }, { migrate: false, poolSize: 2 });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.close();
    await fake?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const admin = async (gw: GatewayProcess, path: string, body?: unknown) =>
    (
      await fetch(gw.url + path, {
        method: body ? 'POST' : 'GET',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      })
    ).json();
  const send = (gw: GatewayProcess, key: string) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [user('hello from a test')] }),
    });

  it('fetched the model catalog once for both', async () => {
    await Promise.all([fetch(`${a.url}/health/ready`), fetch(`${b.url}/health/ready`)]);
    const catalogFetches = fake.requests.filter((r) => r.path.endsWith('/models'));
    expect(catalogFetches).toHaveLength(1);
  });

  it("holds a key's RPM limit across both instances", async () => {
    const ws = `mi-${Date.now()}`;
    await admin(a, '/admin/workspaces', { name: ws });
    const { key } = await admin(a, '/admin/keys', { workspace: ws, name: 'shared', rpm: 100 });
    let accepted = 0;
    const tasks = Array.from({ length: 300 }, (_, i) => async () => {
      const res = await send(i % 2 ? a : b, key);
      if (res.status === 200) accepted++;
      else expect(res.status).toBe(429);
      await res.text();
    });
    const queue = [...tasks];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let t = queue.shift(); t; t = queue.shift()) await t();
      }),
    );
    expect(accepted).toBeGreaterThanOrEqual(100);
    expect(accepted).toBeLessThanOrEqual(101); // limit + 1%
  });

  it('a key revoked through one instance is refused by the other within one second', async () => {
    const ws = `mi-rev-${Date.now()}`;
    await admin(a, '/admin/workspaces', { name: ws });
    const { key, id } = await admin(a, '/admin/keys', { workspace: ws, name: 'revoke-me' });
    expect((await send(b, key)).status).toBe(200);
    await admin(a, `/admin/keys/${id}/revoke`, {});
    expect(await statusAfterChange(() => send(b, key), 1_000)).toBe(401);
  });

  it('a key revoked with the CLI on the database is refused by a running instance within one second', async () => {
    const ws = `mi-cli-${Date.now()}`;
    await admin(a, '/admin/workspaces', { name: ws });
    const { key, id } = await admin(a, '/admin/keys', { workspace: ws, name: 'cli-revoke' });
    expect((await send(b, key)).status).toBe(200);
    const cli = await runScript('src/cli.ts', ['keys', 'revoke', id], {
      DATABASE_URL: inject('postgresUrl'),
      REDIS_URL: inject('redisUrl'),
      REDIS_KEY_PREFIX: prefix,
    });
    expect(cli.code, cli.stderr).toBe(0);
    expect(await statusAfterChange(() => send(b, key), 1_000)).toBe(401);
  });

  it("writes both instances' usage into one ledger without conflicts", async () => {
    const ws = `mi-led-${Date.now()}`;
    await admin(a, '/admin/workspaces', { name: ws });
    const { key } = await admin(a, '/admin/keys', { workspace: ws, name: 'ledger' });
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await send(i % 2 ? a : b, key);
        expect(res.status).toBe(200);
        ids.push(res.headers.get('x-request-id')!);
        await res.text();
      }),
    );
    const until = Date.now() + 10_000;
    let n = 0;
    while (Date.now() < until) {
      n = rowsOf(
        await db.db.execute(
          sql`select count(*)::int as n from usage_records r join workspaces w on w.id = r.workspace_id where w.name = ${ws}`,
        ),
      )[0].n;
      if (n >= 40) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(n).toBe(40);
    const report = await (
      await fetch(`${b.url}/admin/usage?workspace=${ws}&group_by=workspace`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json();
    expect(report.totals.requests).toBe(40);
  });
});
