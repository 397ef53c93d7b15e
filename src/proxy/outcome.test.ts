import { describe, expect, it } from 'vitest';
import { parseUsage } from './outcome.js';

describe('parseUsage', () => {
  it('keeps the cost as exact decimal text, expanding exponent notation', () => {
    expect(parseUsage({ prompt_tokens: 1, completion_tokens: 2, cost: 0.0000033 })?.cost).toBe('0.0000033');
    expect(parseUsage({ cost: 1.5e-7 })?.cost).toBe('0.00000015');
    expect(parseUsage({ cost: 12.25 })?.cost).toBe('12.25');
    expect(parseUsage({ cost: 1e21 })?.cost).toBe('1000000000000000000000');
    expect(parseUsage({ cost: '0.10' })?.cost).toBe('0.10');
    expect(parseUsage({ cost: -1 })?.cost).toBeNull();
    expect(parseUsage({})?.cost).toBeNull();
  });

  it('reads OpenRouter token details and fills the total', () => {
    expect(
      parseUsage({
        prompt_tokens: 10,
        completion_tokens: 4,
        prompt_tokens_details: { cached_tokens: 3 },
        completion_tokens_details: { reasoning_tokens: 2 },
      }),
    ).toEqual({ promptTokens: 10, completionTokens: 4, totalTokens: 14, cachedTokens: 3, reasoningTokens: 2, cost: null });
    expect(parseUsage(null)).toBeNull();
  });
});
