/**
 * Final result codes: ITU-T V.250 5.7.2 (OK, CONNECT, RING, NO CARRIER,
 * ERROR, NO DIALTONE, BUSY, NO ANSWER), 3GPP TS 27.007 9.2 (+CME ERROR,
 * numeric with +CMEE=1, verbose with +CMEE=2) and TS 27.005 3.2.5
 * (+CMS ERROR).
 */

export type FinalKind =
  | 'ok'
  | 'error'
  | 'cme'
  | 'cms'
  | 'no_carrier'
  | 'busy'
  | 'no_answer'
  | 'no_dialtone'
  | 'connect';

export interface FinalResult {
  kind: FinalKind;
  /** The line as received. */
  line: string;
  /** +CME/+CMS: the numeric code when the modem sent one (or we know the verbose text). */
  code: number | null;
  /** +CME/+CMS: the verbose text when the modem sent one (or we know the code). */
  text: string | null;
}

/** 3GPP TS 27.007 9.2.1 (general) and 9.2.2 (GPRS) errors: the ones a call box meets. */
export const CME_ERRORS: Readonly<Record<number, string>> = {
  0: 'phone failure',
  1: 'no connection to phone',
  3: 'operation not allowed',
  4: 'operation not supported',
  5: 'PH-SIM PIN required',
  10: 'SIM not inserted',
  11: 'SIM PIN required',
  12: 'SIM PUK required',
  13: 'SIM failure',
  14: 'SIM busy',
  15: 'SIM wrong',
  16: 'incorrect password',
  17: 'SIM PIN2 required',
  18: 'SIM PUK2 required',
  20: 'memory full',
  21: 'invalid index',
  22: 'not found',
  23: 'memory failure',
  24: 'text string too long',
  25: 'invalid characters in text string',
  26: 'dial string too long',
  27: 'invalid characters in dial string',
  30: 'no network service',
  31: 'network timeout',
  32: 'network not allowed - emergency calls only',
  100: 'unknown',
};

/** 3GPP TS 27.005 3.2.5 <err> values used in practice. */
export const CMS_ERRORS: Readonly<Record<number, string>> = {
  300: 'ME failure',
  301: 'SMS service of ME reserved',
  302: 'operation not allowed',
  303: 'operation not supported',
  304: 'invalid PDU mode parameter',
  305: 'invalid text mode parameter',
  310: 'SIM not inserted',
  311: 'SIM PIN required',
  313: 'SIM failure',
  314: 'SIM busy',
  320: 'memory failure',
  321: 'invalid memory index',
  322: 'memory full',
  330: 'SMSC address unknown',
  331: 'no network service',
  332: 'network timeout',
  500: 'unknown error',
};

const SIMPLE: Readonly<Record<string, FinalKind>> = {
  OK: 'ok',
  ERROR: 'error',
  'NO CARRIER': 'no_carrier',
  BUSY: 'busy',
  'NO ANSWER': 'no_answer',
  'NO DIALTONE': 'no_dialtone',
  'NO DIAL TONE': 'no_dialtone',
};

function codeOrText(
  kind: 'cme' | 'cms',
  line: string,
  rest: string,
  table: Readonly<Record<number, string>>,
): FinalResult {
  const v = rest.trim().replace(/^"(.*)"$/, '$1');
  if (/^\d+$/.test(v)) {
    const code = Number(v);
    return { kind, line, code, text: table[code] ?? null };
  }
  const lower = v.toLowerCase();
  const found = Object.entries(table).find(([, t]) => t.toLowerCase() === lower);
  return { kind, line, code: found ? Number(found[0]) : null, text: v || null };
}

/**
 * The final result a line is, or null. CONNECT may carry a rate ("CONNECT 9600").
 * Whether NO CARRIER/BUSY/... end the command in flight is the command's business
 * (only dial and answer accept them); otherwise they are unsolicited.
 */
export function parseFinal(line: string): FinalResult | null {
  const simple = SIMPLE[line];
  if (simple) return { kind: simple, line, code: null, text: null };
  if (line === 'CONNECT' || line.startsWith('CONNECT ')) return { kind: 'connect', line, code: null, text: null };
  const cme = /^\+CME ERROR:\s*(.*)$/i.exec(line);
  if (cme) return codeOrText('cme', line, cme[1] ?? '', CME_ERRORS);
  const cms = /^\+CMS ERROR:\s*(.*)$/i.exec(line);
  if (cms) return codeOrText('cms', line, cms[1] ?? '', CMS_ERRORS);
  return null;
}

/** Finals only dial/answer-type commands take; for any other command these lines are unsolicited. */
export const CALL_FINALS: ReadonlySet<FinalKind> = new Set([
  'no_carrier',
  'busy',
  'no_answer',
  'no_dialtone',
  'connect',
]);
