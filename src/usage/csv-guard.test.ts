import { describe, expect, it } from 'vitest';
import { toCsv } from './csv.js';

/** One text cell through toCsv, without the header and line end. */
const cell = (value: unknown) => toCsv(['v'], [{ v: value }]).slice('v\r\n'.length, -2);

// Model names, key names and workspace names come from clients; a spreadsheet runs a cell that
// starts with = + - @ (and, in some, a tab or CR before one) as a formula (OWASP "CSV injection").
describe('CSV formula guard', () => {
  it.each([
    ['=1+2', "'=1+2"],
    ['+1+2', "'+1+2"],
    ['+SUM(A1:A9)', "'+SUM(A1:A9)"],
    ['-cmd', "'-cmd"],
    ['-1+2', "'-1+2"],
    ['-2-3', "'-2-3"],
    ['-1.5e3', "'-1.5e3"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1+2', "'\t=1+2"],
  ])('prefixes %j with an apostrophe', (input, output) => {
    expect(cell(input)).toBe(output);
  });

  it('a leading CR is defused and, being a line break, quoted', () => {
    expect(cell('\r=1+2')).toBe(`"'\r=1+2"`);
  });

  it('keeps numbers, negative ones included, and text that starts harmlessly', () => {
    for (const keep of ['-1', '-1.5', '-0.0000001', '12', '0.5', 'openai/gpt-4o-mini', 'a=b', 'x-1', ' -1']) {
      expect(cell(keep), JSON.stringify(keep)).toBe(keep);
    }
    expect(cell(-2)).toBe('-2');
    expect(cell(-1.25)).toBe('-1.25');
  });

  it('quotes the defused text like any other when it holds a comma or quote', () => {
    expect(cell('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(cell('-a,b')).toBe(`"'-a,b"`);
  });

  it('writes null and undefined as empty cells', () => {
    expect(toCsv(['a', 'b', 'c'], [{ a: null, b: undefined, c: 0 }])).toBe('a,b,c\r\n,,0\r\n');
  });
});
