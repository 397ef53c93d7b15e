/** RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they hold , " CR or LF. */
export function toCsv(columns: string[], rows: Record<string, unknown>[]): string {
  const field = (v: unknown) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [columns.map(field).join(','), ...rows.map((r) => columns.map((c) => field(r[c])).join(','))].join('\r\n') + '\r\n';
}
