import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { runScript, startGatewayProcess, type GatewayProcess } from './helpers/processes.js';

const keyIn = (stdout: string) => /cmg_[A-Za-z0-9_-]{43}/.exec(stdout)?.[0];
const idIn = (stdout: string) => /key id:\s+(key_\S+)/.exec(stdout)?.[1];

describe('npm start and the keys CLI on the embedded database', () => {
  let fake: FakeOpenRouter;
  let dataDir: string;
  let gateway: GatewayProcess | undefined;
  let env: Record<string, string>;

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    dataDir = mkdtempSync(join(tmpdir(), 'cmg-cli-'));
    env = { DATA_DIR: dataDir, OPENROUTER_API_KEY: 'sk-or-v1-fake', OPENROUTER_BASE_URL: fake.baseUrl, LOG_LEVEL: 'warn' };
  });
  afterAll(async () => {
    await gateway?.stop('SIGKILL');
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const chat = (key: string) =>
    fetch(`${gateway!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('makes a key before the first start, works on the database directly', async () => {
    const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', 'acme', '--name', 'first'], env);
    expect(created.code).toBe(0);
    const key = keyIn(created.stdout)!;
    expect(key).toBeDefined();
    expect(created.stderr).toMatch(/shown once/);

    gateway = await startGatewayProcess(env);
    const res = await chat(key);
    expect(res.status).toBe(200);
    expect((await res.json()).choices[0].message.content).toBe('You said: hi');
  });

  it('goes through the running gateway (PGlite admits one process), and a revoke applies at once', async () => {
    const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', 'acme', '--name', 'second'], env);
    expect(created.code, created.stderr).toBe(0);
    const key = keyIn(created.stdout)!;
    expect((await chat(key)).status).toBe(200);

    const listed = await runScript('src/cli.ts', ['keys', 'list', '--json'], env);
    const names = JSON.parse(listed.stdout).map((k: any) => k.name);
    expect(names).toEqual(['first', 'second']);
    expect(listed.stdout).not.toContain(key);

    const revoked = await runScript('src/cli.ts', ['keys', 'revoke', idIn(created.stdout)!], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await chat(key)).status).toBe(401);
  });

  it('reports usage through the running gateway, as a table and as CSV', async () => {
    const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', 'acme', '--name', 'third'], env);
    const key = keyIn(created.stdout)!;
    for (let i = 0; i < 3; i++) expect((await chat(key)).status).toBe(200);
    // The ledger writes after the response; give it a moment (bounded).
    let csv = '';
    for (let i = 0; i < 50 && !/,3,0,/.test(csv); i++) {
      csv = (await runScript('src/cli.ts', ['usage', '--group-by', 'key,model', '--key', 'third', '--csv'], env)).stdout;
    }
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe('key,key_name,workspace,workspace_id,model,requests,errors,prompt_tokens,completion_tokens,cost_usd,unpriced_requests,unpriced_tokens');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^key_\S+,third,acme,ws_\S+,openai\/gpt-4o-mini,3,0,\d+,\d+,0\.\d+,0,0$/);
    const table = await runScript('src/cli.ts', ['usage', '--group-by', 'model'], env);
    expect(table.stdout).toMatch(/TOTAL/);
  });

  it('refuses a second gateway on the same data directory', async () => {
    const second = await runScript('src/main.ts', [], { ...env, PORT: '0' }, 30_000);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/already uses/);
  });

  it('stops on SIGTERM with exit code 0, and the CLI then reads the database directly', async () => {
    expect(await gateway!.stop('SIGTERM')).toBe(0);
    gateway = undefined;
    const csv = await runScript('src/cli.ts', ['usage', '--group-by', 'key', '--key', 'third', '--csv'], env);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.trim().split('\r\n')[1]).toMatch(/,third,acme,ws_\S+,3,0,/);
  });

  it('rejects bad configuration with one line per bad variable', async () => {
    const bad = await runScript('src/main.ts', [], { ...env, PORT: 'abc', LOG_LEVEL: 'chatty', DATABASE_URL: 'mysql://x' }, 30_000);
    expect(bad.code).toBe(1);
    const lines = bad.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.split(':')[1].trim()).sort()).toEqual(['DATABASE_URL', 'LOG_LEVEL', 'PORT']);
  });

  it('answers a usage error with exit code 2 and the usage text', async () => {
    const res = await runScript('src/cli.ts', ['keys', 'create', '--name', 'x'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/needs --workspace/);
  });
});
