// Lexical retrieval's ranking, in the gateway. Postgres stems (the `search` column is
// to_tsvector('english', …) of an item's text, and the question goes through the same function), and
// this module ranks: each thread's span of older messages is held here with its stemmed words, so a
// request on a long thread costs the database one thread-row read, not a scan of 1,000 tsvectors
// (~2 ms of its CPU per request, measured in bench:memory). PGlite and Postgres rank alike.
//
// An index covers a contiguous range of seqs [from, to) of one thread at one identity (creation
// time and edit_version: bumped when stored items are superseded, edited or deleted, never on
// append), so appends on any instance leave it valid and only the seqs entering the span are read.

import type { HistoryRow } from './thread-store.js';

/** A thread's stemmed words as small integers (shared by the thread's successive indexes: it only grows). */
export class Dictionary {
  readonly ids = new Map<string, number>();
  readonly words: string[] = [];
  idOf(word: string): number {
    let id = this.ids.get(word);
    if (id === undefined) {
      id = this.words.length;
      this.ids.set(word, id);
      this.words.push(word);
    }
    return id;
  }
}

export interface IndexedDoc {
  seq: number;
  row: HistoryRow;
  /** Its stemmed words: id, occurrences, id, occurrences, … by ascending id (one array: less to hold). */
  terms: Int32Array;
  /** Occurrences of all words (BM25's document length). */
  len: number;
  /** What holding it costs, roughly (UTF-16 bytes of its text and words). */
  bytes: number;
}

/**
 * The inverted part of an index: for each word, the positions (in `docs`, ascending) of the
 * documents holding it and its occurrences there; documents' lengths as prefix sums. Built at once.
 */
interface Segment {
  docs: readonly IndexedDoc[];
  seqs: Int32Array;
  /** lenPrefix[i]: the summed lengths of docs[0..i). */
  lenPrefix: Float64Array;
  postings: Map<number, { pos: number[]; tf: number[] }>;
}

/**
 * One thread's index: never mutated (a change makes a new one), so a request can read it while
 * another replaces it. Messages appended above the segment wait in `tail` (scanned) until there
 * are TAIL_MAX of them; then, or on any other change, the segment is rebuilt with them.
 */
export interface SpanIndex {
  identity: string;
  dict: Dictionary;
  /** The seqs [from, to) are all here: every complete message among them (or none, when there were none). */
  from: number;
  to: number;
  segment: Segment;
  /** Sorted by seq, every one above the segment's. */
  tail: readonly IndexedDoc[];
  bytes: number;
}

const TAIL_MAX = 128;

function buildSegment(docs: readonly IndexedDoc[]): Segment {
  const seqs = new Int32Array(docs.length);
  const lenPrefix = new Float64Array(docs.length + 1);
  const postings = new Map<number, { pos: number[]; tf: number[] }>();
  for (let i = 0; i < docs.length; i++) {
    const d = docs[i];
    seqs[i] = d.seq;
    lenPrefix[i + 1] = lenPrefix[i] + d.len;
    for (let k = 0; k < d.terms.length; k += 2) {
      let p = postings.get(d.terms[k]);
      if (!p) postings.set(d.terms[k], (p = { pos: [], tf: [] }));
      p.pos.push(i);
      p.tf.push(d.terms[k + 1]);
    }
  }
  return { docs, seqs, lenPrefix, postings };
}

/** Every document of an index, by seq. */
export function docsOf(index: SpanIndex): readonly IndexedDoc[] {
  return index.tail.length ? index.segment.docs.concat(index.tail) : index.segment.docs;
}

function indexWith(identity: string, dict: Dictionary, from: number, to: number, docs: readonly IndexedDoc[]): SpanIndex {
  let bytes = 0;
  for (const d of docs) bytes += d.bytes;
  return { identity, dict, from, to: Math.max(from, to), segment: buildSegment(docs), tail: [], bytes };
}

