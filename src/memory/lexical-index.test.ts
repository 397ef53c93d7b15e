import { describe, expect, it } from 'vitest';
import {
  Dictionary,
  compactDictionary,
  heldPart,
  indexedDoc,
  parseTsvector,
  rankSpan,
  withFetched,
  withoutSeqs,
  type SpanIndex,
} from './lexical-index.js';
import type { HistoryRow } from './thread-store.js';

const row = (seq: number): HistoryRow => ({
  seq,
  role: 'user',
  content: `m${seq}`,
  toolCalls: null,
  toolCallId: null,
  name: null,
  contentHash: `h${seq}`,
  tokens: 3,
});

/** A tsvector's text form for these words (each word's positions: one per occurrence). */
function tsv(words: string[]): string {
  const at = new Map<string, number[]>();
  words.forEach((w, i) => at.set(w, [...(at.get(w) ?? []), i + 1]));
  return [...at].map(([w, p]) => `'${w.replace(/'/g, "''")}':${p.join(',')}`).join(' ');
}

function indexOf(texts: Record<number, string[]>, dict = new Dictionary(), identity = '1:0'): SpanIndex {
  const docs = Object.entries(texts).map(([seq, words]) => indexedDoc(row(Number(seq)), tsv(words), 10, dict));
  const seqs = docs.map((d) => d.seq);
  return withFetched(undefined, dict, { from: 0, to: 0 }, identity, Math.min(...seqs), Math.max(...seqs) + 1, Infinity, docs);
}

describe('parseTsvector', () => {
  it("reads Postgres's text form: escaped quotes and backslashes, positions with weights, stripped words", () => {
    const parsed = parseTsvector(`'12':12 'a''b':1 'c\\\\d':2,5 'e\\\\''f':3A,4B 'o''neil''s':7 'plain'`);
    expect([...parsed]).toEqual([
      ['12', 1],
      ["a'b", 1],
      ['c\\d', 2],
      ["e\\'f", 2],
      ["o'neil's", 1],
      ['plain', 1],
    ]);
    expect(parseTsvector('').size).toBe(0);
  });
});

describe('rankSpan (BM25 over a span)', () => {
  it('ranks a message with the rare word above ones with only the common word, and leaves non-matches out', () => {
    const index = indexOf({
      1: ['weather', 'today'],
      2: ['weather', 'traffic'],
      3: ['dog', 'rex', 'weather'],
      4: ['weather'],
      5: ['lunch'],
    });
    const hits = rankSpan(index, ['dog', 'weather'], 1, 6, 10);
    expect(hits[0].row.seq).toBe(3);
    expect(hits.map((h) => h.row.seq).sort()).toEqual([1, 2, 3, 4]);
    // Scores fall monotonically; the shorter of two equal-tf documents scores higher.
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1].score).toBeGreaterThanOrEqual(hits[i].score);
    expect(hits.findIndex((h) => h.row.seq === 4)).toBeLessThan(hits.findIndex((h) => h.row.seq === 1));
  });

  it('counts repeated words, breaks ties newest first, honours the limit and the seq range', () => {
    const index = indexOf({ 1: ['kettle'], 2: ['kettle'], 3: ['kettle'], 4: ['kettle', 'kettle', 'kettle'], 9: ['kettle'] });
    expect(rankSpan(index, ['kettle'], 1, 10, 10).map((h) => h.row.seq)).toEqual([4, 9, 3, 2, 1]);
    expect(rankSpan(index, ['kettle'], 1, 10, 2).map((h) => h.row.seq)).toEqual([4, 9]);
    // [2, 4): only seqs 2 and 3.
    expect(rankSpan(index, ['kettle'], 2, 4, 10).map((h) => h.row.seq)).toEqual([3, 2]);
    expect(rankSpan(index, ['unknown'], 1, 10, 10)).toEqual([]);
    expect(rankSpan(index, [], 1, 10, 10)).toEqual([]);
    // A word given twice counts once.
    expect(rankSpan(index, ['kettle', 'kettle'], 1, 10, 10)[0].score).toBeCloseTo(rankSpan(index, ['kettle'], 1, 10, 10)[0].score);
  });
});

