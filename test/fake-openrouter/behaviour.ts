// Deterministic "model" behaviour: what the fake replies and how it counts tokens and cost.
// Exported so tests can predict exactly what the fake (and a faithful gateway) must report.

import { randomBytes } from 'node:crypto';

/** The `fake` control object a test may put in a request body (chat, responses, completions). */
export interface FakeControl {
  mode?: string;
  delayMs?: number;
  status?: number;
  retryAfter?: string;
  chunks?: number;
  failTimes?: number;
  key?: string;
  reply?: string;
  errorCode?: string | number;
  toolArgs?: string | Record<string, unknown>;
  usageShape?: 'empty_delta' | 'empty_choices' | 'no_choices';
  /** Report usage without `cost` (as upstreams other than OpenRouter do). */
  noCost?: boolean;
  /** Models treated as down: with a `models` fallback list the next one is served, as OpenRouter does. */
  unavailable?: string[];
}

export const UTF8_DEFAULT_REPLY = 'héllo wörld 你好 🎉';
export const DEFAULT_TOOL_ARGS = '{"city":"Paris","unit":"c"}';

export function controlOf(body: any): FakeControl {
  return body && typeof body.fake === 'object' && body.fake !== null ? body.fake : {};
}

/** Text of a message content that may be a string or an array of `{type:"text", text}` parts. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((p) => (p && typeof p === 'object' && typeof p.text === 'string' ? p.text : '')).join('');
  }
  return '';
}

export function replyFor(body: any): string {
  const fake = controlOf(body);
  if (typeof fake.reply === 'string') return fake.reply;
  if (fake.mode === 'utf8_split') return UTF8_DEFAULT_REPLY;
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  let lastUser = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') {
      lastUser = i;
      break;
    }
  }
  const question = lastUser >= 0 ? textOf(messages[lastUser].content) : '';
  if (messages[0]?.role === 'system' && /running summary/i.test(textOf(messages[0].content))) {
    // A summarizer call: answer like a terse model would, keeping names, numbers and dates.
    const facts = question.match(/\b(?:[A-Z][a-z]+|\d[\d-]*)\b/g) ?? [];
    return `Summary: ${[...new Set(facts)].slice(0, 40).join(', ')}.`;
  }
  if (/what is my name/i.test(question)) {
    // Memory probe: a gateway that keeps thread history will have put the name in an earlier message.
    for (let i = 0; i < lastUser; i++) {
      const m = /my name is (\w+)/i.exec(textOf(messages[i]?.content));
      if (m) return `Your name is ${m[1]}.`;
    }
    return 'I do not know your name.';
  }
  return `You said: ${question}`;
}

/** Split text into word pieces that concatenate back to it; one piece = one streamed chunk = one token. */
export function piecesOf(text: string): string[] {
  if (text === '') return [];
  return text.match(/\s*\S+\s*/g) ?? [text];
}

/** Split tool-call arguments into at least 3 pieces, as providers stream them in fragments. */
export function argPiecesOf(args: string): string[] {
  const size = Math.max(1, Math.ceil(args.length / 4));
  const out: string[] = [];
  for (let i = 0; i < args.length; i += size) out.push(args.slice(i, i + size));
  return out;
}

export interface ToolCallPlan {
  id: string;
  name: string;
  arguments: string;
}

/** The arguments of the fake's tool call: `fake.toolArgs` (a string or an object to serialize), or DEFAULT_TOOL_ARGS. */
export function toolArgsOf(fake: FakeControl): string {
  if (fake.toolArgs === undefined) return DEFAULT_TOOL_ARGS;
  return typeof fake.toolArgs === 'string' ? fake.toolArgs : JSON.stringify(fake.toolArgs);
}

export function toolCallFor(body: any): ToolCallPlan {
  const name = body?.tools?.[0]?.function?.name ?? 'get_weather';
  return { id: `call_${randomId(24)}`, name, arguments: toolArgsOf(controlOf(body)) };
}

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
  is_byok: boolean;
  prompt_tokens_details: { cached_tokens: number };
  cost_details: { upstream_inference_cost: null };
  completion_tokens_details: { reasoning_tokens: number };
}

