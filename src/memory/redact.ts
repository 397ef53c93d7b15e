/**
 * Secret redaction for thread memory. Runs on every stored message, so every pattern is linear:
 * no nested quantifiers over the same character class, group separators are mandatory where groups
 * repeat, and a cheap trigger test skips the regex pass entirely for text that cannot contain a hit.
 */

export interface RedactOptions {
  /** Also redact e-mail addresses (off by default: addresses are often the point of a conversation). */
  emails?: boolean;
}

export interface RedactResult {
  text: string;
  count: number;
  /** Distinct kinds found, in the order the rules ran, e.g. `['openai_key', 'card']`. */
  kinds: string[];
}

interface Rule {
  /** Cheap pre-check; the rule's regex only runs when this matches. */
  hint: RegExp;
  pattern: RegExp;
  /** The replacement for one match, or null to leave that match as it is (a near-miss). */
  replace: (match: string, groups: (string | undefined)[]) => { text: string; kind: string } | null;
}

const tag = (kind: string) => `[REDACTED:${kind}]`;
const whole = (kind: string) => () => ({ text: tag(kind), kind });

/** Characters that may continue a token; a key must not start in the middle of a longer word. */
const NOT_AFTER_TOKEN = '(?<![A-Za-z0-9_-])';

function providerKeyKind(key: string): string {
  if (key.startsWith('sk-ant-')) return 'anthropic_key';
  if (key.startsWith('sk-or-')) return 'openrouter_key';
  return 'openai_key';
}

/** Luhn checksum over a string of digits. */
function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Luhn alone passes one in ten random digit runs, so require an issuer prefix as well: 3–6 (Amex, Diners,
 * JCB, Visa, Mastercard, Discover, UnionPay, Maestro) or Mastercard's 2221–2720. This keeps millisecond
 * timestamps (1…), compact dates (20…) and most order ids out.
 */
function plausibleCard(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  const first = digits[0];
  const issuer = (first >= '3' && first <= '6') || (Number(digits.slice(0, 4)) >= 2221 && Number(digits.slice(0, 4)) <= 2720);
  return issuer && luhnValid(digits);
}

/** Bearer "tokens" that are really prose, e.g. "bearer token-based-authentication". */
const PROSE_WORD = /^[a-z]+(?:-[a-z]+)*$/;

// Order matters: specific formats run before the generic bearer rule, so "Bearer sk-…" is reported as
// openai_key, and a placeholder (which contains '[' and ':') can never be matched by a later rule.
const RULES: Rule[] = [
  {
    // An unterminated block (e.g. a truncated paste) is redacted to the end of the text: still a secret.
    hint: /PRIVATE KEY-----/,
    pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
    replace: whole('private_key'),
  },
  {
    // sk-…, sk-proj-…, sk-svcacct-…, sk-or-v1-…, sk-ant-…: all share one shape, the prefix names the provider.
    hint: /sk-/,
    pattern: new RegExp(`${NOT_AFTER_TOKEN}sk-[A-Za-z0-9_-]{20,}`, 'g'),
    replace: (m) => ({ text: tag(providerKeyKind(m)), kind: providerKeyKind(m) }),
  },
  {
    hint: /gh[pousr]_|github_pat_/,
    pattern: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/g,
    replace: whole('github_token'),
  },
  {
    hint: /A[KS]IA/,
    pattern: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
    replace: whole('aws_access_key'),
  },
  {
    hint: /xox[baprs]-/,
    pattern: new RegExp(`${NOT_AFTER_TOKEN}xox[baprs]-[A-Za-z0-9-]{10,}`, 'g'),
    replace: whole('slack_token'),
  },
  {
    // Segments exclude '.', so the three parts split one way only.
    hint: /eyJ/,
    pattern: new RegExp(`${NOT_AFTER_TOKEN}eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}`, 'g'),
    replace: whole('jwt'),
  },
  {
    // Our own keys are cmg_ + 43 base64url chars; longer runs are redacted too rather than half-leaked.
    hint: /cmg_/,
    pattern: new RegExp(`${NOT_AFTER_TOKEN}cmg_[A-Za-z0-9_-]{43,}`, 'g'),
    replace: whole('cmg_key'),
  },
  {
    // Keep the word "Bearer " so the text still reads as an Authorization header.
    hint: /bearer/i,
    pattern: new RegExp(`${NOT_AFTER_TOKEN}(bearer[ \\t]+)([A-Za-z0-9._~+/=-]{16,})`, 'gi'),
    replace: (_m, [prefix, token]) => (PROSE_WORD.test(token!) ? null : { text: prefix + tag('bearer_token'), kind: 'bearer_token' }),
  },
  {
    // Either one unbroken run, or groups (first of four digits) joined by one consistent separator.
    // The lookarounds refuse runs that continue into letters, decimals, '+' (phone numbers) or more groups.
    hint: /\d{4}/,
    pattern: /(?<![\w.+-]|\d[ -])(?:\d{13,19}(?!\w|[.-]\d)|\d{4}([ -])\d{2,6}(?:\1\d{1,6}){1,3}(?!\w|[ .-]\d))/g,
    replace: (m) => (plausibleCard(m.replace(/[ -]/g, '')) ? { text: tag('card'), kind: 'card' } : null),
  },
];

const EMAIL_RULE: Rule = {
  hint: /@/,
  pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])/g,
  replace: whole('email'),
};

/** One test for the whole rule set, so ordinary prose pays for a single scan. */
const ANY_TRIGGER = /sk-|gh[pousr]_|github_pat_|A[KS]IA|xox[baprs]-|eyJ|cmg_|bearer|PRIVATE KEY|\d{4}/i;

/** Replaces secrets in text with `[REDACTED:<kind>]` before anything is stored. */
export function redactSecrets(text: string, opts: RedactOptions = {}): RedactResult {
  const rules = opts.emails ? [...RULES, EMAIL_RULE] : RULES;
  if (!ANY_TRIGGER.test(text) && !(opts.emails && text.includes('@'))) return { text, count: 0, kinds: [] };

  let count = 0;
  const kinds: string[] = [];
  let out = text;
  for (const rule of rules) {
    if (!rule.hint.test(out)) continue;
    out = out.replace(rule.pattern, (match: string, ...rest: unknown[]) => {
      // replace() passes capture groups, then offset, input (and named groups when present).
      const groups = rest.slice(0, -2) as (string | undefined)[];
      const hit = rule.replace(match, groups);
      if (!hit) return match;
      count++;
      if (!kinds.includes(hit.kind)) kinds.push(hit.kind);
      return hit.text;
    });
  }
  return { text: out, count, kinds };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Applies redactSecrets to every string inside a JSON-like value (message content parts, tool call
 * arguments), returning a new value and the total count. Object keys are left alone (they are schema,
 * not user data); non-plain objects such as Dates and Buffers are passed through as they are.
 */
export function redactDeep<T>(value: T, opts?: RedactOptions): { value: T; count: number } {
  let count = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const r = redactSecrets(v, opts);
      count += r.count;
      return r.text;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) {
      const copy: Record<string, unknown> = {};
      for (const [k, child] of Object.entries(v)) copy[k] = walk(child);
      return copy;
    }
    return v;
  };
  const redacted = walk(value) as T;
  return { value: redacted, count };
}
