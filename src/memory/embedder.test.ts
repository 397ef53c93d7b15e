import { describe, expect, it } from 'vitest';
import { cosineWithNorms, norm } from './embedder.js';

describe('cosineWithNorms', () => {
  const v = (...xs: number[]) => Float32Array.from(xs);
  const cos = (a: Float32Array, b: Float32Array) => cosineWithNorms(a, norm(a), b, norm(b));

  it('is the cosine of the angle between the vectors', () => {
    expect(cos(v(1, 0), v(0, 1))).toBeCloseTo(0, 6);
    expect(cos(v(1, 2, 3), v(2, 4, 6))).toBeCloseTo(1, 6);
    expect(cos(v(1, 0), v(-1, 0))).toBeCloseTo(-1, 6);
    expect(cos(v(3, 4), v(4, 3))).toBeCloseTo(24 / 25, 6);
  });

  it('is 0 for a zero vector or vectors of different lengths', () => {
    expect(cos(v(0, 0), v(1, 1))).toBe(0);
    expect(cos(v(1, 1), v(1, 1, 1))).toBe(0);
    expect(cos(v(), v())).toBe(0);
  });
});
