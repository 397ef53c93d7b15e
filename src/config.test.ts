import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

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
