/**
 * Configuration loading for both programs, from one TypeBox schema per
 * program: the schema gives validation, defaults, documentation
 * (docs/CONFIGURATION.md is generated from it) and the environment overrides.
 *
 * Sources, later wins: schema defaults < file (YAML or JSON) < environment.
 * Environment: PREFIX__SECTION__FIELD=value, e.g.
 *   CALLBOX_DEVICE__MODEM__PATH=/dev/serial/by-id/usb-SimTech...
 *   CALLBOX_FLEET__MQTT__PORT=1884
 * Segments match field names ignoring case and underscores (BAUD_RATE ->
 * baudRate). Values are parsed by the field's type: numbers, booleans
 * (true/false/1/0/yes/no), arrays as JSON or comma lists, objects as JSON.
 * An environment variable under the prefix that names no field is an error:
 * a typo must not be silently ignored.
 *
 * Any problem stops start-up with a ConfigInvalid error that names the file
 * (or the environment variable), the field, the bad value and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { Kind, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { CallboxError, ErrorCode } from './errors.js';
import { problemsOf } from './validate.js';

export interface LoadConfigOptions<T extends TObject> {
  schema: T;
  /** What is being configured, for messages ("device configuration"). */
  what: string;
  /** Path of a YAML or JSON file; omit to use defaults and the environment only. */
  file?: string | undefined;
  /** Inline values (tests, programmatic use); applied after the file. */
  values?: Record<string, unknown>;
  /** Environment prefix, e.g. "CALLBOX_DEVICE". */
  envPrefix?: string;
  env?: NodeJS.ProcessEnv;
}

interface Sourced {
  value: Record<string, unknown>;
  /** JSON pointer -> name of the environment variable that set it. */
  fromEnv: Map<string, string>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mergeDeep(target: Record<string, unknown>, src: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(src)) {
    const cur = target[k];
    target[k] = isPlainObject(cur) && isPlainObject(v) ? mergeDeep({ ...cur }, v) : v;
  }
  return target;
}

function readConfigFile(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CallboxError(
      ErrorCode.ConfigFileUnreadable,
      `${what}: cannot read ${file} (${err.code ?? err.message}); pass an existing YAML or JSON file`,
      { file },
    );
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new CallboxError(
      ErrorCode.ConfigParseFailed,
      `${what}: ${file} is not valid YAML/JSON: ${(e as Error).message}`,
      {
        file,
      },
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) {
    throw new CallboxError(
      ErrorCode.ConfigInvalid,
      `${what}: ${file} must hold a mapping of settings at the top level`,
      {
        file,
      },
    );
  }
  return parsed;
}

function unwrap(schema: TSchema): TSchema {
  // Optional/union-with-null wrappers: pick the non-null member for env parsing.
  if (Array.isArray(schema.anyOf)) {
    const nonNull = (schema.anyOf as TSchema[]).filter((s) => s.type !== 'null');
    if (nonNull.length === 1 && nonNull[0]) return unwrap(nonNull[0]);
  }
  return schema;
}

function envValue(raw: string, schema: TSchema, name: string): unknown {
  const s = unwrap(schema);
  const type = s.type;
  const bad = (expected: string) =>
    new CallboxError(ErrorCode.ConfigInvalid, `environment ${name}: got "${raw}", expected ${expected}`, {
      env: name,
      value: raw,
    });
  if (raw === 'null' && Array.isArray(schema.anyOf)) return null;
  if (type === 'number' || type === 'integer') {
    const n = Number(raw);
    if (raw.trim() === '' || Number.isNaN(n)) throw bad(type === 'integer' ? 'an integer' : 'a number');
    return n;
  }
  if (type === 'boolean') {
    const v = raw.toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    throw bad('true or false');
  }
  if (type === 'array') {
    if (raw.trim().startsWith('[')) {
      try {
        return JSON.parse(raw);
      } catch {
        throw bad('a JSON array or a comma-separated list');
      }
    }
    const items = raw
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    const itemSchema = s.items as TSchema | undefined;
    return itemSchema ? items.map((x) => envValue(x, itemSchema, name)) : items;
  }
  if (type === 'object') {
    try {
      return JSON.parse(raw);
    } catch {
      throw bad('a JSON object');
    }
  }
  return raw;
}

function norm(s: string): string {
  return s.replace(/_/g, '').toLowerCase();
}

function applyEnv(
  schema: TObject,
  target: Record<string, unknown>,
  prefix: string,
  env: NodeJS.ProcessEnv,
): Map<string, string> {
  const fromEnv = new Map<string, string>();
  const head = `${prefix}__`;
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(head) || raw === undefined) continue;
    const segments = name.slice(head.length).split('__');
    let node: TSchema = schema;
    let obj = target;
    const path: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i] ?? '';
      const props = (unwrap(node) as TObject).properties as Record<string, TSchema> | undefined;
      const key = props ? Object.keys(props).find((k) => norm(k) === norm(seg)) : undefined;
      if (!props || !key) {
        const known = props ? Object.keys(props).join(', ') : '(none: this field has no sub-fields)';
        throw new CallboxError(
          ErrorCode.ConfigInvalid,
          `environment ${name}: "${seg}" names no setting under /${path.join('/')}; known: ${known}`,
          { env: name },
        );
      }
      path.push(key);
      const child = props[key] as TSchema;
      if (i === segments.length - 1) {
        obj[key] = envValue(raw, child, name);
      } else {
        if (!isPlainObject(obj[key])) obj[key] = {};
        obj = obj[key] as Record<string, unknown>;
        node = child;
      }
    }
    fromEnv.set(`/${path.join('/')}`, name);
  }
  return fromEnv;
}

