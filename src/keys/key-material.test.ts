import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bearerToken, displayPrefix, generateKey, hashKey, looksLikeKey, matchesAnyToken, newId, safeEqual } from './key-material.js';

/** A key that shares `key`'s display prefix (what lists and logs show) and nothing else. */
const samePrefix = (key: string) => displayPrefix(key) + generateKey().slice(10);

describe('key hashing and display', () => {
  it('hashes the whole key: keys sharing the 10-character display prefix hash differently', () => {
    const key = generateKey();
    const twin = samePrefix(key);
    expect(displayPrefix(twin)).toBe(displayPrefix(key));
    expect(twin).not.toBe(key);
    expect(looksLikeKey(twin)).toBe(true);
    expect(hashKey(twin)).not.toBe(hashKey(key));
    // The stored form is exactly SHA-256 hex of the full key (keys made before this version still verify).
    expect(hashKey(key)).toBe(createHash('sha256').update(key).digest('hex'));
  });

  it('shows 10 characters of a key: the cmg_ marker and 6 of its 43 random ones', () => {
    const key = generateKey();
    expect(displayPrefix(key)).toBe(key.slice(0, 10));
    expect(displayPrefix(key)).toHaveLength(10);
    expect(displayPrefix(key).startsWith('cmg_')).toBe(true);
  });

  it('accepts exactly the shape of a gateway key', () => {
    const key = generateKey();
    expect(looksLikeKey(key)).toBe(true);
    expect(looksLikeKey(key.slice(0, -1))).toBe(false); // 42 random characters
    expect(looksLikeKey(`${key}A`)).toBe(false); // 44
    expect(looksLikeKey(`x${key}`)).toBe(false); // anchored at the start
    expect(looksLikeKey(`${key}\n`)).toBe(false); // and at the end
    expect(looksLikeKey(`sk_${key.slice(4)}`)).toBe(false);
    expect(looksLikeKey(`cmg_${'+'.repeat(43)}`)).toBe(false); // base64url only
    expect(looksLikeKey(`cmg_${'-_'.repeat(21)}a`)).toBe(true);
  });

  it('makes ids with their prefix and 12 random bytes', () => {
    const id = newId('key');
    expect(id).toMatch(/^key_[A-Za-z0-9_-]{16}$/);
    expect(newId('key')).not.toBe(id);
  });
});

describe('bearer tokens', () => {
  it('reads the token of a Bearer header, case-insensitively, trailing spaces allowed', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc  ')).toBe('abc');
    expect(bearerToken('BEARER abc')).toBe('abc');
  });

  it('refuses anything else', () => {
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'xBearer abc', 'Bearerabc']) {
      expect(bearerToken(h), String(h)).toBeUndefined();
    }
  });
});

describe('token comparison', () => {
  it('compares whole strings: equal, different, and different length', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'ab')).toBe(false);
    expect(safeEqual('ab', 'abc')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
  });

  it('matches a candidate against any of several tokens, skipping unset ones', () => {
    expect(matchesAnyToken('t2', ['t1', 't2'])).toBe(true);
    expect(matchesAnyToken('t1', ['t1', 't2'])).toBe(true); // a match before a miss stays a match
    expect(matchesAnyToken('t3', ['t1', 't2'])).toBe(false);
    expect(matchesAnyToken('', [undefined, ''])).toBe(false); // an unset token never matches
    expect(matchesAnyToken('x', [])).toBe(false);
  });
});
