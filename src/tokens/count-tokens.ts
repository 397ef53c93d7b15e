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
    total += 3 + countTextTokens(contentText(msg.content)) + mediaTokens(msg.content);
    if (typeof msg.name === 'string') total += 1 + countTextTokens(msg.name);
    if (Array.isArray(msg.tool_calls)) total += countTextTokens(JSON.stringify(msg.tool_calls));
  }
  return total;
}

/**
 * Images in a message, as OpenAI's vision models bill them without the image's size at hand:
 * `detail: "low"` is 85 tokens, anything else a typical high-detail image (a 1024×1024 picture:
 * 85 + 4 tiles × 170 = 765). Audio and files count as their text would not: a flat 200 each.
 */
export function mediaTokens(content: unknown): number {
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const part of content) {
    if (!part || typeof part !== 'object') continue;
    const type = (part as { type?: unknown }).type;
    if (type === 'image_url' || type === 'input_image') {
      const image = (part as { image_url?: unknown }).image_url;
      const detail =
        (part as { detail?: unknown }).detail ?? (image && typeof image === 'object' ? (image as { detail?: unknown }).detail : undefined);
      total += detail === 'low' ? 85 : 765;
    } else if (type === 'input_audio' || type === 'file' || type === 'input_file') {
      total += 200;
    }
  }
  return total;
}
