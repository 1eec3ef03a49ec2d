/**
 * Errors next to the field: the fleet's error names the field it is about (a JSON pointer such as
 * /settings/calls/ringTimeoutS, or a dotted path); forms key their inputs by dotted path and show the
 * message beside the input whose path matches (or the nearest parent).
 */
import { ApiError } from './api.js';

export interface FieldErrors {
  /** dotted path -> message; '' holds what belongs to no field. */
  [path: string]: string;
}

/** "/settings/calls/ringTimeoutS" or "settings.calls.ringTimeoutS" -> "calls.ringTimeoutS" (minus `strip`). */
export function dotted(field: string, strip: string[] = []): string {
  let parts = field
    .replace(/^\//, '')
    .split(/[/.]/)
    .filter((p) => p !== '');
  while (parts.length > 0 && strip.includes(parts[0]!)) parts = parts.slice(1);
  return parts.join('.');
}

/** The errors of a failed call, keyed by field path (those of `known` paths, else the nearest known parent). */
export function fieldErrors(e: unknown, known: Iterable<string>, strip: string[] = []): FieldErrors {
  const paths = new Set(known);
  const out: FieldErrors = {};
  const place = (field: string | undefined, message: string) => {
    let p = field ? dotted(field, strip) : '';
    while (p && !paths.has(p)) p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '';
    out[p] = out[p] ? `${out[p]}; ${message}` : message;
  };
  if (e instanceof ApiError) {
    const problems = (e as ApiError & { problems?: { path: string; value?: unknown; expected?: string }[] }).problems;
    if (problems?.length) {
      for (const p of problems) place(p.path, `got ${String(p.value)}, expected ${p.expected ?? '?'}`);
    } else {
      const detail =
        e.value !== undefined || e.accepted !== undefined
          ? `${e.message.length < 80 ? `${e.message}: ` : ''}got ${typeof e.value === 'string' ? e.value : JSON.stringify(e.value)}, expected ${typeof e.accepted === 'string' ? e.accepted : JSON.stringify(e.accepted)}`
          : e.message;
      place(e.field, detail);
      if (e.field && out[''] === undefined && !paths.has(dotted(e.field, strip))) out[''] = e.message;
    }
  } else {
    out[''] = e instanceof Error ? e.message : String(e);
  }
  return out;
}

/** The id of the element that shows the error of a field (aria-describedby of its input). */
export function errorId(form: string, path: string): string {
  return `${form}-err-${path.replace(/[^a-zA-Z0-9]/g, '_')}`;
}