describe('span index maintenance', () => {
  it('a fetch that touches the held range extends it (only the new seqs read); one that does not replaces it', () => {
    const dict = new Dictionary();
    const base = indexOf({ 10: ['a'], 11: ['b'], 12: ['c'] }, dict);
    expect([base.from, base.to]).toEqual([10, 13]);
    expect(heldPart(base, 11, 20)).toEqual({ from: 10, to: 13 });
    const grown = withFetched(base, dict, heldPart(base, 11, 20), '1:0', 11, 20, Infinity, [indexedDoc(row(15), tsv(['d']), 1, dict)]);
    expect(grown.docs.map((d) => d.seq)).toEqual([10, 11, 12, 15]);
    expect([grown.from, grown.to]).toEqual([10, 20]);
    expect(base.docs.map((d) => d.seq)).toEqual([10, 11, 12]); // not mutated
    // Far past it: nothing held is usable.
    expect(heldPart(grown, 5_000, 6_000)).toEqual({ from: 0, to: 0 });
    // Another identity: the fetched docs alone, whatever the held range was.
    const edited = withFetched(grown, dict, { from: 10, to: 20 }, '1:1', 10, 20, Infinity, [indexedDoc(row(12), tsv(['z']), 1, dict)]);
    expect(edited.docs.map((d) => d.seq)).toEqual([12]);
  });

  it('claims no seq the thread had not reserved yet (a later append must still be read), and prunes far below the span', () => {
    const dict = new Dictionary();
    const index = withFetched(undefined, dict, { from: 0, to: 0 }, '1:0', 0, 1_000, 600, [indexedDoc(row(599), tsv(['x']), 1, dict)]);
    expect(index.to).toBe(600);
    expect(heldPart(index, 0, 1_000)).toEqual({ from: 0, to: 600 });
    const later = withFetched(index, dict, heldPart(index, 3_000, 4_000), '1:0', 3_000, 4_000, 5_000, []);
    expect(later.docs).toEqual([]);
    const near = withFetched(index, dict, heldPart(index, 590, 1_590), '1:0', 590, 1_590, 2_000, []);
    expect(near.docs.map((d) => d.seq)).toEqual([599]);
    const next = withFetched(near, dict, heldPart(near, 1_590, 2_590), '1:0', 1_590, 2_590, 3_000, []);
    expect([next.from, next.to, next.docs.length]).toEqual([1_590 - 1_024, 2_590, 1]);
    const far = withFetched(next, dict, heldPart(next, 2_500, 3_500), '1:0', 2_500, 3_500, 4_000, []);
    expect([far.from, far.to]).toEqual([2_500 - 1_024, 3_500]);
    expect(far.docs).toEqual([]);
  });

  it('removes superseded seqs at the new identity, and a compacted dictionary ranks the same', () => {
    const index = indexOf({ 1: ['tea'], 2: ['tea', 'cake'], 3: ['coffee'] });
    const without = withoutSeqs(index, [2], '1:1');
    expect(without.identity).toBe('1:1');
    expect(rankSpan(without, ['tea', 'cake'], 1, 4, 10).map((h) => h.row.seq)).toEqual([1]);
    // A dictionary grown far past what the docs use is rebuilt; the ranking does not change.
    for (let i = 0; i < 20_000; i++) index.dict.idOf(`gone${i}`);
    const compact = compactDictionary(index);
    expect(compact.dict).not.toBe(index.dict);
    expect(compact.dict.words.length).toBe(3);
    const ranks = (ix: SpanIndex) => rankSpan(ix, ['tea', 'cake', 'coffee'], 1, 4, 10).map((h) => [h.row.seq, h.score]);
    expect(ranks(compact)).toEqual(ranks(index));
    expect(compactDictionary(compact)).toBe(compact);
  });
});
