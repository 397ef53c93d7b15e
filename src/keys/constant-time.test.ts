import { beforeEach, describe, expect, it, vi } from 'vitest';
import { generateKey, hashKey, matchesAnyToken, safeEqual } from './key-material.js';
import type { KeyRow } from './key-store.js';
import { createKeyVerifier } from './verify-key.js';

// Key and token comparisons must go through node's constant-time compare: a plain `===` stops at
// the first differing byte and leaks, through timing, how much of a guess was right. Behaviour alone
// cannot tell the two apart, so this file watches the compare itself (vi.mock is hoisted above the imports).
const timing = vi.hoisted(() => ({ calls: [] as [string, string][] }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      timing.calls.push([
        Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString(),
        Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString(),
      ]);
      return actual.timingSafeEqual(a, b);
    },
  };
});

function row(keyHash: string): KeyRow {
  return {
    id: 'key_1',
    workspaceId: 'ws_1',
    name: 'k',
    keyHash,
    prefix: 'cmg_abcdef',
    scopes: ['proxy'],
    rpm: null,
    tpm: null,
    budgetUsd: null,
    budgetPeriod: null,
    expiresAt: null,
    revokedAt: null,
    createdAt: new Date(0),
  };
}

beforeEach(() => {
  timing.calls.length = 0;
});

describe('constant-time comparison', () => {
  it('safeEqual decides through timingSafeEqual, for equal and unequal strings', () => {
    expect(safeEqual('secret-1', 'secret-1')).toBe(true);
    expect(timing.calls).toEqual([['secret-1', 'secret-1']]);
    expect(safeEqual('secret-1', 'secret-2')).toBe(false);
    expect(timing.calls.at(-1)).toEqual(['secret-1', 'secret-2']);
  });

  it('a length mismatch still spends a constant-time compare', () => {
    expect(safeEqual('short', 'much longer')).toBe(false);
    expect(timing.calls).toHaveLength(1);
  });

  it('the key verifier compares the stored hash with the candidate hash in constant time', async () => {
    const key = generateKey();
    const hash = hashKey(key);
    const verifier = createKeyVerifier({ store: { findKeyByHash: async () => row(hash) }, now: () => 0, ttlMs: 60_000 });
    await verifier.verify(`Bearer ${key}`, 'proxy');
    expect(timing.calls).toContainEqual([hash, hash]);
  });

  it("the key verifier refuses a returned row whose hash is not the candidate's", async () => {
    // The database lookup is the first filter, not the last word (collation, a bad index, a bug).
    const verifier = createKeyVerifier({ store: { findKeyByHash: async () => row(hashKey(generateKey())) }, now: () => 0, ttlMs: 60_000 });
    await expect(verifier.verify(`Bearer ${generateKey()}`, 'proxy')).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    expect(timing.calls).toHaveLength(1);
  });

  it('admin tokens are compared in constant time, every configured one', () => {
    expect(matchesAnyToken('tok-b', ['tok-a', undefined, 'tok-b'])).toBe(true);
    expect(timing.calls.map((c) => c[1])).toEqual(['tok-a', 'tok-b']);
  });
});
