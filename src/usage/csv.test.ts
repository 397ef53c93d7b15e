import { describe, expect, it } from 'vitest';
import { toCsv } from './csv.js';

describe('toCsv', () => {
  it('writes RFC 4180: header, CRLF, quoting of commas, quotes and newlines', () => {
    const csv = toCsv(
      ['a', 'b'],
      [
        { a: 'plain', b: 1 },
        { a: 'with,comma', b: 'say "hi"' },
        { a: 'two\nlines', b: null },
      ],
    );
    expect(csv).toBe('a,b\r\nplain,1\r\n"with,comma","say ""hi"""\r\n"two\nlines",\r\n');
  });

  it('defuses spreadsheet formulas in text but keeps negative numbers', () => {
    const csv = toCsv(
      ['model', 'n'],
      [
        { model: '=HYPERLINK("x")', n: '-1.5' },
        { model: '@SUM(A1)', n: -2 },
      ],
    );
    expect(csv).toBe('model,n\r\n"\'=HYPERLINK(""x"")",-1.5\r\n\'@SUM(A1),-2\r\n');
  });
});