/**
 * Postgres's text form of a tsvector (`'supplier':7,9A 'o''neil':3`) as word → occurrences. Quotes
 * are doubled and backslashes escaped inside a word; a word without positions counts once.
 */
export function parseTsvector(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const n = text.length;
  const backslashes = text.includes('\\');
  let i = text.indexOf("'");
  while (i >= 0 && i < n) {
    let word: string;
    let j: number;
    if (backslashes) {
      // Character by character: `\x` is x, `''` is a quote.
      word = '';
      j = i + 1;
      while (j < n) {
        const c = text[j];
        if (c === '\\' && j + 1 < n) {
          word += text[j + 1];
          j += 2;
        } else if (c === "'" && text[j + 1] === "'") {
          word += "'";
          j += 2;
        } else if (c === "'") break;
        else {
          word += c;
          j++;
        }
      }
    } else {
      // Up to the next quote that is not doubled (the usual word has none).
      j = text.indexOf("'", i + 1);
      while (j >= 0 && text.charCodeAt(j + 1) === 39) j = text.indexOf("'", j + 2);
      if (j < 0) j = n;
      const raw = text.slice(i + 1, j);
      word = raw.includes("''") ? raw.replaceAll("''", "'") : raw;
    }
    // Positions: `:1,5A,9` (one occurrence each); none: once.
    let count = 1;
    let k = j + 1;
    if (text.charCodeAt(k) === 58) {
      k++;
      while (k < n && text.charCodeAt(k) !== 32) {
        if (text.charCodeAt(k) === 44) count++;
        k++;
      }
    }
    out.set(word, (out.get(word) ?? 0) + count);
    i = text.indexOf("'", k);
  }
  return out;
}

export function indexedDoc(row: HistoryRow, lexemes: string, rawBytes: number, dict: Dictionary): IndexedDoc {
  const words = parseTsvector(lexemes);
  // Sorted by id: each (id, occurrences) as one number, sorted natively.
  const packed = new Float64Array(words.size);
  let len = 0;
  let w = 0;
  for (const [word, count] of words) {
    packed[w++] = dict.idOf(word) * 65_536 + Math.min(count, 65_535);
    len += count;
  }
  packed.sort();
  const terms = new Int32Array(2 * packed.length);
  for (let k = 0; k < packed.length; k++) {
    terms[2 * k] = Math.floor(packed[k] / 65_536);
    terms[2 * k + 1] = packed[k] % 65_536;
  }
  return { seq: row.seq, row, terms, len, bytes: docBytes(rawBytes, packed.length) };
}

/**
 * What holding a document costs, roughly: its text (one byte a character, as V8 keeps ASCII), then
 * per word its pair here and its posting, and a fixed part (the objects). Measured: ~1.5 KiB per
 * message of the bench's 1,000-message span (45 tokens, ~20 words each), V8 heap after a full GC.
 */
const docBytes = (rawBytes: number, words: number) => rawBytes + 40 * words + 700;

/** The index's document of this seq, if it holds one (within [from, to), none means no complete message has it). */
export function docAt(index: SpanIndex, seq: number): IndexedDoc | undefined {
  for (const docs of [index.tail, index.segment.docs]) {
    const at = lowerBound(docs, seq, seqOf);
    if (at < docs.length && docs[at].seq === seq) return docs[at];
  }
  return undefined;
}

/** A document's (word id, occurrences) pairs. */
export function termsOf(d: IndexedDoc): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < d.terms.length; k += 2) out.push([d.terms[k], d.terms[k + 1]]);
  return out;
}

/**
 * A dictionary for the next index of a thread: the current one, unless it grew far past what the
 * index's documents use (words of messages that left the span); then a fresh one, with `docs`
 * moved over to it.
 */
