/**
 * Exact decimal arithmetic for money, on BigInt with a fixed scale of 10 fractional digits (the
 * ledger's numeric scale). Floats never touch a stored amount.
 */
export const SCALE = 10;
const FACTOR = 10n ** BigInt(SCALE);

/** Parses a non-negative decimal string ("0.00000015", "12", "1.5") into scaled units, rounding half up. */
export function parseDecimal(text: string): bigint {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) throw new Error(`not a decimal: ${text}`);
  const [, whole, frac = ''] = match;
  let units = BigInt(whole) * FACTOR;
  if (frac.length <= SCALE) return units + BigInt(frac.padEnd(SCALE, '0') || '0');
  units += BigInt(frac.slice(0, SCALE));
  return frac[SCALE] >= '5' ? units + 1n : units;
}

/** Scaled units back to the shortest exact decimal text ("0.0000033", "12", "0"). */
export function formatDecimal(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const whole = abs / FACTOR;
  const frac = (abs % FACTOR).toString().padStart(SCALE, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/** price (USD per token, decimal text) × tokens, exactly. */
export function priceTimes(price: string | null, tokens: number): bigint {
  if (!price || tokens <= 0) return 0n;
  const match = /^(\d+)(?:\.(\d+))?$/.exec(price.trim());
  if (!match) return 0n;
  const [, whole, frac = ''] = match;
  // Multiply at full precision first, then round once to the ledger's scale.
  const exact = BigInt(whole + frac) * BigInt(tokens);
  const digits = frac.length;
  if (digits <= SCALE) return exact * 10n ** BigInt(SCALE - digits);
  const divisor = 10n ** BigInt(digits - SCALE);
  const q = exact / divisor;
  return (exact % divisor) * 2n >= divisor ? q + 1n : q;
}

/** Normalizes a decimal text from the database ("0.0000330000") to its shortest exact form. */
export function normalizeDecimal(text: string | null | undefined): string {
  if (text === null || text === undefined || text === '') return '0';
  return formatDecimal(parseDecimal(text));
}
