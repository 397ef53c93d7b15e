import type { ModelInfo } from '../catalog/catalog.js';
import { countMessageTokens, countTextTokens } from '../tokens/count-tokens.js';
import { priceTimes } from './decimal.js';

/**
 * Output reserved for a chat request that names no `max_completion_tokens` / `max_tokens`
 * (less when the model's catalog maximum or its context window leaves less room). A reply longer
 * than this is still billed in full when the request settles; only the reservation is short.
 */
export const DEFAULT_OUTPUT_TOKENS = 1024;

/** Most choices (`n`) a request may ask for, as OpenAI allows. */
const MAX_CHOICES = 128;

export interface RequestEstimate {
  promptTokens: number;
  /** The most output the request may produce (all choices). */
  outputTokens: number;
  totalTokens: number;
  /** Money in scaled units at the catalog's prices; 0 when the model has no catalog price. */
  costUnits: bigint;
  priced: boolean;
}

const positiveInt = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);

/**
 * What a request may cost before it runs, for reservations: the prompt counted with the tokenizer
 * (chat: messages and tool definitions; embeddings: the input), plus the output it asked for or
 * DEFAULT_OUTPUT_TOKENS, capped by what the model can produce, at the catalog's prices. The
 * tokenizer is exact for OpenAI models and close for others; the actual figures replace the
 * estimate when the request settles.
 */
export function estimateRequest(body: Record<string, unknown>, model: ModelInfo | undefined): RequestEstimate {
  let prompt: number;
  let output = 0;
  if (Array.isArray(body.messages)) {
    prompt = countMessageTokens(body.messages);
    if (Array.isArray(body.tools) && body.tools.length > 0) prompt += countTextTokens(JSON.stringify(body.tools));
    output = positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens) ?? DEFAULT_OUTPUT_TOKENS;
    if (model?.maxCompletionTokens) output = Math.min(output, model.maxCompletionTokens);
    if (model?.contextLength) output = Math.min(output, Math.max(1, model.contextLength - prompt));
    output *= Math.min(MAX_CHOICES, positiveInt(body.n) ?? 1);
  } else {
    prompt = inputTokens(body.input);
  }
  const priced = !!model && (model.promptPrice !== null || model.completionPrice !== null);
  const costUnits = model ? priceTimes(model.promptPrice, prompt) + priceTimes(model.completionPrice, output) : 0n;
  return { promptTokens: prompt, outputTokens: output, totalTokens: prompt + output, costUnits, priced };
}

/** Tokens of an embeddings input: a string, strings, or already tokenized arrays. */
function inputTokens(input: unknown): number {
  if (typeof input === 'string') return countTextTokens(input);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) {
    if (typeof item === 'string') n += countTextTokens(item);
    else if (typeof item === 'number') n += 1;
    else if (Array.isArray(item)) n += item.length;
  }
  return n;
}
