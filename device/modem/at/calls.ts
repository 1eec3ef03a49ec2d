/**
 * Calls. AT+CLCC (3GPP TS 27.007 7.18) is the truth about calls; RING/+CRING
 * (V.250 5.7.2, 27.007 6.11) and +CLIP (27.007 7.6) only trigger a look.
 * ATA (V.250 6.3.5) answers, AT+CHUP (27.007 6.5) or ATH (V.250 6.3.6)
 * hang up, AT+CTFR (27.007 7.14) deflects, AT+CHLD (27.007 7.13) holds and
 * switches, +CCWA (27.007 7.12) reports a waiting call.
 */
import type { CallInfo, CallStat } from '../types.js';
import { afterPrefix, intOrNull, splitFields } from './fields.js';

const STATS: readonly CallStat[] = ['active', 'held', 'dialing', 'alerting', 'incoming', 'waiting'];
const MODES: readonly CallInfo['mode'][] = ['voice', 'data', 'fax'];

/** A +CLCC line; `ended` is SIMCom's non-standard <stat> 6 ("disconnected") in pushed +CLCC. */
export interface ClccLine extends CallInfo {
  ended: boolean;
}

/**
 * +CLCC: <idx>,<dir>,<stat>,<mode>,<mpty>[,<number>,<type>[,<alpha>[,<priority>]]]
 * Also the body of Quectel's +QIND: "ccinfo",... (same fields).
 */
export function parseClccFields(rest: string): ClccLine | null {
  const f = splitFields(rest).map((x) => x.value);
  const index = intOrNull(f[0]);
  const dir = intOrNull(f[1]);
  const stat = intOrNull(f[2]);
  if (index === null || dir === null || stat === null || (dir !== 0 && dir !== 1)) return null;
  const mode = intOrNull(f[3]);
  const number = f[5] === undefined || f[5] === '' ? null : f[5];
  return {
    index,
    direction: dir === 0 ? 'mo' : 'mt',
    stat: STATS[stat] ?? 'active',
    ended: stat === 6 || stat === 7,
    mode: mode === null ? 'unknown' : (MODES[mode] ?? 'unknown'),
    multiparty: intOrNull(f[4]) === 1,
    number,
    numberType: number === null ? null : intOrNull(f[6]),
  };
}

export function parseClcc(line: string): ClccLine | null {
  if (!line.startsWith('+CLCC:')) return null;
  return parseClccFields(afterPrefix(line, '+CLCC:'));
}

/** The answer to AT+CLCC: every +CLCC line (no line: no call). Lines with stat 6/7 are left out. */
export function parseClccList(lines: readonly string[]): CallInfo[] {
  const out: CallInfo[] = [];
  for (const l of lines) {
    const c = parseClcc(l);
    if (c && !c.ended) {
      const { ended: _e, ...info } = c;
      out.push(info);
    }
  }
  return out;
}

/** Quectel EC25 +QIND: "ccinfo",<idx>,<dir>,<stat>,<mode>,<mpty>,<number>,<type> (Quectel AT manual, AT+QINDCFG). */
export function parseQindCcinfo(line: string): ClccLine | null {
  const m = /^\+QIND:\s*"?ccinfo"?\s*,(.*)$/i.exec(line);
  return m ? parseClccFields(m[1] ?? '') : null;
}

export interface CallerId {
  number: string | null;
  type: number | null;
  /** CLI validity (27.007 7.6 <CLI validity>): 0 valid, 1 withheld, 2 not available. */
  validity: number | null;
  withheld: boolean;
}

function callerIdOf(f: string[], validityAt: number): CallerId {
  const raw = f[0]?.trim() ?? '';
  const validity = intOrNull(f[validityAt]);
  // Withheld (1) or unavailable (2): some networks still send digits or text ("Unknown"); ignore them.
  const number = raw === '' || validity === 1 || validity === 2 || !/^\+?[0-9*#]+$/.test(raw) ? null : raw;
  return { number, type: intOrNull(f[1]), validity, withheld: number === null };
}

/** +CLIP: <number>,<type>[,<subaddr>,<satype>[,<alpha>[,<CLI validity>]]] (27.007 7.6). */
export function parseClip(line: string): CallerId | null {
  if (!line.startsWith('+CLIP:')) return null;
  return callerIdOf(
    splitFields(afterPrefix(line, '+CLIP:')).map((x) => x.value),
    5,
  );
}

/** +CCWA: <number>,<type>,<class>[,<alpha>][,<CLI validity>...] (27.007 7.12). */
export function parseCcwa(line: string): (CallerId & { classx: number | null }) | null {
  if (!line.startsWith('+CCWA:')) return null;
  const f = splitFields(afterPrefix(line, '+CCWA:')).map((x) => x.value);
  return { ...callerIdOf(f, 4), classx: intOrNull(f[2]) };
}

/** +CRING: <type> (27.007 6.11), e.g. "VOICE", "REL ASYNC". */
export function parseCring(line: string): string | null {
  if (!line.startsWith('+CRING:')) return null;
  return afterPrefix(line, '+CRING:');
}

/** Huawei ^CEND: <call_x>,<duration>,<end_status>[,<cc_cause>] — call index first. */
export function parseHuaweiCend(line: string): { index: number | null; cause: number | null } | null {
  if (!line.startsWith('^CEND:')) return null;
  const f = splitFields(afterPrefix(line, '^CEND:')).map((x) => x.value);
  return { index: intOrNull(f[0]), cause: intOrNull(f[3]) ?? intOrNull(f[2]) };
}

/** A dial/deflect number: + and digits, * and # (27.007 6.2 allows more, we do not need it). */
export function checkNumber(number: string, field = 'number'): string {
  const n = number.trim();
  if (!/^\+?[0-9*#]{1,20}$/.test(n)) {
    throw new RangeError(`${field} "${n}" is not a phone number (expected + and up to 20 digits)`);
  }
  return n;
}

/** <type> of address (27.007 6.1): 145 with a leading +, else 129. */
export function numberType(number: string): number {
  return number.startsWith('+') ? 145 : 129;
}

/** AT+CTFR=<number>[,<type>] (27.007 7.14). */
export function formatDeflect(number: string): string {
  const n = checkNumber(number);
  return `AT+CTFR="${n}",${numberType(n)}`;
}

/** AT+CHLD=<n> (27.007 7.13): 0 release held/waiting, 1 release active and accept other, 1x release x, 2 hold and accept, 2x private with x, 3 conference, 4 ECT. */
export function formatChld(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 49) throw new RangeError(`AT+CHLD value ${n} is not 0..4 or 1x/2x`);
  return `AT+CHLD=${n}`;
}