export function promptTokensOf(body: any): number {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const chars = messages.reduce((n, m) => n + textOf(m?.content).length, 0);
  return Math.ceil(chars / 4) + 3 * messages.length;
}

export function completionTokensOf(body: any): number {
  const fake = controlOf(body);
  if (fake.mode === 'tool_calls') return argPiecesOf(toolArgsOf(fake)).length;
  return piecesOf(replyFor(body)).length;
}

/**
 * Cost at a flat 150 nano-USD per prompt token and 600 per completion token.
 * Computing in integer nanodollars and dividing once gives the correctly rounded double for a
 * ≤10-digit decimal, which JSON.stringify prints exactly (0.00001234, never 0.000012340000000001).
 */
export function costOf(promptTokens: number, completionTokens: number): number {
  const nanodollars = promptTokens * 150 + completionTokens * 600;
  return nanodollars / 1e9;
}

/** The exact `usage` object the fake reports for a successful chat request with this body. */
export function expectedUsage(body: any): FakeUsage {
  return usageOf(promptTokensOf(body), completionTokensOf(body), controlOf(body));
}

/** OpenRouter's chat-style `usage` (chat and legacy completions) for these token counts. */
export function usageOf(prompt: number, completion: number, fake: FakeControl): FakeUsage {
  const usage: FakeUsage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    cost: costOf(prompt, completion),
    is_byok: false,
    prompt_tokens_details: { cached_tokens: 0 },
    cost_details: { upstream_inference_cost: null },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
  if (fake.noCost) delete (usage as Partial<FakeUsage>).cost;
  return usage;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomId(length: number): string {
  const bytes = randomBytes(length);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % ALPHABET.length];
  return s;
}

/** OpenRouter generation ids look like `gen-<unix seconds>-<random>`. */
export function generationId(created: number): string {
  return `gen-${created}-${randomId(20)}`;
}

/** 8 deterministic floats in [-1, 1) derived from the input text (FNV-1a seeded LCG). */
export function embeddingOf(text: string): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const out: number[] = [];
  for (let i = 0; i < 8; i++) {
    h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
    out.push(Math.round((h / 2 ** 31 - 1) * 1e6) / 1e6);
  }
  return out;
}

/** An embedding model whose vectors carry meaning a test can rely on (see conceptEmbeddingOf). */
export const CONCEPT_MODEL = 'fake/concept-embed';

// Words that mean related things share a concept; every other word hashes to a concept of its own.
const CONCEPTS: Record<string, string> = {};
for (const [concept, words] of Object.entries({
  food: [
    'eat',
    'eating',
    'food',
    'foods',
    'allergic',
    'allergy',
    'allergies',
    'peanut',
    'peanuts',
    'shellfish',
    'kiwi',
    'sesame',
    'meal',
    'diet',
    'cannot',
    "can't",
  ],
  pet: ['dog', 'dogs', 'puppy', 'pet', 'beagle', 'collie', 'poodle', 'husky', 'terrier', 'breed'],
  travel: ['flight', 'fly', 'gate', 'airport', 'plane', 'depart', 'departs', 'boarding'],
  music: ['band', 'music', 'song', 'songs', 'listen', 'album'],
}))
  for (const w of words) CONCEPTS[w] = concept;
const STOP = new Set([
  'the',
  'a',
  'an',
  'is',
  'are',
  'to',
  'of',
  'and',
  'i',
  'my',
  'me',
  'in',
  'on',
  'so',
  'that',
  'there',
  'anything',
  'or',
  'keep',
  'mind',
  'what',
  'do',
  'does',
  'take',
  'by',
  'way',
]);

/** 32 dims: a bag of concepts (related words in one bucket), so "Is there anything I cannot eat?" lands near "I'm allergic to peanuts". */
export function conceptEmbeddingOf(text: string): number[] {
  const v = new Array<number>(32).fill(0);
  for (const raw of text.toLowerCase().match(/[a-z']+/g) ?? []) {
    if (STOP.has(raw)) continue;
    const concept = CONCEPTS[raw] ?? raw;
    let h = 0x811c9dc5;
    for (let i = 0; i < concept.length; i++) h = Math.imul(h ^ concept.charCodeAt(i), 0x01000193) >>> 0;
    v[h % 32] += CONCEPTS[raw] ? 3 : 1;
  }
  return v;
}
