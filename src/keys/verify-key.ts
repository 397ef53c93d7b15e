import { GatewayError } from '../errors.js';
import { bearerToken, hashKey, looksLikeKey, safeEqual } from './key-material.js';
import type { KeyRow, KeyStore, Scope } from './key-store.js';

export interface Caller {
  keyId: string;
  workspaceId: string;
  scopes: string[];
  rpm: number | null;
  tpm: number | null;
  budgetUsd: string | null;
  budgetPeriod: string | null;
}

interface CacheEntry {
  row: KeyRow | null; // null: no such key (negative cache)
  at: number;
}

export interface KeyVerifierOptions {
  store: Pick<KeyStore, 'findKeyByHash'>;
  now: () => number;
  ttlMs: number;
  negativeTtlMs?: number;
  maxEntries?: number;
}

const invalidKey = () => new GatewayError('invalid_api_key', 'Incorrect API key provided.');

/**
 * Verifies bearer keys against their stored SHA-256, with an in-process cache so the hot path
 * does not wait on the database. When the database cannot answer, a key seen before is still
 * served from the cache, and an unknown one gets 503 (never 401: we cannot tell).
 */
export function createKeyVerifier(opts: KeyVerifierOptions) {
  const cache = new Map<string, CacheEntry>();
  const hashById = new Map<string, string>();
  const negativeTtl = opts.negativeTtlMs ?? 5_000;
  const maxEntries = opts.maxEntries ?? 50_000;

  function remember(hash: string, row: KeyRow | null) {
    if (cache.size >= maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.delete(hash);
    cache.set(hash, { row, at: opts.now() });
    if (row) hashById.set(row.id, hash);
  }

  const refreshing = new Map<string, Promise<KeyRow | null>>();

  async function fetchRow(hash: string): Promise<KeyRow | null> {
    const row = await opts.store.findKeyByHash(hash);
    // The hash came back from an indexed lookup; compare in constant time all the same.
    const found = row && safeEqual(row.keyHash, hash) ? row : null;
    remember(hash, found);
    return found;
  }

  function refresh(hash: string): Promise<KeyRow | null> {
    let pending = refreshing.get(hash);
    if (!pending) {
      pending = fetchRow(hash).finally(() => refreshing.delete(hash));
      refreshing.set(hash, pending);
    }
    return pending;
  }

  async function lookup(hash: string): Promise<KeyRow | null> {
    const cached = cache.get(hash);
    if (cached?.row) {
      // A known key never waits on the database: past its TTL it is re-read in the background
      // (a database outage then keeps serving it, instead of turning into slow requests or 401s).
      if (opts.now() - cached.at >= opts.ttlMs) refresh(hash).catch(() => {});
      return cached.row;
    }
    if (cached && opts.now() - cached.at < negativeTtl) return null;
    try {
      return await refresh(hash);
    } catch (cause) {
      throw new GatewayError('service_unavailable', 'The gateway cannot verify keys right now; retry shortly.', { cause });
    }
  }

  return {
    /** Resolves the caller behind an `Authorization` header value, or throws a 401/403/503. */
    async verify(authorization: string | undefined, scope: Scope): Promise<Caller> {
      const key = bearerToken(authorization);
      if (!key) {
        throw new GatewayError(
          'invalid_api_key',
          "You didn't provide an API key. Provide it in the Authorization header (Authorization: Bearer cmg_...).",
        );
      }
      if (!looksLikeKey(key)) throw invalidKey();
      const row = await lookup(hashKey(key));
      if (!row) throw invalidKey();
      if (row.revokedAt) throw new GatewayError('invalid_api_key', 'This API key has been revoked.');
      if (row.expiresAt && row.expiresAt.getTime() <= opts.now()) {
        throw new GatewayError('invalid_api_key', 'This API key has expired.');
      }
      if (!row.scopes.includes(scope)) {
        throw new GatewayError('permission_denied', `This API key lacks the "${scope}" scope.`);
      }
      return {
        keyId: row.id,
        workspaceId: row.workspaceId,
        scopes: row.scopes,
        rpm: row.rpm,
        tpm: row.tpm,
        budgetUsd: row.budgetUsd,
        budgetPeriod: row.budgetPeriod,
      };
    },

    /** Drops a key from the cache so the next request re-reads it (after revoke or update). */
    invalidate(keyId: string) {
      const hash = hashById.get(keyId);
      if (hash) cache.delete(hash);
      hashById.delete(keyId);
    },
  };
}

export type KeyVerifier = ReturnType<typeof createKeyVerifier>;
