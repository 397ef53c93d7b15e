import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors.js';
import { generateKey, hashKey, safeEqual } from './key-material.js';
import type { KeyRow } from './key-store.js';
import { createKeyVerifier } from './verify-key.js';

function row(key: string, extra: Partial<KeyRow> = {}): KeyRow {
  return {
    id: 'key_1',
    workspaceId: 'ws_1',
    name: 'k',
    keyHash: hashKey(key),
    prefix: key.slice(0, 10),
    scopes: ['proxy'],
    rpm: null,
    tpm: null,
    budgetUsd: null,
    budgetPeriod: null,
    expiresAt: null,
    revokedAt: null,
    createdAt: new Date(0),
    ...extra,
  };
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: GatewayError) => `${e.status} ${e.code}`,
  );

describe('key material', () => {
  it('makes distinct cmg_ keys of 32 random bytes and compares in constant time', () => {
    const a = generateKey();
    expect(a).toMatch(/^cmg_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.slice(4), 'base64url')).toHaveLength(32);
    expect(generateKey()).not.toBe(a);
    expect(hashKey(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('key verifier', () => {
  it('caches verified keys: one database lookup for many requests within the TTL', async () => {
    const key = generateKey();
    let lookups = 0;
    let now = 0;
    const verifier = createKeyVerifier({ store: { findKeyByHash: async () => (lookups++, row(key)) }, now: () => now, ttlMs: 1_000 });
    for (let i = 0; i < 5; i++) await verifier.verify(`Bearer ${key}`, 'proxy');
    expect(lookups).toBe(1);
    now = 1_500;
    await verifier.verify(`Bearer ${key}`, 'proxy');
    expect(lookups).toBe(2);
  });

  it('answers 503, never 401, when the database is down and the key is unknown; serves a cached key', async () => {
    const key = generateKey();
    let down = false;
    let now = 0;
    const verifier = createKeyVerifier({
      store: {
        findKeyByHash: async () => {
          if (down) throw new Error('connection refused');
          return row(key);
        },
      },
      now: () => now,
      ttlMs: 1_000,
    });
    await verifier.verify(`Bearer ${key}`, 'proxy');
    down = true;
    now = 5_000; // stale, but the database cannot answer: keep serving the known key
    expect(await codeOf(verifier.verify(`Bearer ${key}`, 'proxy'))).toBe('ok');
    expect(await codeOf(verifier.verify(`Bearer ${generateKey()}`, 'proxy'))).toBe('503 service_unavailable');
  });

  it('refuses revoked, expired and wrong-scope keys, and re-reads after invalidate', async () => {
    const key = generateKey();
    let current = row(key);
    const verifier = createKeyVerifier({ store: { findKeyByHash: async () => current }, now: () => 10_000, ttlMs: 60_000 });
    expect(await codeOf(verifier.verify(`Bearer ${key}`, 'reports'))).toBe('403 permission_denied');
    current = row(key, { revokedAt: new Date(1) });
    expect(await codeOf(verifier.verify(`Bearer ${key}`, 'proxy'))).toBe('ok'); // cached until invalidated
    verifier.invalidate('key_1');
    expect(await codeOf(verifier.verify(`Bearer ${key}`, 'proxy'))).toBe('401 invalid_api_key');
    current = row(key, { expiresAt: new Date(9_999) });
    verifier.invalidate('key_1');
    expect(await codeOf(verifier.verify(`Bearer ${key}`, 'proxy'))).toBe('401 invalid_api_key');
  });

  it('never looks up malformed keys', async () => {
    let lookups = 0;
    const verifier = createKeyVerifier({ store: { findKeyByHash: async () => (lookups++, undefined) }, now: () => 0, ttlMs: 1 });
    for (const h of [undefined, '', 'Bearer', "Bearer ' OR '1'='1", 'Bearer sk-123', 'Token cmg_x']) {
      expect(await codeOf(verifier.verify(h, 'proxy'))).toBe('401 invalid_api_key');
    }
    expect(lookups).toBe(0);
  });
});
