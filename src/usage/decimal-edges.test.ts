import { describe, expect, it } from 'vitest';
import { formatDecimal, normalizeDecimal, parseDecimal, priceTimes } from './decimal.js';

describe('decimal money: edges', () => {
  it('parses with surrounding spaces, and refuses anything not a plain non-negative decimal', () => {
    expect(formatDecimal(parseDecimal(' 1.5 '))).toBe('1.5');
    for (const bad of ['', '-1', '1.', '.5', '1e-7', 'x1', '1x', '1.2.3'])
      expect(() => parseDecimal(bad), bad).toThrow(`not a decimal: ${bad}`);
  });

  it('keeps exactly ten fractional digits, rounding half up beyond them', () => {
    expect(formatDecimal(parseDecimal('0.1234567890'))).toBe('0.123456789');
    expect(formatDecimal(parseDecimal('1.12345678904'))).toBe('1.123456789');
    expect(formatDecimal(parseDecimal('1.12345678905'))).toBe('1.1234567891');
    expect(formatDecimal(parseDecimal('2.99999999999'))).toBe('3');
    expect(parseDecimal('1')).toBe(10_000_000_000n);
    expect(parseDecimal('0.0000000001')).toBe(1n);
  });

  it('formats negative amounts (a budget overspent) and zero', () => {
    expect(formatDecimal(-15_000_000_000n)).toBe('-1.5');
    expect(formatDecimal(-1n)).toBe('-0.0000000001');
    expect(formatDecimal(0n)).toBe('0');
    expect(formatDecimal(120_000_000_000n)).toBe('12');
  });

  it('prices tokens exactly, rounding half up once at ten places', () => {
    expect(priceTimes('0.00000015', 1234)).toBe(parseDecimal('0.0001851'));
    expect(priceTimes(' 0.5 ', 3)).toBe(parseDecimal('1.5'));
    expect(priceTimes('2', 3)).toBe(parseDecimal('6'));
    expect(priceTimes('0.0000000000125', 2)).toBe(parseDecimal('0.0000000000')); // 2.5e-11 rounds to 0
    expect(priceTimes('0.0000000000125', 4)).toBe(1n); // 5e-11 rounds half up to 1e-10
    expect(priceTimes('0.00000000001', 4)).toBe(0n); // 4e-11 rounds down
    expect(priceTimes('0.000000000015', 10)).toBe(2n); // 1.5e-10 → 2e-10
    expect(priceTimes('0.00000000001', 14)).toBe(1n); // 1.4e-10 → 1e-10
  });

  it('prices nothing for no price, no tokens, or a price that is not a decimal', () => {
    expect(priceTimes(null, 100)).toBe(0n);
    expect(priceTimes('', 100)).toBe(0n);
    expect(priceTimes('0.001', 0)).toBe(0n);
    expect(priceTimes('0.001', -5)).toBe(0n);
    expect(priceTimes('-0.001', 5)).toBe(0n);
    expect(priceTimes('1e-6', 5)).toBe(0n);
    expect(priceTimes('0.001x', 5)).toBe(0n);
    expect(priceTimes('x0.001', 5)).toBe(0n);
    expect(priceTimes('0.', 5)).toBe(0n);
  });

  it('normalizes database text, empty meaning zero', () => {
    expect(normalizeDecimal('')).toBe('0');
    expect(normalizeDecimal(undefined)).toBe('0');
    expect(normalizeDecimal('12.5000000000')).toBe('12.5');
  });
});
