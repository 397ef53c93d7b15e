import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFakeOpenRouter, type FakeOpenRouter } from './fake-openrouter/server.js';
import { cleanEnv, freePort, ROOT, runScript, startNodeFlags } from './helpers/processes.js';

// An operator's first run, through real processes: the gateway as `npm start` runs it (dist/, built
// by the global setup with scripts/build.mjs), the db scripts, the CLI. Each start costs seconds
// (PGlite's migrations most), so a few gateways serve several checks each.

const SHIPPED = readdirSync(join(ROOT, 'drizzle')).filter((f) => f.endsWith('.sql')).length;

interface Gateway {
  url: string;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  stop(): Promise<number | null>;
}

/** dist/main.js with npm start's flags; stdout and stderr kept apart (JSON logs vs the human lines). */
async function startGateway(env: Record<string, string>): Promise<Gateway> {
  const port = await freePort();
  const child = spawn(process.execPath, [...startNodeFlags(), 'dist/main.js'], {
    cwd: ROOT,
    env: { ...cleanEnv(), HOST: '127.0.0.1', PORT: String(port), ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 45_000;
  while (
    !(await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start:\n${stderr}\n${stdout}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // The banner follows the listen; give its write a moment to arrive.
  for (let i = 0; i < 50 && !/is ready/.test(stderr); i++) await new Promise((r) => setTimeout(r, 20));
  return {
    url,
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs an npm script as an operator types it (`npm run --silent <script> -- args`). */
function npmRun(script: string, args: string[], env: Record<string, string>, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', script, ...(args.length ? ['--', ...args] : [])], {
      cwd: ROOT,
      env: { ...cleanEnv(), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm run ${script} timed out\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (text: string) => text.trim().split('\n').filter(Boolean);
const ADMIN_TOKEN = 'first-run-admin-token-0123456789';

describe('a bad configuration stops the start with one line per variable', () => {
  it('URLs without a scheme and a bare CORS host: four lines, no stack trace', async () => {
    const res = await runScript(
      'src/main.ts',
      [],
      {
        DATABASE_URL: 'gw:hunter2@127.0.0.1:5432/db',
        REDIS_URL: '127.0.0.1:6379',
        OPENROUTER_BASE_URL: 'openrouter.ai/api/v1',
        CORS_ORIGINS: 'app.example.com',
        DATA_DIR: join(tmpdir(), 'cmg-never-created'),
      },
      30_000,
    );
    expect(res.code).toBe(1);
    const errors = lines(res.stderr);
    expect(errors.map((l) => /^config error: ([A-Z_]+): /.exec(l)?.[1])).toEqual([
      'OPENROUTER_BASE_URL',
      'DATABASE_URL',
      'REDIS_URL',
      'CORS_ORIGINS',
    ]);
    expect(errors[0]).toMatch(/e\.g\. https:\/\/openrouter\.ai\/api\/v1/);
    expect(errors[1]).toMatch(/e\.g\. postgres:\/\/\*\*\*@127\.0\.0\.1:5432\/db/);
    expect(errors[2]).toMatch(/e\.g\. redis:\/\/127\.0\.0\.1:6379/);
    expect(errors[3]).toMatch(/https:\/\/app\.example\.com/);
    expect(res.stderr).not.toMatch(/TypeError|Invalid URL|\n\s+at /);
    expect(res.stderr + res.stdout).not.toContain('hunter2');
    expect(existsSync(join(tmpdir(), 'cmg-never-created'))).toBe(false);
  });

  it('the db scripts refuse the same configuration the same way', async () => {
    const res = await runScript('src/db/db-cli.ts', ['status'], { REDIS_URL: 'localhost:6379', PORT: '80a' }, 30_000);
    expect(res.code).toBe(1);
    expect(lines(res.stderr)).toEqual([
      'config error: PORT: must be a whole number from 0 to 65535 (got "80a")',
      'config error: REDIS_URL: must be a URL starting with redis:// or rediss://, e.g. redis://localhost:6379 (got "localhost:6379")',
    ]);
  });
});

describe('an address the gateway cannot listen on', () => {
  let blocker: Server;
  let port: number;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cmg-port-'));
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => blocker.close(r));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a port in use: one line naming the port and what to do, exit 1, before the database is opened', async () => {
    const started = Date.now();
    const res = await runScript('src/main.ts', [], { HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir }, 30_000);
    expect(res.code).toBe(1);
    expect(lines(res.stderr)).toEqual([
      `cannot listen on 127.0.0.1:${port}: port ${port} is already in use (another gateway or program has it); stop that one or set PORT to a free port`,
    ]);
    expect(res.stdout).toBe('');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(readdirSync(dataDir)).toEqual([]); // no database made, no lock left
  });

  it('a HOST that is not this machine: one line, exit 1', async () => {
    const res = await runScript('src/main.ts', [], { HOST: '192.0.2.1', PORT: String(port), DATA_DIR: dataDir }, 30_000);
    expect(res.code).toBe(1);
    expect(lines(res.stderr)).toEqual([
      `cannot listen on 192.0.2.1:${port}: 192.0.2.1 is not an address of this machine; set HOST to one of its addresses, or 0.0.0.0 for all of them`,
    ]);
  });
});

describe('first start on the embedded database, no ADMIN_TOKEN', () => {
  let fake: FakeOpenRouter;
  let dataDir: string;
  let gw: Gateway;
  let env: Record<string, string>;

  beforeAll(async () => {
    fake = await startFakeOpenRouter();
    dataDir = realpathSync(mkdtempSync(join(tmpdir(), 'cmg-first-')));
    env = { DATA_DIR: dataDir, OPENROUTER_API_KEY: 'sk-or-v1-fake', OPENROUTER_BASE_URL: fake.baseUrl, MEMORY_ENABLED: 'false' };
    gw = await startGateway(env);
  }, 90_000);
  afterAll(async () => {
    await gw?.stop();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says what it does while it starts, then a banner on stderr; stdout stays JSON', async () => {
    // pino writes in batches, at least every half second.
    for (let i = 0; i < 100 && !gw.stdout().includes('"msg":"gateway listening"'); i++) await new Promise((r) => setTimeout(r, 20));
    const err = gw.stderr();
    const pglite = dataDir;
    expect(err).toContain(`opening the database: embedded PGlite in ${pglite} ...`);
    expect(err).toMatch(new RegExp(`applying ${SHIPPED} database migration\\(s\\): 0000_init, .* \\.\\.\\.`));
    expect(err).toMatch(/database ready in \d+\.\d s/);
    expect(err).toMatch(/Context Memory Gateway \S+ is ready \(pid \d+\)/);
    expect(err).toContain(`${gw.url}/v1`);
    expect(err).toContain(`${gw.url}/dashboard`);
    expect(err).toMatch(new RegExp(`database +embedded PGlite in ${pglite.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(err).toMatch(/redis +none/);
    expect(err).toMatch(/admin +ADMIN_TOKEN unset: \/admin\/\* answers 503 admin_disabled/);
    expect(err).toMatch(/memory +off \(MEMORY_ENABLED=false/);
    expect(err).toMatch(/usage +recording on/);
    expect(err).toMatch(new RegExp(`upstream +${fake.baseUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(OPENROUTER_API_KEY set\\)`));
    for (const line of lines(gw.stdout())) expect(() => JSON.parse(line), line).not.toThrow();
    expect(gw.stdout()).toContain('"msg":"gateway listening"');
  });

  it('admin routes answer 503 admin_disabled, whatever the caller sends', async () => {
    for (const authorization of [undefined, 'Bearer not-the-token-0000000000', `Bearer ${ADMIN_TOKEN}`]) {
      for (const [method, path] of [
        ['GET', '/admin/keys'],
        ['POST', '/admin/workspaces'],
        ['GET', '/admin/workspaces'],
      ]) {
        const res = await fetch(gw.url + path, { method, headers: authorization ? { authorization } : {} });
        expect(res.status, `${method} ${path} ${authorization}`).toBe(503);
        const body = await res.json();
        expect(body.error).toMatchObject({ code: 'admin_disabled', type: 'server_error' });
        expect(body.error.message).toMatch(/set ADMIN_TOKEN/);
      }
    }
  });

  it('the CLI still works through the running gateway (its one-off token)', async () => {
    const created = await runScript('src/cli.ts', ['keys', 'create', '--workspace', 'acme', '--name', 'first'], env);
    expect(created.code, created.stderr).toBe(0);
    const key = /cmg_[A-Za-z0-9_-]{43}/.exec(created.stdout)![0];
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
  });

  it('db:status and db:migrate name the gateway that holds the embedded database instead of opening it', async () => {
    for (const command of ['status', 'migrate']) {
      const res = await runScript('src/db/db-cli.ts', [command], env, 30_000);
      expect(res.code).toBe(1);
      expect(lines(res.stderr)).toEqual([
        `error: embedded PGlite in ${dataDir} is held by the running gateway (pid ${gw.pid}, ${gw.url}), which applied its migrations when it started; stop it to run db:${command} (embedded PGlite admits one process)`,
      ]);
    }
  });

  it('a second start is told which gateway has the data directory', async () => {
    const res = await runScript('src/main.ts', [], { ...env, PORT: '0' }, 30_000);
    expect(res.code).toBe(1);
    expect(lines(res.stderr)).toEqual([`another gateway (pid ${gw.pid}, ${gw.url}) already uses ${dataDir}; stop it or set DATA_DIR`]);
  });

  it('once it stopped, db:status reads the database: every migration applied', async () => {
    expect(await gw.stop()).toBe(0);
    const res = await npmRun('db:status', [], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`database: embedded PGlite in ${dataDir}\n`);
    expect(res.stdout).toContain(`migrations: ${SHIPPED} of ${SHIPPED} applied, none pending\n`);
  });
});

describe('db:migrate and db:status on an embedded database not made yet', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = realpathSync(mkdtempSync(join(tmpdir(), 'cmg-dbcli-')));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('status lists every migration as pending and creates nothing; migrate applies them; then nothing is left', async () => {
    const env = { DATA_DIR: dataDir };
    const before = await npmRun('db:status', [], env);
    expect(before.code, before.stderr).toBe(0);
    const out = lines(before.stdout);
    expect(out[0]).toBe(`database: embedded PGlite in ${dataDir} (not created yet: the first db:migrate or start creates it)`);
    expect(out[1]).toBe(
      `migrations: 0 of ${SHIPPED} applied, ${SHIPPED} pending (npm run db:migrate applies them; so does starting the gateway)`,
    );
    expect(out.slice(2)).toHaveLength(SHIPPED);
    expect(out[2]).toBe('  pending  0000_init');
    expect(readdirSync(dataDir)).toEqual([]);

    const migrated = await npmRun('db:migrate', [], env, 90_000);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(new RegExp(`applying ${SHIPPED} migration\\(s\\): 0000_init, `));
    expect(migrated.stdout).toMatch(new RegExp(`done in \\d+\\.\\d s: ${SHIPPED} applied, ${SHIPPED} of ${SHIPPED} in all`));

    const again = await runScript('src/db/db-cli.ts', ['migrate'], env, 60_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`nothing to apply: all ${SHIPPED} migrations were already applied`);

    const json = await runScript('src/db/db-cli.ts', ['status', '--json'], env, 60_000);
    expect(json.code, json.stderr).toBe(0);
    const status = JSON.parse(json.stdout);
    expect(status).toMatchObject({ kind: 'pglite', exists: true, applied: SHIPPED, pending: 0, unknown: 0 });
    expect(status.migrations.every((m: { applied: boolean }) => m.applied)).toBe(true);
  }, 180_000);

  it('a wrong command is a usage error (exit 2)', async () => {
    const res = await runScript('src/db/db-cli.ts', ['upgrade'], { DATA_DIR: dataDir });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/Usage: npm run db:migrate/);
  });
});

describe.runIf(inject('postgresUrl') && inject('redisUrl'))('Postgres and Redis: db scripts, then a start', () => {
  const name = `cmg_firstrun_${process.pid}_${Date.now()}`;
  let admin: ReturnType<typeof postgres>;
  let databaseUrl: string;
  let shown: string;
  let redisUrl = '';
  let fake: FakeOpenRouter;
  let dataDir: string;

  beforeAll(async () => {
    const base = new URL(inject('postgresUrl'));
    admin = postgres(base.toString(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    // The test server trusts local connections, so any password works: it must never be printed.
    const url = new URL(base);
    url.pathname = `/${name}`;
    url.username = url.username || 'postgres';
    url.password = 'pg-s3cret-pw';
    databaseUrl = url.toString();
    shown = `${url.protocol}//${url.username}:***@${url.host}/${name}`;
    // Redis with a password it does not have: the gateway starts anyway (limits fall back to the
    // process), and the banner shows the URL without the password.
    const redis = new URL(inject('redisUrl'));
    redis.username = 'default';
    redis.password = 'redis-s3cret-pw';
    redisUrl = redis.toString().replace(/\/$/, '');
    fake = await startFakeOpenRouter();
    dataDir = mkdtempSync(join(tmpdir(), 'cmg-first-pg-'));
  });
  afterAll(async () => {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('status before and after migrate, the password masked', async () => {
    const env = { DATABASE_URL: databaseUrl, DATA_DIR: dataDir };
    const before = await runScript('src/db/db-cli.ts', ['status'], env);
    expect(before.code, before.stderr).toBe(0);
    expect(lines(before.stdout).slice(0, 2)).toEqual([
      `database: ${shown}`,
      `migrations: 0 of ${SHIPPED} applied, ${SHIPPED} pending (npm run db:migrate applies them; so does starting the gateway)`,
    ]);
    const migrated = await npmRun('db:migrate', [], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(new RegExp(`done in \\d+\\.\\d s: ${SHIPPED} applied`));
    const after = await runScript('src/db/db-cli.ts', ['status'], env);
    expect(lines(after.stdout)[1]).toBe(`migrations: ${SHIPPED} of ${SHIPPED} applied, none pending`);
    for (const out of [before, migrated, after]) expect(out.stdout + out.stderr).not.toContain('pg-s3cret-pw');
  });

  it('a database that is not there, or no server at all: one line saying so, password masked, exit 1', async () => {
    const port = await freePort();
    const nowhere = databaseUrl.replace(/:\d+\//, `:${port}/`);
    const refused = await runScript('src/db/db-cli.ts', ['status'], { DATABASE_URL: nowhere });
    expect(refused.code).toBe(1);
    expect(lines(refused.stderr)).toHaveLength(1);
    expect(refused.stderr).toMatch(
      new RegExp(
        `^error: cannot reach postgres://.*:\\*\\*\\*@127\\.0\\.0\\.1:${port}/.*: nothing accepts connections at 127\\.0\\.0\\.1:${port}`,
      ),
    );
    const missing = await runScript('src/db/db-cli.ts', ['migrate'], { DATABASE_URL: databaseUrl.replace(name, `${name}_missing`) });
    expect(missing.code).toBe(1);
    expect(lines(missing.stderr).at(-1)).toMatch(new RegExp(`database "${name}_missing" does not exist \\(create it first`));
    const start = await runScript('src/main.ts', [], { DATABASE_URL: nowhere, PORT: '0' }, 30_000);
    expect(start.code).toBe(1);
    expect(lines(start.stderr).at(-1)).toMatch(/^cannot start: cannot reach postgres:\/\/.*: nothing accepts connections/);
    for (const out of [refused, missing, start]) expect(out.stdout + out.stderr).not.toMatch(/pg-s3cret-pw|\n\s+at /);
  });

  it('the banner names Postgres and Redis without their credentials; LOG_LEVEL=warn leaves only JSON', async () => {
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      DATA_DIR: dataDir,
      OPENROUTER_BASE_URL: fake.baseUrl,
      ADMIN_TOKEN,
      USAGE_ENABLED: 'false',
    };
    const gw = await startGateway(env);
    try {
      const err = gw.stderr();
      expect(err).toContain(`opening the database: ${shown} ...`);
      expect(err).not.toMatch(/applying/); // db:migrate did it already
      expect(err).toMatch(new RegExp(`database +${shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
      expect(err).toMatch(new RegExp(`redis +${redisUrl.replace('redis-s3cret-pw', '***').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      expect(err).toMatch(/admin +ADMIN_TOKEN set/);
      expect(err).toMatch(/usage +recording off/);
      expect(err).toMatch(/memory +on, no summaries/);
      expect(err).toMatch(/upstream .*OPENROUTER_API_KEY unset: proxied requests answer 503 upstream_not_configured/);
      expect(gw.stdout() + err).not.toMatch(/pg-s3cret-pw|redis-s3cret-pw/);
      expect(err).not.toContain(ADMIN_TOKEN);
      // With ADMIN_TOKEN set, a wrong token is 401 again.
      expect((await fetch(`${gw.url}/admin/keys`, { headers: { authorization: 'Bearer not-the-token-0000000000' } })).status).toBe(401);
      expect((await fetch(`${gw.url}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
    const quiet = await startGateway({ ...env, REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'warn' });
    try {
      expect(quiet.stderr()).toBe('');
      for (const line of lines(quiet.stdout())) expect(JSON.parse(line).level).toBeGreaterThanOrEqual(40);
    } finally {
      await quiet.stop();
    }
  }, 120_000);
});

describe('npm start needs only production dependencies', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
  const packageOf = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  const bareImports = (code: string) =>
    [
      ...code.matchAll(
        /(?:^\s*(?:import|export)\s[^;]*?\sfrom\s*|^\s*import\s*|\bimport\(\s*|\brequire\d*\(\s*)["']((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/[\w./-]+)?)["']/gm,
      ),
    ]
      .map((m) => m[1])
      .filter((s) => !builtins.has(s) && !s.startsWith('node:'));
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.js') || e.name.endsWith('.mjs') ? [join(dir, e.name)] : [],
    );

  it('the start script is the build, then node with its flags on dist/main.js, nothing from devDependencies', () => {
    expect(pkg.scripts.start).toBe(`node scripts/build.mjs && node ${startNodeFlags().join(' ')} dist/main.js`);
    const used = new Set(
      [...files(join(ROOT, 'dist')), join(ROOT, 'scripts/build.mjs')].flatMap((f) => bareImports(readFileSync(f, 'utf8')).map(packageOf)),
    );
    expect(used).toContain('esbuild');
    expect(used).toContain('hono');
    expect(used).toContain('gpt-tokenizer'); // required lazily (esbuild renames that require)
    for (const name of used) expect(pkg.dependencies, `${name} is imported by dist/ or the build`).toHaveProperty([name]);
  });

  it('db:migrate, db:status and cli run on tsx, itself a production dependency', () => {
    for (const script of ['db:migrate', 'db:status', 'cli']) expect(pkg.scripts[script]).toMatch(/^tsx src\//);
    expect(pkg.dependencies).toHaveProperty(['tsx']);
    expect(existsSync(join(ROOT, 'src/db/db-cli.ts'))).toBe(true);
  });
});
