/**
 * Structured logging for both programs (pino).
 *
 * - JSON lines on stdout (journald keeps them) unless stdout is a terminal,
 *   where lines are pretty-printed; CALLBOX_LOG_FORMAT=json|pretty forces one.
 * - One logger per namespace (`device:modem`, `fleet:alerts`), as a child of
 *   the process's root logger; the namespace is the `ns` field.
 * - Levels: CALLBOX_LOG_LEVEL="info" or "info,device:modem:at=debug"
 *   (a default, then per-namespace overrides; a prefix matches its children).
 * - Phone numbers are health information: every string that looks like a
 *   phone number, in the message and in every nested field, is masked to its
 *   last four digits here, once, for every level — callers never mask.
 */
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Field names whose string values are phone numbers whatever their shape. */
const PHONE_KEYS = new Set([
  'number',
  'numbers',
  'phone',
  'phones',
  'caller',
  'callerid',
  'callee',
  'msisdn',
  'from',
  'to',
  'rollovernumber',
  'forwardto',
  'answeringservice',
  'contact',
  'contacts',
]);

function digitsOf(s: string): string {
  return s.replace(/\D/g, '');
}

/** "+15551234567" -> "+*******4567"; shorter than 5 digits -> all masked. */
export function maskNumber(value: string): string {
  const digits = digitsOf(value);
  if (digits.length === 0) return value;
  const keep = digits.length > 4 ? 4 : 0;
  const plus = value.trim().startsWith('+') ? '+' : '';
  return plus + '*'.repeat(digits.length - keep) + digits.slice(digits.length - keep);
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
/** What may sit between the digits of one number: "+1 (555) 123-4567", "555.123.4567", "555/1234567". */
const SEPARATORS = new Set([' ', '-', '.', '(', ')', '/', '\u00a0']);
/** A character that glues a run of digits into a bigger token (an id, a UUID, a hex string, a word). */
const GLUE = /[\p{L}\p{N}_-]/u;
/** E.164 allows 15 digits; national numbers are at least 7. */
const MIN_DIGITS = 7;
const MAX_DIGITS = 15;

/**
 * Phone numbers in free text, found by a small scanner rather than one
 * pattern:
 * - a run is an optional "+" and digits with at most two separators between
 *   neighbours (space . - / and brackets);
 * - a run starting with "+" is an international number: masked whatever
 *   touches it ("x+15553330001", "+15553330002abc");
 * - a run without "+" is masked unless glued to a letter, digit, "_" or "-"
 *   on either side (ids, UUIDs, hex, "T" of a timestamp);
 * - a run with more digits than one number can have is split at its spaces
 *   into numbers of 7 to 15 digits ("07700900123 07700900124" is two); a run
 *   over 15 digits with no space (IMEI, ICCID, times in ms) is left alone.
 */
export function maskInText(text: string): string {
  // Network addresses are not phone numbers: a URL's scheme, host and port, and an IPv4 address (with its port)
  // are kept as they are; a URL's path and query are scanned like any text.
  ADDRESS.lastIndex = 0;
  if (!ADDRESS.test(text)) return scanText(text);
  ADDRESS.lastIndex = 0;
  let out = '';
  let at = 0;
  for (const m of text.matchAll(ADDRESS)) {
    out += scanText(text.slice(at, m.index)) + m[0];
    at = m.index + m[0].length;
  }
  return out + scanText(text.slice(at));
}

/** A URL's scheme://[user@]host[:port], or an IPv4 address with an optional port. */
const ADDRESS =
  /\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/(?:[^\s@/?#]*@)?(?:\[[0-9a-fA-F:.]+\]|[^\s:/?#]+)(?::\d{1,5})?|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\d.])/g;

function scanText(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    const plus = ch === '+' && isDigit(text[i + 1]);
    if (!plus && !isDigit(ch) && !(ch === '(' && isDigit(text[i + 1]))) {
      out += ch;
      i++;
      continue;
    }
    let j = plus || ch === '(' ? i + 1 : i;
    let end = j;
    while (j < text.length) {
      if (isDigit(text[j])) {
        j++;
        end = j;
        continue;
      }
      let k = j;
      while (k < text.length && k - j < 2 && SEPARATORS.has(text[k] as string)) k++;
      if (k > j && isDigit(text[k])) {
        j = k;
        continue;
      }
      // a closing bracket right after the digits belongs to the run ("(555)")
      if (text[j] === ')' && text.slice(i, j).includes('(')) end = j + 1;
      break;
    }
    const run = text.slice(i, end);
    const glued = !plus && (GLUE.test(text[i - 1] ?? '') || GLUE.test(text[end] ?? ''));
    out += glued ? run : maskRun(run);
    i = end;
  }
  return out;
}

/** Mask the numbers in one run of digits and separators (see maskInText). */
function maskRun(run: string): string {
  const n = digitsOf(run).length;
  if (n <= MAX_DIGITS) return n >= MIN_DIGITS ? maskNumber(run) : run;
  // More digits than one number: split at spaces into numbers.
  const parts = run.split(/(\s+)/);
  let out = '';
  let current = '';
  const flush = () => {
    const d = digitsOf(current).length;
    out += d >= MIN_DIGITS && d <= MAX_DIGITS ? maskNumber(current) : current;
    current = '';
  };
  for (const part of parts) {
    if (/^\s+$/.test(part)) {
      if (current) current += part;
      else out += part;
      continue;
    }
    const have = digitsOf(current).length;
    const add = digitsOf(part).length;
    if (current && (have + add > MAX_DIGITS || (have >= MIN_DIGITS && add >= MIN_DIGITS))) {
      const trailing = /\s+$/.exec(current)?.[0] ?? '';
      current = current.slice(0, current.length - trailing.length);
      flush();
      out += trailing;
    }
    current += part;
  }
  if (current) flush();
  return out;
}

const MAX_DEPTH = 8;

/** Deep copy of a log object with phone numbers masked. */
export function maskPhoneNumbers(value: unknown, key = '', depth = 0): unknown {
  if (typeof value === 'string') {
    return PHONE_KEYS.has(key.toLowerCase()) ? maskNumber(value) : maskInText(value);
  }
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (value instanceof Error) {
    const out: Record<string, unknown> = { type: value.name, message: maskInText(value.message) };
    if (value.stack) out.stack = maskInText(value.stack);
    for (const [k, v] of Object.entries(value)) out[k] = maskPhoneNumbers(v, k, depth + 1);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => maskPhoneNumbers(v, key, depth + 1));
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskPhoneNumbers(v, k, depth + 1);
  return out;
}

export interface LogSetup {
  /** "info" or "warn,device:modem=debug". */
  level?: string;
  format?: 'json' | 'pretty';
  /** Where lines go (tests pass a stream to read them). Default stdout. */
  destination?: DestinationStream;
}

interface LevelRule {
  prefix: string;
  level: string;
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

export function parseLevelSpec(spec: string): { base: string; rules: LevelRule[] } {
  let base = 'info';
  const rules: LevelRule[] = [];
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const level = (eq < 0 ? part : part.slice(eq + 1)).trim();
    if (!LEVELS.has(level)) {
      throw new Error(`log level "${level}" in "${spec}" is not one of ${[...LEVELS].join(', ')}`);
    }
    if (eq < 0) base = level;
    else rules.push({ prefix: part.slice(0, eq).trim(), level });
  }
  // Longest prefix wins.
  rules.sort((a, b) => b.prefix.length - a.prefix.length);
  return { base, rules };
}

let root: Logger | undefined;
let levelSpec = parseLevelSpec('info');

function buildRoot(setup: LogSetup = {}): Logger {
  levelSpec = parseLevelSpec(setup.level ?? process.env.CALLBOX_LOG_LEVEL ?? 'info');
  const format =
    setup.format ??
    (process.env.CALLBOX_LOG_FORMAT as 'json' | 'pretty' | undefined) ??
    (process.stdout.isTTY ? 'pretty' : 'json');
  const options: LoggerOptions = {
    level: 'trace', // children narrow it per namespace
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj) => maskPhoneNumbers(obj) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        const masked = args.map((a) => (typeof a === 'string' ? maskInText(a) : a)) as Parameters<typeof method>;
        method.apply(this, masked);
      },
    },
  };
  let dest: DestinationStream;
  if (setup.destination) dest = setup.destination;
  else if (format === 'pretty') dest = pretty({ sync: true, colorize: process.stdout.isTTY, messageKey: 'msg' });
  else dest = pino.destination({ dest: 1, sync: false });
  return pino(options, dest);
}

/** Configure the process's logging once at start-up (optional: defaults apply). */
export function setupLogging(setup: LogSetup = {}): Logger {
  root = buildRoot(setup);
  return root;
}

export function levelFor(ns: string): string {
  for (const r of levelSpec.rules) {
    if (ns === r.prefix || ns.startsWith(`${r.prefix}:`)) return r.level;
  }
  return levelSpec.base;
}

/** The logger for a namespace such as `device:modem:at`. */
export function getLogger(ns: string): Logger {
  root ??= buildRoot();
  const child = root.child({ ns });
  child.level = levelFor(ns);
  return child;
}

/** A destination that collects JSON log lines in memory (tests, diagnostics). */
export class MemoryLogStream implements DestinationStream {
  readonly lines: Record<string, unknown>[] = [];
  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  }
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}
