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
  /** Its stemmed words' ids, ascending, and each one's occurrences. */
  ids: Int32Array;
  tfs: Uint16Array;
  /** Occurrences of all words (BM25's document length). */
  len: number;
  /** What holding it costs, roughly (UTF-16 bytes of its text and words). */
  bytes: number;
}

/** One thread's index: never mutated (a change makes a new one), so a request can read it while another replaces it. */
export interface SpanIndex {
  identity: string;
  dict: Dictionary;
  /** The seqs [from, to) are all here: every complete message among them (or none, when there were none). */
  from: number;
  to: number;
  /** Sorted by seq. */
  docs: readonly IndexedDoc[];
  bytes: number;
}

/**
 * Postgres's text form of a tsvector (`'supplier':7,9A 'o''neil':3`) as word → occurrences. Quotes
 * are doubled and backslashes escaped inside a word; a word without positions counts once.
 */
export function parseTsvector(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let i = 0;
  const n = text.length;
  while (i < n) {
    if (text[i] !== "'") {
      i++;
      continue;
    }
    let word = '';
    i++;
    while (i < n) {
      const c = text[i];
      if (c === '\\' && i + 1 < n) {
        word += text[i + 1];
        i += 2;
      } else if (c === "'") {
        if (text[i + 1] === "'") {
          word += "'";
          i += 2;
        } else {
          i++;
          break;
        }
      } else {
        word += c;
        i++;
      }
    }
    let count = 1;
    if (text[i] === ':') {
      count = 1;
      i++;
      while (i < n && text[i] !== ' ') {
        if (text[i] === ',') count++;
        i++;
      }
    }
    out.set(word, (out.get(word) ?? 0) + count);
  }
  return out;
}

export function indexedDoc(row: HistoryRow, lexemes: string, rawBytes: number, dict: Dictionary): IndexedDoc {
  const pairs: [number, number][] = [];
  let len = 0;
  for (const [word, count] of parseTsvector(lexemes)) {
    pairs.push([dict.idOf(word), Math.min(count, 65_535)]);
    len += count;
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const ids = new Int32Array(pairs.length);
  const tfs = new Uint16Array(pairs.length);
  pairs.forEach(([id, tf], i) => {
    ids[i] = id;
    tfs[i] = tf;
  });
  return { seq: row.seq, row, ids, tfs, len, bytes: 2 * (rawBytes + lexemes.length) + 6 * pairs.length + 200 };
}

/**
 * A dictionary for the next index of a thread: the current one, unless it grew far past what the
 * index's documents use (words of messages that left the span); then a fresh one, with `docs`
 * moved over to it.
 */
export function compactDictionary(index: SpanIndex): SpanIndex {
  let used = 0;
  for (const d of index.docs) used += d.ids.length;
  if (index.dict.words.length <= 4 * used + 10_000) return index;
  const dict = new Dictionary();
  const docs = index.docs.map((d) => {
    const pairs = Array.from(d.ids, (id, i) => [dict.idOf(index.dict.words[id]), d.tfs[i]] as [number, number]).sort((a, b) => a[0] - b[0]);
    return { ...d, ids: Int32Array.from(pairs, (p) => p[0]), tfs: Uint16Array.from(pairs, (p) => p[1]) };
  });
  return { ...index, dict, docs };
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
  const kept = useBase ? base.docs.filter((d) => d.seq >= from && d.seq < to) : [];
  let docs: IndexedDoc[];
  const added = fetched.filter((d) => d.seq >= from && d.seq < to);
  if (!kept.length) docs = added;
  else if (!added.length) docs = kept;
  else if (added[0].seq > kept[kept.length - 1].seq) docs = kept.concat(added);
  else {
    const bySeq = new Map<number, IndexedDoc>();
    for (const d of kept) bySeq.set(d.seq, d);
    for (const d of added) bySeq.set(d.seq, d);
    docs = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
  let bytes = 0;
  for (const d of docs) bytes += d.bytes;
  return { identity, dict, from, to: Math.max(from, to), docs, bytes };
}

/** The index without these seqs, at a new identity (an append on this instance superseded them). */
export function withoutSeqs(index: SpanIndex, seqs: readonly number[], identity: string): SpanIndex {
  const gone = new Set(seqs);
  const docs = index.docs.filter((d) => !gone.has(d.seq));
  let bytes = 0;
  for (const d of docs) bytes += d.bytes;
  return { ...index, identity, docs, bytes };
}

function lowerBound(docs: readonly IndexedDoc[], seq: number): number {
  let lo = 0;
  let hi = docs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (docs[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function has(ids: Int32Array, id: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = ids[mid];
    if (v === id) return mid;
    if (v < id) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

const K1 = 1.2;
const B = 0.75;

/**
 * BM25 over the span's messages [lo, hi): those that share a stemmed word with the question, best
 * first (ties: newer first), at most `limit`. IDF and the average length are the span's own.
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
  const docs = index.docs;
  const start = lowerBound(docs, lo);
  const df = new Float64Array(nq);
  let total = 0;
  let count = 0;
  // First pass: the span's size and lengths, each word's document frequency, and the matches' counts.
  const matched: number[] = [];
  const found: number[] = [];
  for (let i = start; i < docs.length && docs[i].seq < hi; i++) {
    const d = docs[i];
    count++;
    total += d.len;
    let any = false;
    for (let q = 0; q < nq; q++) {
      const at = has(d.ids, qids[q]);
      if (at >= 0) {
        if (!any) {
          any = true;
          matched.push(i);
          for (let z = 0; z < nq; z++) found.push(0);
        }
        df[q]++;
        found[found.length - nq + q] = d.tfs[at];
      }
    }
  }
  if (!matched.length) return [];
  const idf = Array.from(df, (f) => Math.log(1 + (count - f + 0.5) / (f + 0.5)));
  const avg = total / count || 1;
  // Second pass: scores, keeping the best `limit` (a small sorted list: most matches do not enter it).
  const best: { row: HistoryRow; score: number }[] = [];
  for (let m = 0; m < matched.length; m++) {
    const d = docs[matched[m]];
    const norm = K1 * (1 - B + (B * d.len) / avg);
    let score = 0;
    for (let q = 0; q < nq; q++) {
      const f = found[m * nq + q];
      if (f) score += (idf[q] * f * (K1 + 1)) / (f + norm);
    }
    // Ties: the newer (higher seq) first; docs are visited in ascending seq, so a tie goes before.
    if (best.length === limit && score < best[limit - 1].score) continue;
    let at = best.length;
    while (at > 0 && best[at - 1].score <= score) at--;
    best.splice(at, 0, { row: d.row, score });
    if (best.length > limit) best.pop();
  }
  return best;
}
