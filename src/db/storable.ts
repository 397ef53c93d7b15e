/**
 * Postgres refuses two things JavaScript strings may hold: the NUL character (in text, and as
 * `\u0000` in jsonb) and unpaired UTF-16 surrogates (invalid UTF-8 once encoded; `\ud800` escapes
 * in jsonb). One such value in a batch used to fail the whole batch forever. Every value the
 * gateway stores passes through here first: both are replaced by U+FFFD, the replacement
 * character, the same way everywhere (ledger, memory, keys, reports).
 */

// NUL, or any surrogate: a cheap pre-test (paired surrogates, e.g. emoji, then pass isWellFormed).
// eslint-disable-next-line no-control-regex -- NUL is what this looks for
const SUSPECT = /[\u0000\ud800-\udfff]/;

/** A string Postgres will store: NUL and unpaired surrogates become U+FFFD. */
export function storableText(s: string): string {
  if (!SUSPECT.test(s)) return s;
  return (s as string & { toWellFormed(): string }).toWellFormed().replaceAll('\u0000', '\uFFFD');
}

/** `storableText` for nullable text columns. */
export function storableOrNull(s: string | null | undefined): string | null {
  return s === null || s === undefined ? null : storableText(String(s));
}

/** Whether a string would be changed by `storableText`. */
export function needsStorable(s: string): boolean {
  return SUSPECT.test(s) && (s.includes('\u0000') || !(s as string & { isWellFormed(): boolean }).isWellFormed());
}

/**
 * A JSON-like value made storable everywhere: strings and object keys. Returns the input itself
 * when nothing needed changing (no copy on the common path). Iterative, so depth cannot overflow
 * the stack (request bodies are depth-limited before this anyway).
 */
export function storableDeep<T>(value: T): T {
  if (typeof value === 'string') return storableText(value) as T;
  if (value === null || typeof value !== 'object') return value;
  if (!hasSuspect(value)) return value;
  return rebuild(value) as T;
}

function hasSuspect(root: object): boolean {
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (needsStorable(v)) return true;
    } else if (v && typeof v === 'object') {
      if (Array.isArray(v)) for (const x of v) stack.push(x);
      else
        for (const k of Object.keys(v)) {
          if (needsStorable(k)) return true;
          stack.push((v as Record<string, unknown>)[k]);
        }
    }
  }
  return false;
}

function rebuild(v: unknown): unknown {
  if (typeof v === 'string') return storableText(v);
  if (!v || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(rebuild);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const key = storableText(k);
    const value = rebuild((v as Record<string, unknown>)[k]);
    if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out;
}
