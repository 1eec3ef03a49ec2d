/**
 * Network: registration (3GPP TS 27.007 7.2 +CREG, 10.1.20 +CGREG,
 * 10.1.22 +CEREG), signal (27.007 8.5 +CSQ), operator (27.007 7.3 +COPS),
 * and the Huawei ^RSSI / ^HCSQ reports.
 */
import type { Registration } from '../types.js';
import { afterPrefix, intOrNull, splitFields } from './fields.js';

/** <stat> 0..11 of +CREG/+CGREG/+CEREG (27.007 7.2). */
export const REG_STATS: readonly Registration[] = [
  'not_registered',
  'home',
  'searching',
  'denied',
  'unknown',
  'roaming',
  'sms_only_home',
  'sms_only_roaming',
  'emergency_only',
  'csfb_not_preferred_home',
  'csfb_not_preferred_roaming',
];

export function registrationOf(stat: number | null): Registration {
  if (stat === null) return 'unknown';
  // 11 is "registered for emergency services only" in newer releases of 27.007.
  if (stat === 11) return 'emergency_only';
  return REG_STATS[stat] ?? 'unknown';
}

export interface RegistrationInfo {
  kind: 'CREG' | 'CGREG' | 'CEREG';
  /** <n> in the solicited form; null in the unsolicited one. */
  n: number | null;
  registration: Registration;
  stat: number | null;
  /** LAC/TAC in upper-case hex without padding quirks ("00C3" kept as sent, upper-cased). */
  lac: string | null;
  cellId: string | null;
  act: number | null;
}

const REG_PREFIX = /^\+(C|CG|CE)REG:\s*/;

function hexOrNull(v: string | undefined): string | null {
  if (v === undefined) return null;
  const t = v.trim().toUpperCase();
  return /^[0-9A-F]+$/.test(t) ? t : null;
}

/**
 * +CREG: parses both forms. Solicited (answer to AT+CREG?): <n>,<stat>[,<lac>,<ci>[,<AcT>]].
 * Unsolicited: <stat>[,<lac>,<ci>[,<AcT>]]. The caller says which it is:
 * a two-field unsolicited line cannot exist, a two-field solicited one can.
 */
export function parseRegistration(line: string, solicited: boolean): RegistrationInfo | null {
  const m = REG_PREFIX.exec(line);
  if (!m) return null;
  const kind = (`${m[1]}REG` === 'CREG' ? 'CREG' : m[1] === 'CG' ? 'CGREG' : 'CEREG') as RegistrationInfo['kind'];
  const f = splitFields(line.slice(m[0].length)).map((x) => x.value);
  let i = 0;
  let n: number | null = null;
  if (solicited) {
    n = intOrNull(f[0]);
    i = 1;
  }
  const stat = intOrNull(f[i]);
  if (stat === null) return null;
  // +CEREG/+CGREG may carry <rac> between <ci> and <AcT> in some releases; we read lac, ci, act.
  return {
    kind,
    n,
    stat,
    registration: registrationOf(stat),
    lac: hexOrNull(f[i + 1]),
    cellId: hexOrNull(f[i + 2]),
    act: intOrNull(f[i + 3]),
  };
}

/** +CSQ: <rssi>,<ber> (27.007 8.5): 0 -> -113 dBm, 1 -> -111, 2..30 -> -109..-53, 31 -> -51, 99 unknown. */
export function csqToDbm(rssi: number | null): number | null {
  if (rssi === null || rssi === 99 || rssi < 0 || rssi > 31) return null;
  return -113 + 2 * rssi;
}

export function parseCsq(line: string): { rssi: number | null; ber: number | null; dbm: number | null } | null {
  if (!line.startsWith('+CSQ:')) return null;
  const f = splitFields(afterPrefix(line, '+CSQ:')).map((x) => x.value);
  const rssi = intOrNull(f[0]);
  const ber = intOrNull(f[1]);
  return { rssi, ber: ber === 99 ? null : ber, dbm: csqToDbm(rssi) };
}

