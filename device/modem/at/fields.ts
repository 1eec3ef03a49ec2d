/**
 * Splitting information-response parameters (3GPP TS 27.007 4.1, V.250
 * 5.7.1): `+CMD: a, "b,c",,d`. Commas inside double quotes do not split;
 * spaces around values are dropped (some modems send "+CREG: 2, 1"); an
 * empty field is ''; quotes are removed but remembered.
 */

export interface Field {
  value: string;
  quoted: boolean;
}

export function splitFields(s: string): Field[] {
  const out: Field[] = [];
  let i = 0;
  const n = s.length;
  for (;;) {
    while (i < n && s[i] === ' ') i++;
    if (i < n && s[i] === '"') {
      const close = s.indexOf('"', i + 1);
      const end = close < 0 ? n : close;
      out.push({ value: s.slice(i + 1, end), quoted: true });
      i = close < 0 ? n : close + 1;
      while (i < n && s[i] !== ',') i++;
    } else {
      let end = s.indexOf(',', i);
      if (end < 0) end = n;
      out.push({ value: s.slice(i, end).trim(), quoted: false });
      i = end;
    }
    if (i >= n) break;
    i++; // the comma
    if (i === n) {
      out.push({ value: '', quoted: false });
      break;
    }
  }
  return out;
}

/** The part after "+CMD:" (or the whole line when it has no such prefix). */
export function afterPrefix(line: string, prefix: string): string {
  return line.startsWith(prefix) ? line.slice(prefix.length).trim() : line;
}

/** An integer field, or null when empty/missing/not a number. */
export function intOrNull(v: string | undefined): number | null {
  if (v === undefined) return null;
  const t = v.trim();
  if (!/^-?\d+$/.test(t)) return null;
  return Number(t);
}
