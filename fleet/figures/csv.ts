/**
 * CSV as RFC 4180 says: fields separated by commas, lines ended by CRLF, a
 * header line first; a field holding a comma, a double quote, CR or LF (or
 * starting or ending with a space) is enclosed in double quotes, with each
 * double quote inside doubled. Null and undefined are empty fields. Values
 * are written as they are (no spreadsheet-formula escaping: numbers such as
 * +15551234567 stay exact).
 */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(fields: readonly unknown[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

export function csvDocument(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return csvLine(header) + rows.map(csvLine).join('');
}
