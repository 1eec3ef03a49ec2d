/**
 * Call forwarding, AT+CCFC (3GPP TS 27.007 7.11):
 *   AT+CCFC=<reason>,<mode>[,<number>[,<type>[,<class>[,<subaddr>[,<satype>[,<time>]]]]]]
 * <reason> 0 unconditional, 1 busy, 2 no reply, 3 not reachable, 4 all, 5 all conditional.
 * <mode> 0 disable, 1 enable, 2 query, 3 registration, 4 erasure.
 * Query answer, one line per class: +CCFC: <status>,<class>[,<number>,<type>[,<subaddr>,<satype>[,<time>]]]
 */
import type { ForwardingReason, ForwardingStatus } from '../types.js';
import { checkNumber, numberType } from './calls.js';
import { afterPrefix, intOrNull, splitFields } from './fields.js';

export const FORWARDING_REASONS: readonly ForwardingReason[] = [
  'unconditional',
  'busy',
  'no_reply',
  'not_reachable',
  'all',
  'all_conditional',
];

export type CcfcMode = 'disable' | 'enable' | 'query' | 'register' | 'erase';
const MODES: Record<CcfcMode, number> = { disable: 0, enable: 1, query: 2, register: 3, erase: 4 };

export function reasonCode(reason: ForwardingReason): number {
  const i = FORWARDING_REASONS.indexOf(reason);
  if (i < 0) throw new RangeError(`forwarding reason "${reason}" is not one of ${FORWARDING_REASONS.join(', ')}`);
  return i;
}

export interface CcfcRequest {
  reason: ForwardingReason;
  mode: CcfcMode;
  number?: string;
  /** <class> sum of 27.007 classes; 1 = voice (default for register). */
  classx?: number;
  /** No-reply time 1..30 s (reason no_reply, modes register/enable). */
  timeS?: number;
}

export function formatCcfc(req: CcfcRequest): string {
  const r = reasonCode(req.reason);
  const m = MODES[req.mode];
  if (m === undefined)
    throw new RangeError(`forwarding mode "${req.mode}" is not one of ${Object.keys(MODES).join(', ')}`);
  if (req.mode === 'register' && !req.number) throw new RangeError('forwarding registration needs a number');
  if (req.timeS !== undefined && (!Number.isInteger(req.timeS) || req.timeS < 1 || req.timeS > 30)) {
    throw new RangeError(`no-reply time ${req.timeS} s is not an integer from 1 to 30 (27.007 7.11 <time>)`);
  }
  if (req.number === undefined) {
    return req.classx === undefined ? `AT+CCFC=${r},${m}` : `AT+CCFC=${r},${m},,,${req.classx}`;
  }
  const n = checkNumber(req.number, 'forwarding number');
  const cls = req.classx ?? 1;
  const base = `AT+CCFC=${r},${m},"${n}",${numberType(n)},${cls}`;
  return req.timeS !== undefined &&
    (req.reason === 'no_reply' || req.reason === 'all' || req.reason === 'all_conditional')
    ? `${base},,,${req.timeS}`
    : base;
}

/** One +CCFC: line of a query answer. */
export function parseCcfc(line: string, reason: ForwardingReason): ForwardingStatus | null {
  if (!line.startsWith('+CCFC:')) return null;
  const f = splitFields(afterPrefix(line, '+CCFC:')).map((x) => x.value);
  const status = intOrNull(f[0]);
  if (status === null) return null;
  const number = f[2] === undefined || f[2] === '' ? null : f[2];
  return {
    reason,
    enabled: status === 1,
    number,
    classx: intOrNull(f[1]) ?? 0,
    time: intOrNull(f[6]),
  };
}

export function parseCcfcList(lines: readonly string[], reason: ForwardingReason): ForwardingStatus[] {
  const out: ForwardingStatus[] = [];
  for (const l of lines) {
    const s = parseCcfc(l, reason);
    if (s) out.push(s);
  }
  return out;
}
