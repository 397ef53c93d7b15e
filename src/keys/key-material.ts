import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_PREFIX = 'cmg_';
const KEY_PATTERN = /^cmg_[A-Za-z0-9_-]{43}$/;

/** A new gateway key: `cmg_` + 32 random bytes (base64url). Shown once, never stored. */
export function generateKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** SHA-256 hex of a key: the only form in which keys are stored. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Cheap shape check before any lookup, so junk never reaches the database or the cache. */
export function looksLikeKey(candidate: string): boolean {
  return KEY_PATTERN.test(candidate);
}

/** The token of an `Authorization: Bearer <token>` header value, if it is one. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
}

/** Whether a candidate equals any of the tokens; every one is compared, so timing tells nothing. */
export function matchesAnyToken(candidate: string, tokens: (string | undefined)[]): boolean {
  let found = false;
  for (const t of tokens) if (t && safeEqual(candidate, t)) found = true;
  return found;
}

/** Constant-time equality of two hex digests or tokens. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    // Compare anyway so the time does not reveal the length mismatch early.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** Random ids with a readable prefix, e.g. `ws_…`, `key_…`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

/** What people see of a key after creation: enough to recognize it, never enough to use it. */
export function displayPrefix(key: string): string {
  return key.slice(0, 10);
}
