import { describe, expect, it } from 'vitest';
import { formatDecimal, normalizeDecimal, parseDecimal, priceTimes } from './decimal.js';

describe('decimal money', () => {
  it('round-trips exact decimals', () => {
    for (const s of ['0', '1', '0.0000033', '12.25', '0.0000000001', '123456789.1234567891']) {
      expect(formatDecimal(parseDecimal(s))).toBe(s);
    }
    expect(normalizeDecimal('0.0000330000')).toBe('0.000033');
    expect(normalizeDecimal(null)).toBe('0');
  });

  it('sums without float drift', () => {
    const tenths = Array.from({ length: 1000 }, () => parseDecimal('0.1')).reduce((a, b) => a + b, 0n);
    expect(formatDecimal(tenths)).toBe('100');
    expect(0.1 * 3).not.toBe(0.3); // what floats would have done
    expect(formatDecimal(parseDecimal('0.1') * 3n)).toBe('0.3');
  });

  it('multiplies per-token prices exactly, rounding half up at ten places only when needed', () => {
    expect(formatDecimal(priceTimes('0.00000015', 7))).toBe('0.00000105');
    expect(formatDecimal(priceTimes('0.0000006', 1_000_000))).toBe('0.6');
    expect(formatDecimal(priceTimes('0.000000000015', 3))).toBe('0');
    expect(formatDecimal(priceTimes('0.000000000015', 4))).toBe('0.0000000001');
    expect(priceTimes(null, 10)).toBe(0n);
    expect(priceTimes('abc', 10)).toBe(0n);
  });

  it('rounds overlong fractions half up when parsing', () => {
    expect(formatDecimal(parseDecimal('0.00000000005'))).toBe('0.0000000001');
    expect(formatDecimal(parseDecimal('0.00000000004'))).toBe('0');
  });
});
