import { createRequire } from 'node:module';

// The encoder's tables take ~70 MB: loaded on first use (memory, usage estimates), not at start.
const require = createRequire(import.meta.url);
let encoder: { countTokens(text: string): number } | undefined;
const countTokens = (text: string) => (encoder ??= require('gpt-tokenizer/encoding/o200k_base')).countTokens(text);

/**
 * Token counts with a real tokenizer (OpenAI's o200k_base). Exact for recent OpenAI models, an
 * estimate for others: callers that must not overshoot a context window add a margin.
 */
export function countTextTokens(text: string): number {
  return text ? countTokens(text) : 0;
}

/** Text of a message's content, whether a string or an array of parts. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part && typeof part === 'object' && typeof part.text === 'string' ? part.text : '')).join('');
  }
  return '';
}

/**
 * Tokens of a chat request's messages as OpenAI counts them: each message costs its content and
 * name plus 3 tokens of framing, tool calls their JSON, and the reply is primed with 3 more.
 */
export function countMessageTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let total = 3;
  for (const m of messages) {
    if (!m || typeof m !== 'object') continue;
    const msg = m as Record<string, unknown>;
    total += 3 + countTextTokens(contentText(msg.content));
    if (typeof msg.name === 'string') total += 1 + countTextTokens(msg.name);
    if (Array.isArray(msg.tool_calls)) total += countTextTokens(JSON.stringify(msg.tool_calls));
  }
  return total;
}
