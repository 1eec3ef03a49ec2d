/**
 * Validation on top of TypeBox: one schema gives the runtime check and the
 * static type. Compiled checkers are cached per schema object.
 *
 * Errors name the path of the bad field (JSON pointer, e.g. /body/number),
 * the value found and what the schema accepts, and unknown extra fields are
 * reported by name wherever a schema says additionalProperties: false.
 */
import { FormatRegistry, type Static, type TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler, type ValueError } from '@sinclair/typebox/compiler';
import { CallboxError, ErrorCode } from './errors.js';

// ---- formats used by the contract -------------------------------------------

/** An MQTT broker address: mqtt, mqtts, ws, wss, tcp or tls scheme, a host, an optional port 1-65535. */
export function isBrokerUrl(v: string): boolean {
  const m = /^(mqtts?|wss?|tcp|tls):\/\/([^/?#]*)/.exec(v);
  if (!m) return false;
  let u: URL;
  try {
    u = new URL(v.replace(/^[a-z]+:/, 'http:')); // the WHATWG parser checks host and port for special schemes only
  } catch {
    return false;
  }
  const port = /:(\d*)$/.exec(m[2] ?? '')?.[1];
  if (port !== undefined && (port === '' || Number(port) < 1 || Number(port) > 65535)) return false;
  return u.hostname !== '';
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const tzCache = new Map<string, boolean>();

export function isIanaTimezone(tz: string): boolean {
  let ok = tzCache.get(tz);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      ok = tz.length > 0 && (tz.includes('/') || tz === 'UTC');
    } catch {
      ok = false;
    }
    tzCache.set(tz, ok);
  }
  return ok;
}

FormatRegistry.Set('date-time', (v) => ISO_DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));
FormatRegistry.Set('uuid', (v) => UUID.test(v));
FormatRegistry.Set('iana-timezone', isIanaTimezone);
FormatRegistry.Set('hh:mm', (v) => /^([01]\d|2[0-3]):[0-5]\d$|^24:00$/.test(v));
FormatRegistry.Set('broker-url', isBrokerUrl);
FormatRegistry.Set('date', (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(v)));

// ---- checking ----------------------------------------------------------------

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

export interface FieldProblem {
  /** JSON pointer to the field, "/" for the whole value. */
  path: string;
  /** What was found, shortened. */
  value: string;
  /** What is accepted. */
  expected: string;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function expectedOf(e: ValueError): string {
  return describeSchema(e.schema as Record<string, unknown>, e.message.replace(/^Expected /, ''));
}

function describeSchema(s: Record<string, unknown>, fallback: string): string {
  if (Array.isArray(s.anyOf) && !s.anyOf.every((x: { const?: unknown }) => x.const !== undefined)) {
    const members = (s.anyOf as Record<string, unknown>[]).map((m) =>
      m.type === 'null' ? 'null' : describeSchema(m, String(m.type ?? 'value')),
    );
    const desc = typeof s.description === 'string' ? ` (${s.description})` : '';
    return members.join(' or ') + desc;
  }
  const parts: string[] = [];
  if (s.description && typeof s.description === 'string') parts.push(s.description);
  const bounds: string[] = [];
  if (s.minimum !== undefined) bounds.push(`>= ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) bounds.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) bounds.push(`<= ${s.maximum}`);
  if (s.minLength !== undefined) bounds.push(`length >= ${s.minLength}`);
  if (s.maxLength !== undefined) bounds.push(`length <= ${s.maxLength}`);
  if (s.pattern !== undefined) bounds.push(`matching ${s.pattern}`);
  if (s.format !== undefined) bounds.push(`format ${s.format}`);
  if (Array.isArray(s.anyOf) && s.anyOf.every((x: { const?: unknown }) => x.const !== undefined)) {
    bounds.push(`one of ${s.anyOf.map((x: { const?: unknown }) => JSON.stringify(x.const)).join(', ')}`);
  }
  if (s.const !== undefined) bounds.push(`exactly ${JSON.stringify(s.const)}`);
  const type = typeof s.type === 'string' ? s.type : undefined;
  const head = fallback;
  const shape = bounds.length ? `${type ?? head} ${bounds.join(', ')}` : head;
  return parts.length ? `${shape} (${parts.join('; ')})` : shape;
}

/** All problems with a value, one per field (the first error at each path). */
export function problemsOf(schema: TSchema, value: unknown): FieldProblem[] {
  const c = checker(schema);
  if (c.Check(value)) return [];
  const seen = new Set<string>();
  const out: FieldProblem[] = [];
  for (const e of c.Errors(value)) {
    const path = e.path || '/';
    if (seen.has(path)) continue;
    seen.add(path);
    if (e.message.startsWith('Unexpected property')) {
      out.push({ path, value: show(e.value), expected: 'no such field (unknown field; check the spelling)' });
    } else {
      out.push({ path, value: show(e.value), expected: expectedOf(e) });
    }
  }
  // A union failing reports the union path and then the member paths: keep the deepest.
  return out.filter((p) => !out.some((q) => q !== p && q.path.startsWith(`${p.path}/`) && p.path !== '/'));
}

export function formatProblems(problems: FieldProblem[]): string {
  return problems.map((p) => `${p.path}: got ${p.value}, expected ${p.expected}`).join('; ');
}

export function isValid<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checker(schema).Check(value);
}

/**
 * Return the value typed, or throw ValidationFailed naming what was checked
 * (`what`, e.g. "command sms.send") and every bad field.
 */
export function validate<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  if (checker(schema).Check(value)) return value as Static<T>;
  const problems = problemsOf(schema, value);
  throw new CallboxError(ErrorCode.ValidationFailed, `${what} is invalid: ${formatProblems(problems)}`, {
    problems,
  });
}

/** Parse a JSON MQTT payload and validate it; a parse failure is a validation error too. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of a payload, refusing invalid UTF-8 (which toString would turn into U+FFFD silently, storing
 * something the sender never sent).
 */
export function utf8Of(payload: Buffer | string, what: string): string {
  if (typeof payload === 'string') return payload;
  try {
    return UTF8.decode(payload);
  } catch {
    throw new CallboxError(ErrorCode.ValidationFailed, `${what} is not valid UTF-8`, {
      problems: [{ path: '/', value: `${payload.length} bytes`, expected: 'UTF-8 text (JSON)' }],
    });
  }
}

export function decodePayload<T extends TSchema>(schema: T, payload: Buffer | string, what: string): Static<T> {
  let value: unknown;
  const text = utf8Of(payload, what);
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CallboxError(ErrorCode.ValidationFailed, `${what} is not valid JSON: ${(e as Error).message}`, {
      problems: [{ path: '/', value: show(text), expected: 'a JSON document' }],
    });
  }
  return validate(schema, value, what);
}
