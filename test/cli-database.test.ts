import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { runScript, startGatewayProcess, type GatewayProcess } from './helpers/processes.js';

const keyIn = (stdout: string) => /cmg_[A-Za-z0-9_-]{43}/.exec(stdout)?.[0];
const idIn = (stdout: string) => /key id:\s+(key_\S+)/.exec(stdout)?.[1];

/** The run's Postgres URL with a password put in (trust auth ignores it): it must never be printed. */
function withPassword(url: string, host?: string): string {
  const u = new URL(url);
  u.username = u.username || 'postgres';
  u.password = 'hunter2-secret';
  if (host) u.hostname = host;
  return u.toString();
}

describe.skipIf(!inject('postgresUrl'))('the CLI against a gateway on Postgres', () => {
  let fake: FakeOpenRouter;
  let gateway: GatewayProcess;
  let dataDir: string;
  let cliDir: string;
  let pgUrl: string;
  let otherDb: string;
  const redisUrl = inject('redisUrl');

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    dataDir = mkdtempSync(join(tmpdir(), 'cmg-clipg-gw-'));
    cliDir = mkdtempSync(join(tmpdir(), 'cmg-clipg-cli-'));
    pgUrl = withPassword(inject('postgresUrl'));
    gateway = await startGatewayProcess({
      DATABASE_URL: pgUrl,
      DATA_DIR: dataDir,
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      OPENROUTER_API_KEY: 'sk-or-v1-fake',
      OPENROUTER_BASE_URL: fake.baseUrl,
      LOG_LEVEL: 'warn',
    });
  });
  afterAll(async () => {
    await gateway?.stop('SIGKILL');
    await fake?.close();
    if (otherDb) {
      const admin = postgres(inject('postgresUrl'), { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${otherDb} with (force)`).catch(() => {});
      await admin.end();
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(cliDir, { recursive: true, force: true });
  });

  /** The CLI in a shell with the gateway's PORT and only the variables given. */
  const cli = (args: string[], env: Record<string, string>) =>
    runScript('src/cli.ts', args, { DATA_DIR: cliDir, PORT: new URL(gateway.url).port, LOG_LEVEL: 'warn', ...env });
  const chat = (key: string) =>
    fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });

  it("/health carries the database's kind and a fingerprint, nothing that names or opens it", async () => {
    const health = await (await fetch(`${gateway.url}/health`)).json();
    expect(health).toEqual({ status: 'ok', database: { kind: 'postgres', fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    const text = JSON.stringify(health);
    const u = new URL(pgUrl);
    for (const secret of ['hunter2', u.pathname.slice(1), u.hostname]) expect(text).not.toContain(secret);
  });

  it('without DATABASE_URL in its shell, the CLI says it writes the embedded database and warns that the gateway uses Postgres', async () => {
    const res = await cli(['keys', 'create', '--workspace', 'acme', '--name', 'lost'], {});
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`warning: the gateway running at ${gateway.url} uses a different database than this command.`);
    expect(res.stderr).toContain('  gateway:      Postgres\n');
    expect(res.stderr).toContain(`  this command: embedded PGlite in ${realpathSync(cliDir)}`);
    expect(res.stderr).toContain("Run the CLI with the gateway's DATABASE_URL");
    expect(res.stderr).toContain(`database: embedded PGlite in ${realpathSync(cliDir)} (DATABASE_URL is not set: DATA_DIR=${cliDir})`);
    // What the warning says: that key is refused by the gateway.
    expect((await chat(keyIn(res.stdout)!)).status).toBe(401);
  });

  it("with the gateway's DATABASE_URL (another spelling of the host), no warning, the masked URL, and the key works", async () => {
    const sameDb = withPassword(inject('postgresUrl'), 'localhost') + '?sslmode=disable';
    const res = await cli(['keys', 'create', '--workspace', 'acme', '--name', 'app'], {
      DATABASE_URL: sameDb,
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toMatch(/warning/);
    const u = new URL(pgUrl);
    expect(res.stderr).toContain(
      `database: postgres://${u.username}:***@localhost:${u.port || 5432}${u.pathname} (+ options) (DATABASE_URL)`,
    );
    expect(res.stdout + res.stderr).not.toContain('hunter2');
    const key = keyIn(res.stdout)!;
    expect((await chat(key)).status).toBe(200);

    // Revoke by name, on Postgres directly: with Redis the gateway refuses the key at once.
    const revoked = await cli(['keys', 'revoke', 'app', '--workspace', 'acme'], {
      DATABASE_URL: sameDb,
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    });
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${idIn(res.stdout)} ("app" in workspace acme)`);
    expect(revoked.stderr + revoked.stdout).not.toContain('hunter2');
    if (redisUrl) expect((await chat(key)).status).toBe(401);
  });

  it('on another Postgres database, the CLI warns', async () => {
    otherDb = `cmg_clipg_${Date.now()}`;
    const admin = postgres(inject('postgresUrl'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${otherDb}`);
    await admin.end();
    const u = new URL(withPassword(inject('postgresUrl')));
    u.pathname = `/${otherDb}`;
    const res = await cli(['workspaces', 'create', 'elsewhere'], { DATABASE_URL: u.toString() });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('  gateway:      Postgres, but another server or database\n');
    expect(res.stderr).toContain(`  this command: postgres://${u.username}:***@${u.hostname}:${u.port || 5432}/${otherDb}`);
    expect(res.stderr).not.toContain('hunter2');
  });
});
