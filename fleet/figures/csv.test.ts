import { describe, expect, it } from 'vitest';
import { csvDocument, csvField, csvLine } from './csv.js';

describe('CSV (RFC 4180)', () => {
  it('quotes a field holding a comma, a double quote, CR or LF, or edge spaces, and doubles inner quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField(' padded')).toBe('" padded"');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    expect(csvField(0)).toBe('0');
    expect(csvField('+15551234567')).toBe('+15551234567');
    expect(csvField({ callId: 'c1', n: 'a,b' })).toBe('"{""callId"":""c1"",""n"":""a,b""}"');
  });

  it('ends every line with CRLF, header first', () => {
    expect(csvLine(['a', 'b,c', null])).toBe('a,"b,c",\r\n');
    expect(
      csvDocument(
        ['x', 'y'],
        [
          [1, 'q"'],
          ['', 'z'],
        ],
      ),
    ).toBe('x,y\r\n1,"q"""\r\n,z\r\n');
  });

  it('reads back with a strict RFC 4180 parser to the same fields', () => {
    const rows = [
      ['id', 'text'],
      ['1', 'he said "no", then\r\nleft'],
      ['2', ''],
      ['3', ' x '],
    ];
    const doc = csvDocument(rows[0] as string[], rows.slice(1));
    expect(parse(doc)).toEqual(rows);
  });
});

/** A small strict reader: quoted fields may hold anything, quotes doubled; records end with CRLF. */
function parse(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (text[i] === '"' && text[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (text[i] === '"') {
          i++;
          break;
        } else field += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r') field += text[i++];
    }
    row.push(field);
    if (text[i] === ',') i++;
    else if (text.startsWith('\r\n', i)) {
      out.push(row);
      row = [];
      i += 2;
    } else if (i < text.length) throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`);
  }
  return out;
}
