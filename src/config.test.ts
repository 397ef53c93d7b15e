import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const result = loadConfig({});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      openrouterBaseUrl: 'https://openrouter.ai/api/v1',
      dataDir: './.data',
      databaseUrl: undefined,
      upstreamTimeoutMs: 600_000,
      upstreamIdleTimeoutMs: 120_000,
      memoryDefaultMaxTokens: 16_000,
      memoryEnabled: true,
      usageEnabled: true,
      maxBodyBytes: 10_485_760,
    });
  });

  it('reports one line per bad variable, naming it, without echoing secrets', () => {
    const result = loadConfig({
      PORT: 'eighty',
      OPENROUTER_BASE_URL: 'ftp://x',
      DATABASE_URL: 'mysql://secret@host/db',
      LOG_LEVEL: 'loud',
      MEMORY_ENABLED: 'maybe',
      MAX_BODY_BYTES: '-1',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(6);
    for (const name of ['PORT', 'OPENROUTER_BASE_URL', 'DATABASE_URL', 'LOG_LEVEL', 'MEMORY_ENABLED', 'MAX_BODY_BYTES']) {
      expect(result.errors.filter((l) => l.startsWith(`${name}:`))).toHaveLength(1);
    }
    expect(result.errors.join('\n')).not.toContain('secret');
  });

  it('treats empty values as unset and parses lists and switches', () => {
    const result = loadConfig({ OPENROUTER_API_KEY: '', CORS_ORIGINS: 'https://a.example, https://b.example', USAGE_ENABLED: 'false' });
    expect(result.ok && result.config.openrouterApiKey).toBe(undefined);
    expect(result.ok && result.config.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(result.ok && result.config.usageEnabled).toBe(false);
  });
});

describe('loadConfig: every kind of bad value is one line naming its variable, never a throw', () => {
  const errorsOf = (env: Record<string, string>) => {
    const result = loadConfig(env);
    if (result.ok) throw new Error(`accepted ${JSON.stringify(env)}`);
    return result.errors;
  };
  const oneLine = (env: Record<string, string>) => {
    const errors = errorsOf(env);
    expect(errors).toHaveLength(1);
    expect(errors[0]).not.toContain('\n');
    expect(errors[0].startsWith(`${Object.keys(env)[0]}: `)).toBe(true);
    return errors[0];
  };

  it('URLs without a scheme are told which scheme to add (no "Invalid URL" throw)', () => {
    expect(oneLine({ DATABASE_URL: '127.0.0.1:5432/db' })).toMatch(
      /starting with postgres:\/\/ or postgresql:\/\/, e\.g\. postgres:\/\/127\.0\.0\.1:5432\/db/,
    );
    expect(oneLine({ DATABASE_URL: 'localhost:5432/db' })).toMatch(/e\.g\. postgres:\/\/localhost:5432\/db/);
    expect(oneLine({ REDIS_URL: '127.0.0.1:6379' })).toMatch(/starting with redis:\/\/ or rediss:\/\/, e\.g\. redis:\/\/127\.0\.0\.1:6379/);
    expect(oneLine({ OPENROUTER_BASE_URL: 'openrouter.ai/api/v1' })).toMatch(
      /starting with https:\/\/ or http:\/\/, e\.g\. https:\/\/openrouter\.ai\/api\/v1/,
    );
    expect(oneLine({ OPENROUTER_BASE_URL: 'http://' })).toMatch(/is not a valid URL/);
    expect(oneLine({ REDIS_URL: 'http://127.0.0.1:6379' })).toMatch(/must use redis:\/\/ or rediss:\/\/ \(not http:\/\/\)/);
  });

  it('never shows credentials of a bad URL, nor a bad key or token', () => {
    const line = oneLine({ DATABASE_URL: 'gateway:hunter2hunter2@db.internal:5432/cmg' });
    expect(line).not.toContain('hunter2');
    expect(line).not.toContain('gateway:');
    expect(line).toContain('postgres://***@db.internal:5432/cmg');
    expect(oneLine({ REDIS_URL: 'redis://:hunter2@h:6379 x' }).includes('hunter2')).toBe(false);
    expect(oneLine({ OPENROUTER_API_KEY: 'sk-or-v1 hunter2' })).not.toContain('hunter2');
    expect(oneLine({ ADMIN_TOKEN: 'hunter2' })).not.toContain('hunter2');
    expect(oneLine({ ADMIN_TOKEN: 'hunter2 hunter2 hunter2' })).toMatch(/without spaces/);
  });

  it('CORS_ORIGINS takes origins or *, normalized as browsers send them; anything else is refused', () => {
    const line = oneLine({ CORS_ORIGINS: 'app.example.com' });
    expect(line).toMatch(/"app\.example\.com" \(an origin has a scheme: https:\/\/app\.example\.com\)/);
    expect(oneLine({ CORS_ORIGINS: 'https://app.example.com/app' })).toMatch(/no path.*https:\/\/app\.example\.com\)/);
    expect(oneLine({ CORS_ORIGINS: 'ftp://app.example.com' })).toMatch(/an origin has a scheme/);
    expect(oneLine({ CORS_ORIGINS: 'null' })).toMatch(/"null"/);
    expect(oneLine({ CORS_ORIGINS: ' , ' })).toMatch(/at least one origin/);
    const ok = loadConfig({ CORS_ORIGINS: 'https://App.Example.com/, http://localhost:3000, https://x.example:443, *' });
    expect(ok.ok && ok.config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000', 'https://x.example', '*']);
  });

  it('numbers are decimal digits within their range', () => {
    for (const value of ['abc', '1e3', '0x10', '-1', '3.5', '10MB', '65536', '99999999999999999999']) {
      expect(oneLine({ PORT: value })).toBe(`PORT: must be a whole number from 0 to 65535 (got "${value}")`);
    }
    expect(oneLine({ MAX_BODY_BYTES: '0' })).toMatch(/of at least 1/);
    expect(oneLine({ DATABASE_CONNECT_TIMEOUT_MS: '10' })).toMatch(/from 1000 to 600000/);
    expect(oneLine({ MEMORY_RETRIEVAL_SHARE: '0.95' })).toMatch(/from 0 to 0\.9/);
    expect(oneLine({ MEMORY_RETRIEVAL_SHARE: 'half' })).toMatch(/from 0 to 0\.9/);
    const ok = loadConfig({ PORT: '0', MEMORY_RETRIEVAL_SHARE: '.5', UPSTREAM_MAX_CONNECTIONS: '0' });
    expect(ok.ok && [ok.config.port, ok.config.memoryRetrievalShare]).toEqual([0, 0.5]);
  });

  it('HOST is a host name or an address, not a URL, nor with a port', () => {
    expect(oneLine({ HOST: 'http://0.0.0.0' })).toMatch(/not a URL/);
    expect(oneLine({ HOST: '0.0.0.0:8080' })).toMatch(/without a port/);
    expect(oneLine({ HOST: 'my host' })).toMatch(/host name or IP address/);
    for (const [value, host] of [
      ['::', '::'],
      ['[::1]', '::1'],
      ['127.0.0.1', '127.0.0.1'],
      ['gateway.internal', 'gateway.internal'],
      ['localhost', 'localhost'],
    ]) {
      const ok = loadConfig({ HOST: value });
      expect(ok.ok && ok.config.host).toBe(host);
    }
  });

  it('switches, levels and names: what is allowed is listed, case does not matter', () => {
    expect(oneLine({ USAGE_ENABLED: 'maybe' })).toMatch(/must be true or false/);
    expect(oneLine({ LOG_LEVEL: 'verbose' })).toMatch(/one of fatal, error, warn, info, debug, trace, silent/);
    expect(oneLine({ REDIS_KEY_PREFIX: 'a b' })).toMatch(/1-64 of/);
    expect(oneLine({ MEMORY_EMBEDDING_MODEL: 'text embedding' })).toMatch(/one model id/);
    const ok = loadConfig({ LOG_LEVEL: 'WARN', MEMORY_ENABLED: 'Off', USAGE_ENABLED: 'YES' });
    expect(ok.ok && [ok.config.logLevel, ok.config.memoryEnabled, ok.config.usageEnabled]).toEqual(['warn', false, true]);
  });

  it('every variable it reads refuses a nonsense value with one line of its own', () => {
    const nonsense = 'not valid://\u0001 value';
    // DATA_DIR takes any path; every other variable has a shape this value does not fit.
    const checked = CONFIG_VARIABLES.filter((name) => name !== 'DATA_DIR');
    expect(checked.length).toBeGreaterThan(30);
    const env = Object.fromEntries(checked.map((name) => [name, nonsense]));
    const errors = errorsOf(env);
    expect(errors.map((l) => l.split(':')[0])).toEqual(checked);
    for (const line of errors) expect(line).not.toMatch(/\n|Invalid input|TypeError/);
  });
});

describe('.env.example', () => {
  it('parses, uncommented, to the documented defaults', async () => {
    const { parseEnv } = await import('node:util');
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
    const shown = loadConfig(parseEnv(text));
    const uncommented = loadConfig(parseEnv(text.replace(/^# ([A-Z_]+=)/gm, '$1')));
    expect(shown).toEqual(loadConfig({}));
    expect(uncommented.ok, uncommented.ok ? '' : uncommented.errors.join('\n')).toBe(true);
  });
});

describe('maskUrl', () => {
  it('masks passwords (or whole user parts) and secret-looking query values, with or without a scheme', async () => {
    const { maskUrl } = await import('./telemetry/mask-url.js');
    expect(maskUrl('postgres://gw:p%40ss@db:5432/cmg')).toBe('postgres://gw:***@db:5432/cmg');
    expect(maskUrl('postgres://gw:p@ss@db:5432/cmg')).toBe('postgres://gw:***@db:5432/cmg');
    expect(maskUrl('postgres://gw@db/cmg')).toBe('postgres://gw@db/cmg');
    expect(maskUrl('postgres://gw@db/cmg', { keepUser: false })).toBe('postgres://***@db/cmg');
    expect(maskUrl('redis://:tok@cache:6379')).toBe('redis://:***@cache:6379');
    expect(maskUrl('gw:secret@db:5432/cmg')).toBe('gw:***@db:5432/cmg');
    expect(maskUrl('postgres://db/cmg?sslmode=require&password=x&sslkey=/k')).toBe(
      'postgres://db/cmg?sslmode=require&password=***&sslkey=***',
    );
    expect(maskUrl('redis://cache:6379')).toBe('redis://cache:6379');
  });
});
