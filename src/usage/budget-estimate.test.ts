import { describe, expect, it } from 'vitest';
import type { ModelInfo } from '../catalog/catalog.js';
import { countMessageTokens, countTextTokens } from '../tokens/count-tokens.js';
import { DEFAULT_OUTPUT_TOKENS, estimateRequest } from './budget-estimate.js';
import { parseDecimal } from './decimal.js';

const mini: ModelInfo = {
  id: 'openai/gpt-4o-mini',
  contextLength: 128_000,
  maxCompletionTokens: 16_384,
  promptPrice: '0.00000015',
  completionPrice: '0.0000006',
};
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is the capital of France?' },
];

describe('request estimate', () => {
  it('counts the prompt and prices the requested output at catalog prices, exactly', () => {
    const prompt = countMessageTokens(messages);
    const e = estimateRequest({ model: mini.id, messages, max_tokens: 100 }, mini);
    expect(e).toMatchObject({ promptTokens: prompt, outputTokens: 100, totalTokens: prompt + 100, priced: true });
    expect(e.costUnits).toBe(parseDecimal('0.00000015') * BigInt(prompt) + parseDecimal('0.0000006') * 100n);
    // max_completion_tokens wins over the legacy max_tokens; n choices multiply the output.
    expect(estimateRequest({ messages, max_tokens: 100, max_completion_tokens: 7, n: 3 }, mini).outputTokens).toBe(21);
  });

  it('reserves a default output when none is asked for, capped by the model', () => {
    expect(estimateRequest({ messages }, mini).outputTokens).toBe(DEFAULT_OUTPUT_TOKENS);
    const small: ModelInfo = { ...mini, contextLength: 600, maxCompletionTokens: 200 };
    expect(estimateRequest({ messages }, small).outputTokens).toBe(200);
    const tight: ModelInfo = { ...mini, contextLength: countMessageTokens(messages) + 50, maxCompletionTokens: null };
    expect(estimateRequest({ messages, max_tokens: 4000 }, tight).outputTokens).toBe(50);
    // Junk limits are ignored, not trusted.
    expect(estimateRequest({ messages, max_tokens: -5 }, mini).outputTokens).toBe(DEFAULT_OUTPUT_TOKENS);
    expect(estimateRequest({ messages, max_tokens: '9' }, mini).outputTokens).toBe(DEFAULT_OUTPUT_TOKENS);
  });

  it('counts tool definitions into the prompt', () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    ];
    const plain = estimateRequest({ messages, max_tokens: 1 }, mini).promptTokens;
    expect(estimateRequest({ messages, tools, max_tokens: 1 }, mini).promptTokens).toBe(plain + countTextTokens(JSON.stringify(tools)));
  });

  it('counts embeddings input (strings or token arrays) with no output', () => {
    const emb: ModelInfo = { id: 'e', contextLength: 8192, maxCompletionTokens: null, promptPrice: '0.00000002', completionPrice: '0' };
    const one = estimateRequest({ input: 'hello embeddings world' }, emb);
    expect(one).toMatchObject({ promptTokens: countTextTokens('hello embeddings world'), outputTokens: 0 });
    expect(one.costUnits).toBe(parseDecimal('0.00000002') * BigInt(one.promptTokens));
    expect(estimateRequest({ input: ['a b', 'c d'] }, emb).promptTokens).toBe(countTextTokens('a b') + countTextTokens('c d'));
    expect(estimateRequest({ input: [[1, 2, 3], [4]] }, emb).promptTokens).toBe(4);
    expect(estimateRequest({ input: [5, 6, 7] }, emb).promptTokens).toBe(3);
  });

  it('an unknown model costs nothing to reserve but still counts its tokens', () => {
    const e = estimateRequest({ messages, max_tokens: 10 }, undefined);
    expect(e).toMatchObject({ priced: false, costUnits: 0n, outputTokens: 10 });
    expect(e.totalTokens).toBeGreaterThan(10);
  });
});
