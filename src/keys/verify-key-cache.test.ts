import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors.js';
import { generateKey, hashKey } from './key-material.js';
import type { KeyRow } from './key-store.js';
import { createKeyVerifier } from './verify-key.js';

function row(key: string, extra: Partial<KeyRow> = {}): KeyRow {
  return {
    id: `key_${key.slice(4, 12)}`,
    workspaceId: 'ws_1',
    name: 'k',
    keyHash: hashKey(key),
    prefix: key.slice(0, 10),
    scopes: ['proxy', 'reports'],
    rpm: 60,
    tpm: 1000,
    budgetUsd: '5',
    budgetPeriod: 'day',
    expiresAt: null,
    revokedAt: null,
    createdAt: new Date(0),
    ...extra,
  };
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: GatewayError) => ({ status: e.status, code: e.code, message: e.message }),
  );

/** A store over a set of rows, counting lookups. */
function storeOf(rows: KeyRow[]) {
  const s = {
    lookups: 0,
    rows,
    async findKeyByHash(hash: string) {
      s.lookups++;
      return s.rows.find((r) => r.keyHash === hash);
    },
  };
  return s;
}

describe('key verifier: what a caller is', () => {
  it("returns the key's id, workspace, scopes and limits", async () => {
    const key = generateKey();
    const r = row(key);
    const v = createKeyVerifier({ store: storeOf([r]), now: () => 0, ttlMs: 1_000 });
    expect(await v.verify(`Bearer ${key}`, 'reports')).toEqual({
      keyId: r.id,
      workspaceId: 'ws_1',
      scopes: ['proxy', 'reports'],
      rpm: 60,
      tpm: 1000,
      budgetUsd: '5',
      budgetPeriod: 'day',
    });
  });

  it('says why a key is refused', async () => {
    const key = generateKey();
    const store = storeOf([row(key, { scopes: ['proxy'] })]);
    const v = createKeyVerifier({ store, now: () => 10_000, ttlMs: 60_000 });
    expect(await failure(v.verify(undefined, 'proxy'))).toMatchObject({
      status: 401,
      code: 'invalid_api_key',
      message: expect.stringContaining("didn't provide an API key"),
    });
    expect(await failure(v.verify('Bearer nonsense', 'proxy'))).toMatchObject({ status: 401, message: 'Incorrect API key provided.' });
    expect(await failure(v.verify(`Bearer ${generateKey()}`, 'proxy'))).toMatchObject({
      status: 401,
      message: 'Incorrect API key provided.',
    });
    expect(await failure(v.verify(`Bearer ${key}`, 'reports'))).toMatchObject({
      status: 403,
      code: 'permission_denied',
      message: 'This API key lacks the "reports" scope.',
    });
    store.rows = [row(key, { revokedAt: new Date(1) })];
    v.invalidate(store.rows[0].id);
    expect(await failure(v.verify(`Bearer ${key}`, 'proxy'))).toMatchObject({ status: 401, message: 'This API key has been revoked.' });
  });

  it('a key expires at its expiry instant, not a millisecond later', async () => {
    const key = generateKey();
    let now = 9_999;
    const v = createKeyVerifier({ store: storeOf([row(key, { expiresAt: new Date(10_000) })]), now: () => now, ttlMs: 60_000 });
    expect(await failure(v.verify(`Bearer ${key}`, 'proxy'))).toBeNull();
    now = 10_000;
    expect(await failure(v.verify(`Bearer ${key}`, 'proxy'))).toMatchObject({ status: 401, message: 'This API key has expired.' });
  });

  it('a database failure for an unknown key is a 503 that keeps its cause', async () => {
    const cause = new Error('connection refused');
    const v = createKeyVerifier({
      store: {
        findKeyByHash: async () => {
          throw cause;
        },
      },
      now: () => 0,
      ttlMs: 1_000,
    });
    const err = await v.verify(`Bearer ${generateKey()}`, 'proxy').catch((e: GatewayError) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({
      status: 503,
      code: 'service_unavailable',
      message: 'The gateway cannot verify keys right now; retry shortly.',
    });
    expect((err as GatewayError).cause).toBe(cause);
  });
});

describe('key verifier: the cache', () => {
  it('re-reads a known key in the background from exactly its TTL on', async () => {
    const key = generateKey();
    const store = storeOf([row(key)]);
    let now = 0;
    const v = createKeyVerifier({ store, now: () => now, ttlMs: 1_000 });
    await v.verify(`Bearer ${key}`, 'proxy');
    now = 999;
    await v.verify(`Bearer ${key}`, 'proxy');
    expect(store.lookups).toBe(1);
    now = 1_000;
    await v.verify(`Bearer ${key}`, 'proxy');
    await Promise.resolve();
    expect(store.lookups).toBe(2);
  });

  it('remembers an unknown key for the negative TTL, then asks again', async () => {
    const key = generateKey();
    const store = storeOf([]);
    let now = 1_000_000;
    const v = createKeyVerifier({ store, now: () => now, ttlMs: 60_000, negativeTtlMs: 100 });
    for (let i = 0; i < 3; i++) expect(await failure(v.verify(`Bearer ${key}`, 'proxy'))).toMatchObject({ status: 401 });
    expect(store.lookups).toBe(1);
    now += 99;
    await failure(v.verify(`Bearer ${key}`, 'proxy'));
    expect(store.lookups).toBe(1);
    // Created meanwhile: found once the negative entry is stale.
    store.rows = [row(key)];
    now += 1;
    expect(await failure(v.verify(`Bearer ${key}`, 'proxy'))).toBeNull();
    expect(store.lookups).toBe(2);
  });

  it('the negative TTL is 5 s unless set', async () => {
    const key = generateKey();
    const store = storeOf([]);
    let now = 1_000_000;
    const v = createKeyVerifier({ store, now: () => now, ttlMs: 60_000 });
    await failure(v.verify(`Bearer ${key}`, 'proxy'));
    now += 4_999;
    await failure(v.verify(`Bearer ${key}`, 'proxy'));
    expect(store.lookups).toBe(1);
    now += 1;
    await failure(v.verify(`Bearer ${key}`, 'proxy'));
    expect(store.lookups).toBe(2);
  });

  it('concurrent first requests for one key share a single lookup', async () => {
    const key = generateKey();
    let lookups = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const v = createKeyVerifier({ store: { findKeyByHash: async () => (lookups++, await gate, row(key)) }, now: () => 0, ttlMs: 1_000 });
    const all = Promise.all(Array.from({ length: 5 }, () => v.verify(`Bearer ${key}`, 'proxy')));
    release();
    expect((await all).every((c) => c.workspaceId === 'ws_1')).toBe(true);
    expect(lookups).toBe(1);
    // Once settled, a later refresh is a new lookup (the in-flight one is not kept forever).
    v.invalidate(row(key).id);
    await v.verify(`Bearer ${key}`, 'proxy');
    expect(lookups).toBe(2);
  });

  it('holds at most maxEntries keys, dropping the oldest', async () => {
    const keys = [generateKey(), generateKey(), generateKey()];
    const store = storeOf(keys.map((k) => row(k)));
    const v = createKeyVerifier({ store, now: () => 0, ttlMs: 60_000, maxEntries: 2 });
    for (const k of keys) await v.verify(`Bearer ${k}`, 'proxy');
    expect(store.lookups).toBe(3);
    await v.verify(`Bearer ${keys[1]}`, 'proxy');
    await v.verify(`Bearer ${keys[2]}`, 'proxy');
    expect(store.lookups).toBe(3); // the two newest are cached
    await v.verify(`Bearer ${keys[0]}`, 'proxy');
    expect(store.lookups).toBe(4); // the oldest was dropped
  });

  it('invalidating one key leaves the others cached; an unknown id is a no-op', async () => {
    const [a, b] = [generateKey(), generateKey()];
    const store = storeOf([row(a), row(b)]);
    const v = createKeyVerifier({ store, now: () => 0, ttlMs: 60_000 });
    await v.verify(`Bearer ${a}`, 'proxy');
    await v.verify(`Bearer ${b}`, 'proxy');
    v.invalidate('key_unknown');
    v.invalidate(row(a).id);
    await v.verify(`Bearer ${a}`, 'proxy');
    await v.verify(`Bearer ${b}`, 'proxy');
    expect(store.lookups).toBe(3);
  });
});
