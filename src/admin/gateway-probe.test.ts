import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { configWith } from '../config.js';
import { databaseIdentity } from '../db/identity.js';
import { localGatewayUrl, otherDatabaseWarning } from './gateway-probe.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(null));
  server = undefined;
});

/** A stand-in for a gateway's /health; returns the port. */
async function serve(handler: (res: import('node:http').ServerResponse) => void): Promise<number> {
  server = createServer((_req, res) => handler(res));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const json = (body: unknown) => (res: import('node:http').ServerResponse) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('the gateway probe', () => {
  const pg = { databaseUrl: 'postgres://app:pw@db.internal:5432/cmg', dataDir: './.data' };

  it('finds the gateway where npm start in the same shell listens', () => {
    expect(localGatewayUrl({ host: '0.0.0.0', port: 8080 })).toBe('http://127.0.0.1:8080');
    expect(localGatewayUrl({ host: '::', port: 8080 })).toBe('http://127.0.0.1:8080');
    expect(localGatewayUrl({ host: '10.1.2.3', port: 9000 })).toBe('http://10.1.2.3:9000');
    expect(localGatewayUrl({ host: '::1', port: 9000 })).toBe('http://[::1]:9000');
    expect(localGatewayUrl({ host: '0.0.0.0', port: 0 })).toBeNull();
  });

  it('is quiet on the same database, warns on another', async () => {
    const port = await serve(json({ status: 'ok', database: { kind: 'postgres', fingerprint: databaseIdentity(pg).fingerprint } }));
    expect(await otherDatabaseWarning(configWith({ ...pg, host: '127.0.0.1', port }))).toBeNull();
    const warning = await otherDatabaseWarning(
      configWith({ databaseUrl: undefined, dataDir: '/tmp/cmg-elsewhere', host: '127.0.0.1', port }),
    );
    expect(warning).toContain(`the gateway running at http://127.0.0.1:${port} uses a different database`);
    expect(warning).toContain('gateway:      Postgres');
    expect(warning).toContain('this command: embedded PGlite in /tmp/cmg-elsewhere');
  });

  it('says nothing when nothing listens, the answer is not a gateway, or it is slow', async () => {
    const config = (port: number) => configWith({ ...pg, host: '127.0.0.1', port });
    let port = await serve(json({ status: 'ok' })); // an older gateway: no fingerprint
    expect(await otherDatabaseWarning(config(port))).toBeNull();
    await new Promise((r) => server!.close(r));
    expect(await otherDatabaseWarning(config(port))).toBeNull(); // nothing listens now
    port = await serve((res) => res.end('<html>not a gateway</html>'));
    expect(await otherDatabaseWarning(config(port))).toBeNull();
    await new Promise((r) => server!.close(r));
    port = await serve(() => {}); // never answers
    const t0 = Date.now();
    expect(await otherDatabaseWarning(config(port), { timeoutMs: 200 })).toBeNull();
    expect(Date.now() - t0).toBeLessThan(1_500);
  });
});
