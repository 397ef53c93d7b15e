import { describe, expect, it } from 'vitest';
import {
  Dictionary,
  compactDictionary,
  docAt,
  docsOf,
  termsOf,
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
    expect(docsOf(grown).map((d) => d.seq)).toEqual([10, 11, 12, 15]);
    expect([grown.from, grown.to]).toEqual([10, 20]);
    expect(docsOf(base).map((d) => d.seq)).toEqual([10, 11, 12]); // not mutated
    // Far past it: nothing held is usable.
    expect(heldPart(grown, 5_000, 6_000)).toEqual({ from: 0, to: 0 });
    // Another identity: the fetched docs alone, whatever the held range was.
    const edited = withFetched(grown, dict, { from: 10, to: 20 }, '1:1', 10, 20, Infinity, [indexedDoc(row(12), tsv(['z']), 1, dict)]);
    expect(docsOf(edited).map((d) => d.seq)).toEqual([12]);
  });

  it('claims no seq the thread had not reserved yet (a later append must still be read), and prunes far below the span', () => {
    const dict = new Dictionary();
    const index = withFetched(undefined, dict, { from: 0, to: 0 }, '1:0', 0, 1_000, 600, [indexedDoc(row(599), tsv(['x']), 1, dict)]);
    expect(index.to).toBe(600);
    expect(heldPart(index, 0, 1_000)).toEqual({ from: 0, to: 600 });
    const later = withFetched(index, dict, heldPart(index, 3_000, 4_000), '1:0', 3_000, 4_000, 5_000, []);
    expect(docsOf(later)).toEqual([]);
    const near = withFetched(index, dict, heldPart(index, 590, 1_590), '1:0', 590, 1_590, 2_000, []);
    expect(docsOf(near).map((d) => d.seq)).toEqual([599]);
    const next = withFetched(near, dict, heldPart(near, 1_590, 2_590), '1:0', 1_590, 2_590, 3_000, []);
    expect([next.from, next.to, docsOf(next).length]).toEqual([1_590 - 1_024, 2_590, 1]);
    // The span moving up: the old message is dropped at the latest once it is 2 × 1,024 below.
    let far = next;
    for (let lo = 2_500; lo < 4_000; lo += 500) {
      far = withFetched(far, dict, heldPart(far, lo, lo + 1_000), '1:0', lo, lo + 1_000, 10_000, []);
      expect([far.from, far.to]).toEqual([lo - 1_024, lo + 1_000]);
      if (lo - 2 * 1_024 > 599) expect(docsOf(far)).toEqual([]);
    }
    expect(docsOf(far)).toEqual([]);
  });

  it('finds a document by seq in the segment and in the tail', () => {
    const dict = new Dictionary();
    const index = indexOf({ 1: ['a'], 3: ['b'] }, dict);
    const grown = withFetched(index, dict, heldPart(index, 1, 9), '1:0', 1, 9, Infinity, [indexedDoc(row(7), tsv(['c']), 1, dict)]);
    expect(grown.tail.map((d) => d.seq)).toEqual([7]);
    expect([1, 2, 3, 7, 8].map((seq) => docAt(grown, seq)?.row.content ?? null)).toEqual(['m1', null, 'm3', 'm7', null]);
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

/** BM25 as a plain loop over every document of the range: what rankSpan must equal. */
function reference(index: SpanIndex, terms: string[], lo: number, hi: number, limit: number) {
  const docs = docsOf(index).filter((d) => d.seq >= lo && d.seq < hi);
  const ids = [...new Set(terms.map((t) => index.dict.ids.get(t)).filter((id): id is number => id !== undefined))];
  const tfOf = (d: (typeof docs)[number], id: number) => {
    const pair = termsOf(d).find(([w]) => w === id);
    return pair ? pair[1] : 0;
  };
  const avg = docs.reduce((a, d) => a + d.len, 0) / Math.max(docs.length, 1) || 1;
  const idf = ids.map((id) => {
    const f = docs.filter((d) => tfOf(d, id) > 0).length;
    return Math.log(1 + (Math.max(docs.length, 1) - f + 0.5) / (f + 0.5));
  });
  return docs
    .map((d) => ({
      seq: d.seq,
      score: ids.reduce((sum, id, q) => {
        const f = tfOf(d, id);
        return f ? sum + (idf[q] * f * 2.2) / (f + 1.2 * (1 - 0.75 + (0.75 * d.len) / avg)) : sum;
      }, 0),
    }))
    .filter((h) => h.score > 0)
    .sort((a, b) => b.score - a.score || b.seq - a.seq)
    .slice(0, limit);
}

describe('rankSpan against a plain BM25 loop', () => {
  it('agrees on random threads grown by appends (tail and rebuilt segment), backfills and supersedes', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const vocab = Array.from({ length: 40 }, (_, i) => `w${i}`);
    const doc = (seq: number, dict: Dictionary) =>
      indexedDoc(row(seq), tsv(Array.from({ length: 1 + rand(12) }, () => vocab[rand(vocab.length)])), 10, dict);
    for (let trial = 0; trial < 20; trial++) {
      const dict = new Dictionary();
      let next = 1 + rand(50);
      let index = withFetched(undefined, dict, { from: 0, to: 0 }, '1:0', next, next, Infinity, []);
      const check = () => {
        for (let q = 0; q < 5; q++) {
          const terms = Array.from({ length: 1 + rand(4) }, () => vocab[rand(vocab.length + 5)] ?? 'absent');
          const lo = Math.max(0, index.to - 1 - rand(400));
          const hi = lo + 1 + rand(400);
          const limit = 1 + rand(25);
          const got = rankSpan(index, terms, lo, hi, limit).map((h) => ({ seq: h.row.seq, score: h.score }));
          expect(got).toEqual(reference(index, terms, lo, hi, limit));
        }
      };
      for (let step = 0; step < 30; step++) {
        const grow = 1 + rand(step % 7 === 0 ? 200 : 6);
        const fetched = Array.from({ length: grow }, (_, i) => doc(next + i, dict)).filter(() => rand(10) > 0);
        index = withFetched(index, dict, heldPart(index, index.from, next + grow), '1:0', index.from, next + grow, Infinity, fetched);
        next += grow;
        check();
      }
      // A backfill below, then a branch superseding some: each rebuilds; the ranking still agrees.
      const low = Math.max(0, index.from - 50);
      const back = Array.from({ length: index.from - low }, (_, i) => doc(low + i, dict));
      index = withFetched(index, dict, heldPart(index, low, index.to), '1:0', low, index.to, Infinity, back);
      check();
      index = withoutSeqs(
        index,
        docsOf(index)
          .filter(() => rand(5) === 0)
          .map((d) => d.seq),
        '1:1',
      );
      check();
    }
  });
});