function assemble<T extends TObject>(opts: LoadConfigOptions<T>): Sourced {
  let value: Record<string, unknown> = {};
  if (opts.file) value = mergeDeep(value, readConfigFile(opts.file, opts.what));
  if (opts.values) value = mergeDeep(value, structuredClone(opts.values));
  const fromEnv = opts.envPrefix ? applyEnv(opts.schema, value, opts.envPrefix, opts.env ?? process.env) : new Map();
  return { value, fromEnv };
}

/** Load, default and validate a configuration, or throw ConfigInvalid naming every bad field. */
export function loadConfig<T extends TObject>(opts: LoadConfigOptions<T>): Static<T> {
  const { value, fromEnv } = assemble(opts);
  const withDefaults = Value.Default(opts.schema, value) as Record<string, unknown>;
  const problems = problemsOf(opts.schema, withDefaults);
  if (problems.length > 0) {
    const lines = problems.map((p) => {
      const env = fromEnv.get(p.path);
      const source = env ? `environment ${env}` : opts.file ? opts.file : 'defaults';
      return `  ${source}: field ${p.path}: got ${p.value}, expected ${p.expected}`;
    });
    throw new CallboxError(
      ErrorCode.ConfigInvalid,
      `${opts.what} is invalid (nothing was started):\n${lines.join('\n')}`,
      { file: opts.file, problems },
    );
  }
  return withDefaults as Static<T>;
}

// ---- documentation -----------------------------------------------------------

interface DocRow {
  path: string;
  type: string;
  default: string;
  allowed: string;
  description: string;
}

function typeName(s: TSchema): string {
  if (Array.isArray(s.anyOf)) return (s.anyOf as TSchema[]).map(typeName).join(' or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === 'array') return `${typeName(s.items as TSchema)}[]`;
  if (s[Kind] === 'Record') return 'map';
  return String(s.type ?? s[Kind] ?? 'any');
}

function allowedOf(s: TSchema): string {
  const parts: string[] = [];
  if (s.minimum !== undefined && s.maximum !== undefined) parts.push(`${s.minimum} to ${s.maximum}`);
  else if (s.minimum !== undefined) parts.push(`>= ${s.minimum}`);
  else if (s.maximum !== undefined) parts.push(`<= ${s.maximum}`);
  if (s.minLength !== undefined) parts.push(`length >= ${s.minLength}`);
  if (s.pattern) parts.push(`\`${s.pattern}\``);
  if (s.format) parts.push(`format ${s.format}`);
  if (Array.isArray(s.anyOf) && (s.anyOf as TSchema[]).every((x) => x.const !== undefined)) {
    parts.push((s.anyOf as TSchema[]).map((x) => `\`${String(x.const)}\``).join(', '));
  }
  return parts.join(', ');
}

function walk(s: TSchema, path: string, rows: DocRow[]): void {
  const props = s.type === 'object' ? (s.properties as Record<string, TSchema> | undefined) : undefined;
  if (props && Object.keys(props).length > 0) {
    for (const [k, child] of Object.entries(props)) walk(child, path ? `${path}.${k}` : k, rows);
    return;
  }
  rows.push({
    path,
    type: typeName(s).replace(/\|/g, '\\|'),
    default: s.default === undefined ? '(required)' : `\`${JSON.stringify(s.default)}\``,
    allowed: allowedOf(s).replace(/\|/g, '\\|'),
    description: String(s.description ?? '').replace(/\|/g, '\\|'),
  });
}

/** A markdown table of every setting: path, type, default, allowed values, description. */
export function describeConfig(schema: TObject, envPrefix: string): string {
  const rows: DocRow[] = [];
  walk(schema, '', rows);
  const out = [
    `Environment override: \`${envPrefix}__<SECTION>__<FIELD>\` (for example \`${envPrefix}__${rows[0]?.path
      .split('.')
      .map((p) => p.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase())
      .join('__')}\`).`,
    '',
    '| setting | type | default | allowed | description |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows) out.push(`| \`${r.path}\` | ${r.type} | ${r.default} | ${r.allowed} | ${r.description} |`);
  return out.join('\n');
}

/** Every leaf setting whose name says it is a duration: it must document unit, range and default. */
export function undocumentedTimeouts(schema: TObject): string[] {
  const rows: { path: string; s: TSchema }[] = [];
  const visit = (s: TSchema, path: string) => {
    const props = s.type === 'object' ? (s.properties as Record<string, TSchema> | undefined) : undefined;
    if (props) for (const [k, c] of Object.entries(props)) visit(c, path ? `${path}.${k}` : k);
    else rows.push({ path, s });
  };
  visit(schema, '');
  return rows
    .filter(({ path }) => /(Ms|S|Min|H)$/.test(path.split('.').pop() ?? ''))
    .filter(
      ({ s }) =>
        s.default === undefined ||
        s.minimum === undefined ||
        s.maximum === undefined ||
        !/\b(ms|milliseconds|seconds|minutes|hours)\b/i.test(String(s.description ?? '')),
    )
    .map(({ path }) => path);
}