export function compactDictionary(index: SpanIndex): SpanIndex {
  if (index.dict.words.length <= 10_000) return index;
  const all = docsOf(index);
  let used = 0;
  for (const d of all) used += d.terms.length / 2;
  if (index.dict.words.length <= 4 * used + 10_000) return index;
  const dict = new Dictionary();
  const docs = all.map((d) => {
    const pairs = termsOf(d)
      .map(([id, tf]) => [dict.idOf(index.dict.words[id]), tf] as [number, number])
      .sort((a, b) => a[0] - b[0]);
    return { ...d, terms: Int32Array.from(pairs.flat()) };
  });
  return indexWith(index.identity, dict, index.from, index.to, docs);
}

/** Seqs of a span an index lacks: all of [lo, hi) unless the index's range touches it (then the fetch can skip what it holds). */
export function heldPart(index: SpanIndex | undefined, lo: number, hi: number): { from: number; to: number } {
  if (!index || lo > index.to || hi < index.from) return { from: 0, to: 0 };
  return { from: index.from, to: index.to };
}

/** How far below the span an index keeps older messages (so requests with larger budgets do not refetch). */
const KEEP_BELOW = 1_024;

/**
 * The index after a fetch of [lo, hi) (less `held`, which `base` supplied), at `identity`; `upTo`
 * (the thread's next_seq in the fetch's snapshot) bounds what it can claim to cover: seqs not yet
 * reserved then may be written later.
 */
export function withFetched(
  base: SpanIndex | undefined,
  dict: Dictionary,
  held: { from: number; to: number },
  identity: string,
  lo: number,
  hi: number,
  upTo: number,
  fetched: IndexedDoc[],
): SpanIndex {
  const end = Math.min(hi, upTo);
  const useBase = !!base && base.dict === dict && base.identity === identity && held.to > held.from;
  const from0 = useBase ? Math.min(base.from, lo) : lo;
  const to = useBase ? Math.max(base.to, end) : end;
  const from = Math.max(from0, lo - KEEP_BELOW);
  const added = fetched.filter((d) => d.seq >= from && d.seq < to);
  if (useBase) {
    // The usual change: a few messages entering the span from above go to the tail. Older ones
    // below `from` stay until the next rebuild (ranking looks at [lo, hi) only), which comes at the
    // latest when they are another KEEP_BELOW further down.
    const all = docsOf(base);
    const top = all.length ? all[all.length - 1].seq : -1;
    const segment = base.segment.docs;
    const fewStale = !segment.length || segment[0].seq >= from - KEEP_BELOW;
    if (fewStale && (!added.length || (added[0].seq > top && base.tail.length + added.length <= TAIL_MAX))) {
      let bytes = base.bytes;
      for (const d of added) bytes += d.bytes;
      return { ...base, from, to: Math.max(from, to), tail: added.length ? base.tail.concat(added) : base.tail, bytes };
    }
    const bySeq = new Map<number, IndexedDoc>();
    for (const d of all) if (d.seq >= from && d.seq < to) bySeq.set(d.seq, d);
    for (const d of added) bySeq.set(d.seq, d);
    return indexWith(
      identity,
      dict,
      from,
      to,
      [...bySeq.values()].sort((a, b) => a.seq - b.seq),
    );
  }
  return indexWith(identity, dict, from, to, added);
}

/** The index without these seqs, at a new identity (an append on this instance superseded them). */
export function withoutSeqs(index: SpanIndex, seqs: readonly number[], identity: string): SpanIndex {
  const gone = new Set(seqs);
  return indexWith(
    identity,
    index.dict,
    index.from,
    index.to,
    docsOf(index).filter((d) => !gone.has(d.seq)),
  );
}

