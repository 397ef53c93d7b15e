import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { parseCsv } from './dashboard/csv.js';
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

  /** The CLI with the gateway's PORT, as in the shell that started it (so it can find it). */
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    runScript('src/cli.ts', args, { ...env, PORT: new URL(gateway!.url).port, ...extra });

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

  it('says on every write which database it writes, and warns when the gateway at PORT uses another', async () => {
    const same = await cli(['keys', 'create', '--workspace', 'acme', '--name', 'fourth']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toContain(
      `database: embedded PGlite in ${realpathSync(dataDir)} (through the running gateway at ${gateway!.url}, which holds it)`,
    );
    expect(same.stderr).not.toMatch(/warning/);
    expect((await chat(keyIn(same.stdout)!)).status).toBe(200);

    // The mistake: the shell the CLI runs in does not have the gateway's database settings.
    const elsewhere = mkdtempSync(join(tmpdir(), 'cmg-cli-other-'));
    try {
      const other = await cli(['keys', 'create', '--workspace', 'acme', '--name', 'lost'], { DATA_DIR: elsewhere });
      expect(other.code, other.stderr).toBe(0);
      expect(other.stderr).toContain(`warning: the gateway running at ${gateway!.url} uses a different database than this command.`);
      expect(other.stderr).toContain('gateway:      embedded PGlite, but another data directory');
      expect(other.stderr).toContain(`this command: embedded PGlite in ${realpathSync(elsewhere)}`);
      expect(other.stderr).toMatch(/keys made here are refused there \(401\)/);
      expect(other.stderr).toContain(
        `database: embedded PGlite in ${realpathSync(elsewhere)} (DATABASE_URL is not set: DATA_DIR=${elsewhere})`,
      );
      // The warning comes before the key, and is right: the gateway refuses it.
      expect(other.stderr.indexOf('warning:')).toBeLessThan(other.stderr.indexOf('shown once'));
      expect((await chat(keyIn(other.stdout)!)).status).toBe(401);
      // Reads warn too (an empty list there is no news about the gateway's keys).
      const list = await cli(['keys', 'list'], { DATA_DIR: elsewhere });
      expect(list.stderr).toMatch(/^warning: the gateway running at/);
      expect(list.stderr).not.toMatch(/database:/); // not a write
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('keys list shows budget, spend this period and expiry', async () => {
    const created = await cli([
      'keys',
      'create',
      '--workspace',
      'acme',
      '--name',
      'budgeted',
      '--budget',
      '10',
      '--budget-period',
      'day',
      '--expires-at',
      '2099-01-01T00:00:00Z',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const id = idIn(created.stdout)!;
    expect((await chat(keyIn(created.stdout)!)).status).toBe(200);
    let row: any;
    for (let i = 0; i < 50 && !(Number(row?.spend_usd) > 0); i++) {
      row = JSON.parse((await cli(['keys', 'list', '--workspace', 'acme', '--json'])).stdout).find((k: any) => k.id === id);
    }
    expect(row).toMatchObject({
      budget_usd: expect.stringMatching(/^10(\.0+)?$/),
      budget_period: 'day',
      spend_period: 'day',
      spend_period_start: new Date().toISOString().slice(0, 10),
      expires_at: '2099-01-01T00:00:00.000Z',
    });
    expect(Number(row.spend_usd)).toBeGreaterThan(0);
    const table = await cli(['keys', 'list', '--workspace', 'acme']);
    expect(table.code, table.stderr).toBe(0);
    const [header, ...lines] = table.stdout.trim().split('\n');
    expect(header.split(/\s+/)).toEqual([
      'id',
      'workspace',
      'name',
      'prefix',
      'scopes',
      'rpm',
      'budget',
      'spent',
      'since',
      'left',
      'expires',
      'status',
      'created',
    ]);
    const line = lines.find((l) => l.startsWith(id))!.split(/\s+/);
    expect(line.slice(6, 12)).toEqual([
      '10/day',
      row.spend_usd,
      row.spend_period_start,
      row.budget_remaining_usd,
      '2099-01-01T00:00:00Z',
      'active',
    ]);
    // A key without a budget: this month's spend, no budget, no expiry.
    const plain = lines.find((l) => / first /.test(l))!.split(/\s+/);
    expect(plain[6]).toBe('-');
    expect(plain[8]).toBe(`${new Date().toISOString().slice(0, 8)}01`);
    expect(plain[10]).toBe('never');
  });

  it('revokes by name; a name in several workspaces asks for --workspace or the id', async () => {
    const a = await cli(['keys', 'create', '--workspace', 'acme', '--name', 'dup']);
    const b = await cli(['keys', 'create', '--workspace', 'beta', '--name', 'dup']);
    const [keyA, keyB] = [keyIn(a.stdout)!, keyIn(b.stdout)!];
    const ambiguous = await cli(['keys', 'revoke', 'dup']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/"dup" names 2 active keys; pass --workspace <name> or the key id/);
    expect(ambiguous.stderr).toContain(`${idIn(a.stdout)} ("dup" in workspace acme)`);
    expect(ambiguous.stderr).toContain(`${idIn(b.stdout)} ("dup" in workspace beta)`);
    expect(ambiguous.stderr).not.toMatch(/Usage:/);
    expect((await chat(keyA)).status).toBe(200);
    expect((await chat(keyB)).status).toBe(200);

    const byName = await cli(['keys', 'revoke', 'dup', '--workspace', 'beta']);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toMatch(new RegExp(`^revoked ${idIn(b.stdout)} \\("dup" in workspace beta\\) at `));
    expect(byName.stderr).toMatch(/^database: /m);
    expect((await chat(keyB)).status).toBe(401);
    expect((await chat(keyA)).status).toBe(200);
    // Now one active key has the name: the name alone is enough.
    const rest = await cli(['keys', 'revoke', 'dup']);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stdout).toContain(`revoked ${idIn(a.stdout)}`);
    expect((await chat(keyA)).status).toBe(401);
    const again = await cli(['keys', 'revoke', 'dup']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already revoked/);
    const none = await cli(['keys', 'revoke', 'no-such-key']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no key with the id or name "no-such-key"/);
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
    expect(lines[0]).toBe(
      'key,key_name,workspace,workspace_id,model,requests,errors,prompt_tokens,completion_tokens,cost_usd,unpriced_requests,unpriced_tokens',
    );
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^key_\S+,third,acme,ws_\S+,openai\/gpt-4o-mini,3,0,\d+,\d+,0\.\d+,0,0$/);
    const table = await runScript('src/cli.ts', ['usage', '--group-by', 'model'], env);
    expect(table.stdout).toMatch(/TOTAL/);
  });

  it('usage shortcuts: this month by key, CSV to a file, and per-request records with names', async () => {
    const out = join(dataDir, 'by-key.csv');
    const month = await cli(['usage', '--month', '--by', 'key', '--csv', out]);
    expect(month.code, month.stderr).toBe(0);
    expect(month.stdout).toBe('');
    expect(month.stderr).toMatch(new RegExp(`wrote \\d+ rows to ${out}`));
    const { header, rows } = parseCsv(readFileSync(out, 'utf8'));
    expect(header.slice(0, 4)).toEqual(['key', 'key_name', 'workspace', 'workspace_id']);
    expect(rows.find((r) => r.key_name === 'third')).toMatchObject({ workspace: 'acme', requests: '3' });
    // The same as the long form.
    const long = await cli(['usage', '--period', 'this_month', '--group-by', 'key', '--csv']);
    expect(long.stdout).toBe(readFileSync(out, 'utf8'));
    const table = await cli(['usage', '--month', '--by', 'key']);
    expect(table.stdout).toMatch(/^usage \d{4}-\d{2}-01 to \d{4}-\d{2}-01 \(exclusive\), grouped by key/);

    const records = join(dataDir, 'requests.csv');
    const req = await cli(['usage', 'requests', '--period', 'today', '--key', 'third', `--csv=${records}`]);
    expect(req.code, req.stderr).toBe(0);
    expect(req.stderr).toMatch(`wrote 3 records to ${records}`);
    const parsed = parseCsv(readFileSync(records, 'utf8'));
    expect(parsed.header.slice(3, 7)).toEqual(['workspace_id', 'workspace_name', 'key_id', 'key_name']);
    expect(parsed.rows).toHaveLength(3);
    expect(parsed.rows.every((r) => r.workspace_name === 'acme' && r.key_name === 'third' && r.status === 'ok')).toBe(true);
    const listed = await cli(['usage', 'requests', '--key', 'third', '--status', 'ok', '--limit', '2']);
    expect(listed.stdout.trim().split('\n')).toHaveLength(3);
    expect(listed.stdout).toMatch(/^created_at\s+workspace_name\s+key_name/);
    // Unknown values are refused, naming what they take.
    const bad = await cli(['usage', 'requests', '--status', 'bogus']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Invalid value for 'status': 'bogus'. Supported values are: 'ok', 'upstream_error'/);
    expect((await cli(['usage', '--month', '--from', '2026-01-01'])).code).toBe(2);
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
    const records = await runScript('src/cli.ts', ['usage', 'requests', '--key', 'third', '--csv'], env);
    expect(records.code, records.stderr).toBe(0);
    expect(parseCsv(records.stdout).rows.map((r) => r.key_name)).toEqual(['third', 'third', 'third']);
    const revoke = await runScript('src/cli.ts', ['keys', 'revoke', 'third'], env);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stderr).toContain(`database: embedded PGlite in ${realpathSync(dataDir)} (DATABASE_URL is not set: DATA_DIR=${dataDir})`);
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
