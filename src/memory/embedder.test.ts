import { describe, expect, it } from 'vitest';
import { cosineWithNorms, decodeVector, nearestInBlock, norm, vectorBlocks } from './embedder.js';

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

describe('nearestInBlock', () => {
  const b64 = (v: number[]) => Buffer.from(new Float32Array(v).buffer).toString('base64');
  it('equals sorting every cosine (ties newest first), skips other sizes, zero vectors and non-positive scores', () => {
    let seed = 3;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return (seed % 2001) / 1000 - 1;
    };
    const rows = Array.from({ length: 300 }, (_, i) => {
      const v = Array.from({ length: 16 }, () => Math.round(rand() * 4) / 4); // coarse values: some ties
      return { seq: 1000 - i * 3, embedding: b64(i % 50 === 0 ? new Array(16).fill(0) : v) };
    });
    rows.push({ seq: 5, embedding: b64([1, 2, 3]) }); // another size
    const blocks = vectorBlocks(rows);
    expect([...blocks.keys()].sort((a, b) => a - b)).toEqual([3, 16]);
    for (let trial = 0; trial < 10; trial++) {
      const q = new Float32Array(Array.from({ length: 16 }, () => Math.round(rand() * 4) / 4));
      const limit = 1 + (trial % 25);
      const expected = rows
        .filter((r) => r.seq !== 5)
        .map((r) => {
          const v = decodeVector(r.embedding);
          return { seq: r.seq, score: cosineWithNorms(q, norm(q), v, norm(v)) };
        })
        .filter((r) => r.score > 0)
        .sort((a, b) => b.score - a.score || b.seq - a.seq)
        .slice(0, limit)
        .map((r) => r.seq);
      expect(nearestInBlock(blocks.get(16)!, q, limit)).toEqual(expected);
    }
    // Bounded to a seq range: the same as filtering first.
    const q = new Float32Array(16).fill(0.5);
    const inRange = rows
      .filter((r) => r.seq >= 400 && r.seq < 700)
      .map((r) => ({ seq: r.seq, score: cosineWithNorms(q, norm(q), decodeVector(r.embedding), norm(decodeVector(r.embedding))) }))
      .filter((r) => r.score > 0)
      .sort((a, b) => b.score - a.score || b.seq - a.seq)
      .slice(0, 7)
      .map((r) => r.seq);
    expect(nearestInBlock(blocks.get(16)!, q, 7, 400, 700)).toEqual(inRange);
    expect(nearestInBlock(blocks.get(16)!, new Float32Array(16), 5)).toEqual([]);
    expect(nearestInBlock(blocks.get(16)!, new Float32Array(3).fill(1), 5)).toEqual([]);
  });
});
