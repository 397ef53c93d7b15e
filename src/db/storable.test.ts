import { describe, expect, it } from 'vitest';
import { needsStorable, storableDeep, storableOrNull, storableText } from './storable.js';

describe('storable values', () => {
  it('replaces NUL and unpaired surrogates with U+FFFD, and keeps everything else, emoji included', () => {
    expect(storableText('a\u0000b')).toBe('a\uFFFDb');
    expect(storableText('x\ud800y')).toBe('x\uFFFDy');
    expect(storableText('x\udc00')).toBe('x\uFFFD');
    expect(storableText('héllo 🎉 \u0001 tab\t')).toBe('héllo 🎉 \u0001 tab\t');
    expect(needsStorable('🎉')).toBe(false);
    expect(needsStorable('\ud83c')).toBe(true);
    expect(storableOrNull(null)).toBeNull();
    expect(storableOrNull(undefined)).toBeNull();
    expect(storableOrNull('\u0000')).toBe('\uFFFD');
  });

  it('walks objects and arrays (keys too), returning the same object when nothing needs changing', () => {
    const clean = { a: ['x', { b: 'y' }], n: 1, t: true, z: null };
    expect(storableDeep(clean)).toBe(clean);
    const dirty = { 'k\u0000': ['ok', { deep: 'v\ud800' }], n: 2, ['__proto__']: 'p\u0000' } as Record<string, unknown>;
    const fixed = storableDeep(JSON.parse(JSON.stringify(dirty)));
    expect(fixed).toEqual({ 'k\uFFFD': ['ok', { deep: 'v\uFFFD' }], n: 2, ['__proto__']: 'p\uFFFD' });
    expect(Object.getPrototypeOf(fixed)).toBe(Object.prototype);
    expect(storableDeep('a\u0000')).toBe('a\uFFFD');
    expect(storableDeep(5)).toBe(5);
  });
});