/** The first index in ascending `values` (by `at`) whose value is ≥ `v`. */
function lowerBound<T>(values: ArrayLike<T>, v: number, at: (x: T) => number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (at(values[mid]) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
const self = (x: number) => x;
const seqOf = (d: IndexedDoc) => d.seq;

/** Where a document holds word `id` (the index of its pair), or -1. */
function has(terms: Int32Array, id: number): number {
  let lo = 0;
  let hi = terms.length >> 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = terms[2 * mid];
    if (v === id) return 2 * mid;
    if (v < id) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

const K1 = 1.2;
const B = 0.75;

/**
 * BM25 over the span's messages [lo, hi): those that share a stemmed word with the question, best
 * first (ties: newer first), at most `limit`. IDF and the average length are the span's own. The
 * segment's postings give each word's matches in the range directly (binary search on positions);
 * the tail is scanned.
 */
export function rankSpan(
  index: SpanIndex,
  terms: readonly string[],
  lo: number,
  hi: number,
  limit: number,
): { row: HistoryRow; score: number }[] {
  if (limit <= 0) return [];
  const qids: number[] = [];
  for (const t of terms) {
    const id = index.dict.ids.get(t);
    if (id !== undefined && !qids.includes(id)) qids.push(id);
  }
  if (!qids.length) return [];
  const nq = qids.length;
  const seg = index.segment;
  const start = lowerBound(seg.seqs, lo, self);
  const end = lowerBound(seg.seqs, hi, self);
  const tail = index.tail;
  const tailStart = lowerBound(tail, lo, seqOf);
  const tailEnd = lowerBound(tail, hi, seqOf);
  let count = end - start + (tailEnd - tailStart);
  let total = seg.lenPrefix[end] - seg.lenPrefix[start];
  for (let i = tailStart; i < tailEnd; i++) total += tail[i].len;
  if (!count) return [];
  // Each word's matches: a range of its postings, and the tail's.
  const df = new Array<number>(nq).fill(0);
  const ranges: [number, number][] = [];
  for (let q = 0; q < nq; q++) {
    const p = seg.postings.get(qids[q]);
    const a = p ? lowerBound(p.pos, start, self) : 0;
    const b = p ? lowerBound(p.pos, end, self) : 0;
    ranges.push([a, b]);
    df[q] = b - a;
    for (let i = tailStart; i < tailEnd; i++) if (has(tail[i].terms, qids[q]) >= 0) df[q]++;
  }
  count = Math.max(count, 1);
  const idf = df.map((f) => Math.log(1 + (count - f + 0.5) / (f + 0.5)));
  const avg = total / count || 1;
  const termScore = (q: number, f: number, len: number) => (idf[q] * f * (K1 + 1)) / (f + K1 * (1 - B + (B * len) / avg));
  // Scores by segment position (summed over words, in word order).
  const scores = new Float64Array(end - start);
  for (let q = 0; q < nq; q++) {
    const p = seg.postings.get(qids[q]);
    if (!p) continue;
    for (let k = ranges[q][0]; k < ranges[q][1]; k++) {
      const pos = p.pos[k];
      scores[pos - start] += termScore(q, p.tf[k], seg.docs[pos].len);
    }
  }
  // The best `limit`, visited newest first (the tail, then the segment backwards), so that of equal
  // scores the newer stays ahead and an older one never displaces it.
  const best: { row: HistoryRow; score: number }[] = [];
  const offer = (row: HistoryRow, score: number) => {
    if (best.length === limit && score <= best[limit - 1].score) return;
    let at = best.length;
    while (at > 0 && best[at - 1].score < score) at--;
    best.splice(at, 0, { row, score });
    if (best.length > limit) best.pop();
  };
  for (let i = tailEnd - 1; i >= tailStart; i--) {
    const d = tail[i];
    let score = 0;
    for (let q = 0; q < nq; q++) {
      const at = has(d.terms, qids[q]);
      if (at >= 0) score += termScore(q, d.terms[at + 1], d.len);
    }
    if (score > 0) offer(d.row, score);
  }
  for (let i = end - start - 1; i >= 0; i--) if (scores[i] > 0) offer(seg.docs[start + i].row, scores[i]);
  return best;
}
