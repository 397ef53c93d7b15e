import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/client.js';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { MODEL, user } from './helpers/proxy-env.js';
import { startUrlRelay, type TcpRelay } from './helpers/tcp-relay.js';

const OUTAGE_MS = 20_000;

// Needs a real Postgres behind a relay the test can cut; CI always provides one (TEST_DATABASE_URL).
describe.runIf(inject('postgresUrl'))('usage ledger across a 20 s Postgres outage', () => {
  let fake: FakeOpenRouter;
  let relay: TcpRelay;
  let database: Database;
  let direct: Database;
  let gw: TestGateway;

  beforeAll(async () => {
    let viaRelay: string;
    ({ relay, url: viaRelay } = await startUrlRelay(inject('postgresUrl')));
    fake = await startFakeOpenRouter();
    database = await openDatabase({ url: viaRelay }, { poolSize: 4 });
    direct = await openDatabase({ url: inject('postgresUrl') }, { poolSize: 2, migrate: false });
    gw = await startTestGateway({ database, upstreamUrl: fake.baseUrl, config: { keyCacheTtlMs: 5_000 } });
  });
  afterAll(async () => {
    await gw?.close();
    await database?.close();
    await direct?.close();
    await relay?.close();
    await fake?.close();
  });

  it('keeps every request answered and recorded exactly once', async () => {
    const { key } = await gw.createKey();
    const ws = (await gw.deps.keys.listKeys()).find((k) => k.name === 'test' && k.prefix === key.slice(0, 10))!.workspaceId;
    const sent: string[] = [];
    const failures: string[] = [];
    const send = async (i: number) => {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, stream: i % 2 === 0, messages: [user(`request ${i}`)] }),
      });
      await res.text();
      if (res.status !== 200) failures.push(`${i}: ${res.status}`);
      sent.push(res.headers.get('x-request-id')!);
    };
    // Steady traffic: before, during and after the outage (bounded: ~30 s at ~25 req/s).
    let i = 0;
    const traffic = (async () => {
      const until = Date.now() + OUTAGE_MS + 8_000;
      while (Date.now() < until && i < 2_000) {
        await Promise.all([send(i++), send(i++)]);
        await new Promise((r) => setTimeout(r, 60));
      }
    })();
    await new Promise((r) => setTimeout(r, 3_000));
    relay.cut();
    const answeredBeforeCut = sent.length;
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    expect(gw.deps.usage.stats().failures).toBeGreaterThan(0); // the writer really saw the outage
    const pendingDuringOutage = gw.deps.usage.stats().pending;
    const answeredDuringOutage = sent.length - answeredBeforeCut;
    relay.restore();
    await traffic;
    // The gateway kept answering while Postgres was away (~25 req/s offered; every answer a 200, checked below).
    expect(answeredDuringOutage).toBeGreaterThan(100);
    // Not held in memory: spilled to disk within the bound (~625 ms of traffic at most is in memory).
    expect(gw.deps.usage.stats().spilled).toBeGreaterThan(100);
    expect(pendingDuringOutage).toBeLessThan(60);
    await gw.deps.usage.flush(30_000);

    expect(failures).toEqual([]);
    const rows = await direct.db.execute<{ request_id: string }>(
      (await import('drizzle-orm')).sql`select request_id from usage_records where workspace_id = ${ws}`,
    );
    const ids = (Array.isArray(rows) ? rows : (rows as any).rows).map((r: any) => r.request_id);
    expect(ids.length).toBe(sent.length);
    expect(new Set(ids)).toEqual(new Set(sent));
    const rollup = await direct.db.execute(
      (await import('drizzle-orm')).sql`select sum(requests)::int as n from usage_daily where workspace_id = ${ws}`,
    );
    expect((Array.isArray(rollup) ? rollup : (rollup as any).rows)[0].n).toBe(sent.length);
  }, 90_000);
});
