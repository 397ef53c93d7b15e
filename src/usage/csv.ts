/**
 * RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they hold , " CR or LF. Text that
 * a spreadsheet would run as a formula (model names come from clients) gets a leading apostrophe.
 */
export function toCsv(columns: string[], rows: Record<string, unknown>[]): string {
  const field = (v: unknown) => {
    let s = v === null || v === undefined ? '' : String(v);
    if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [columns.map(field).join(','), ...rows.map((r) => columns.map((c) => field(r[c])).join(','))].join('\r\n') + '\r\n';
}