/** Huawei ^RSSI: <rssi> (same scale as +CSQ). */
export function parseHuaweiRssi(line: string): number | null {
  const v = intOrNull(afterPrefix(line, '^RSSI:'));
  return csqToDbm(v);
}

/**
 * Huawei ^HCSQ: <sysmode>,<value1>,... where value1 is RSSI on GSM/WCDMA/LTE:
 * 0 -> below -120 dBm, n -> -120 + n dBm (n <= 96), 255 unknown.
 */
export function parseHuaweiHcsq(line: string): { sysmode: string; dbm: number | null } | null {
  const f = splitFields(afterPrefix(line, '^HCSQ:'));
  const sysmode = f[0]?.value ?? '';
  if (sysmode === '') return null;
  if (sysmode.toUpperCase() === 'NOSERVICE') return { sysmode, dbm: null };
  const v = intOrNull(f[1]?.value);
  if (v === null || v === 255 || v > 96) return { sysmode, dbm: null };
  return { sysmode, dbm: -120 + v };
}

/** <format> of +COPS (27.007 7.3): 0 long alphanumeric, 1 short alphanumeric, 2 numeric. */
export type CopsFormat = 'long' | 'short' | 'numeric';

const COPS_FORMATS: readonly CopsFormat[] = ['long', 'short', 'numeric'];

/** AT+COPS=3,0 (27.007 7.3): set the format of later +COPS answers to long alphanumeric; no network action. */
export const COPS_SET_LONG_FORMAT = 'AT+COPS=3,0';

export interface CopsInfo {
  /** <mode>: 0 automatic, 1 manual, 2 deregister, 3 set format only, 4 manual/automatic. */
  mode: number | null;
  /** <format> as sent; null when the line has none (not registered). */
  format: CopsFormat | null;
  /** The operator's name (format 0 or 1); null when only a code (or nothing) is known. */
  operator: string | null;
  /**
   * The operator as a code: MCC (3 digits) and MNC (2 or 3 digits) joined with '-', e.g. "310-260".
   * Set when the modem answered in numeric format (2), and when it put a bare MCC+MNC in an
   * alphanumeric field (modems without a name for the network do): a number is never a name.
   */
  code: string | null;
  /** <AcT> (0 GSM, 2 UTRAN, 7 E-UTRAN, ...), null when absent. */
  act: number | null;
}

/** "310260" / "310 260" / "310-260" -> "310-260"; null when it is not an MCC+MNC. */
export function plmnCode(oper: string): string | null {
  const m = /^(\d{3})[\s-]?(\d{2,3})$/.exec(oper.trim());
  return m ? `${m[1]}-${m[2]}` : null;
}

/**
 * +COPS: <mode>[,<format>,<oper>[,<AcT>]] (27.007 7.3), the answer to AT+COPS?.
 * <oper> quoted (the standard) or not (some firmware); <AcT> present or not.
 * A numeric <oper> (format 2) is an MCC/MNC code, reported as `code`, never as a name.
 */
export function parseCops(line: string): CopsInfo | null {
  if (!line.startsWith('+COPS:')) return null;
  const f = splitFields(afterPrefix(line, '+COPS:')).map((x) => x.value);
  const mode = intOrNull(f[0]);
  if (mode === null) return null;
  const fmt = intOrNull(f[1]);
  const format = fmt === null ? null : (COPS_FORMATS[fmt] ?? null);
  const oper = f[2]?.trim() ?? '';
  const act = intOrNull(f[3]);
  if (oper === '' || (fmt !== null && format === null)) return { mode, format, operator: null, code: null, act };
  if (format === 'numeric') return { mode, format, operator: null, code: plmnCode(oper), act };
  const code = plmnCode(oper);
  return { mode, format, operator: code ? null : oper, code, act };
}
