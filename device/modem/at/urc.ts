/**
 * Unsolicited result codes: one table of pattern -> parser, in the manner
 * of ModemManager's unsolicited handlers. A line that is not claimed by the
 * command in flight (by its expected prefix) comes here; if no entry
 * matches, the channel counts it as discarded.
 */

import { parseCpin, type SimStatus } from './basic.js';
import {
  type CallerId,
  type ClccLine,
  parseCcwa,
  parseClcc,
  parseClip,
  parseCring,
  parseHuaweiCend,
  parseQindCcinfo,
} from './calls.js';
import { parseHuaweiHcsq, parseHuaweiRssi, parseRegistration, type RegistrationInfo } from './network.js';
import { parseCmti } from './sms.js';
import { parseTtsUrc } from './tts.js';
import { parseCusd, type UssdResult } from './ussd.js';

export type Urc =
  /** RING (V.250) or +CRING: <type> (27.007 6.11). */
  | { type: 'ring'; kind: string }
  /** +CLIP (27.007 7.6), sent after each RING. */
  | { type: 'clip'; caller: CallerId }
  /** Pushed call state: +CLCC with AT+CLCC=1 (SIMCom), +QIND: "ccinfo" (Quectel). */
  | { type: 'call'; call: ClccLine }
  /** A call ended: NO CARRIER, ^CEND (Huawei), VOICE CALL: END (SIMCom), MISSED_CALL (SIMCom). */
  | { type: 'callEnd'; reason: 'no_carrier' | 'cend' | 'voice_call_end' | 'missed_call'; index: number | null }
  /** +CCWA (27.007 7.12). */
  | { type: 'waiting'; caller: CallerId }
  /** +CMTI (27.005 3.4.1). */
  | { type: 'sms'; mem: string; index: number }
  /** +CREG/+CGREG/+CEREG unsolicited form (27.007 7.2, 10.1.20, 10.1.22). */
  | { type: 'registration'; info: RegistrationInfo }
  /** +CUSD (27.007 7.15). */
  | { type: 'ussd'; result: UssdResult }
  /** ^RSSI / ^HCSQ (Huawei) signal reports. */
  | { type: 'signal'; dbm: number | null }
  /** The modem (re)started: RDY, START, *ATREADY. */
  | { type: 'boot'; line: string }
  /** Text-to-speech finished: +CTTS: <n> (SIMCom), +QTTS: <n> (Quectel); 0 = played to the end. */
  | { type: 'tts'; status: number }
  /** +CPIN: sent unsolicited at start-up. */
  | { type: 'sim'; status: SimStatus }
  /** Known chatter with no meaning for us (SMS Ready, ^BOOT, +CFUN: 1, ...). */
  | { type: 'ignored'; line: string };

export interface UrcOptions {
  /** Huawei: +CUSD strings are 7-bit packed hex. */
  ussdPacked?: boolean;
}

interface UrcEntry {
  name: string;
  test: RegExp;
  parse: (line: string, o: UrcOptions) => Urc | null;
}

/** The table. Order matters only where patterns overlap (none do today). */
export const URC_TABLE: readonly UrcEntry[] = [
  { name: 'RING', test: /^RING$/, parse: () => ({ type: 'ring', kind: 'RING' }) },
  { name: '+CRING', test: /^\+CRING:/, parse: (l) => ({ type: 'ring', kind: parseCring(l) ?? 'VOICE' }) },
  {
    name: '+CLIP',
    test: /^\+CLIP:/,
    parse: (l) => {
      const c = parseClip(l);
      return c ? { type: 'clip', caller: c } : null;
    },
  },
  {
    name: '+CLCC',
    test: /^\+CLCC:/,
    parse: (l) => {
      const c = parseClcc(l);
      return c ? { type: 'call', call: c } : null;
    },
  },
  {
    name: '+QIND ccinfo',
    test: /^\+QIND:\s*"?ccinfo"?/i,
    parse: (l) => {
      const c = parseQindCcinfo(l);
      return c ? { type: 'call', call: c } : null;
    },
  },
  { name: '+QIND', test: /^\+QIND:/, parse: (l) => ({ type: 'ignored', line: l }) },
  { name: 'NO CARRIER', test: /^NO CARRIER$/, parse: () => ({ type: 'callEnd', reason: 'no_carrier', index: null }) },
  {
    name: '^CEND',
    test: /^\^CEND:/,
    parse: (l) => ({ type: 'callEnd', reason: 'cend', index: parseHuaweiCend(l)?.index ?? null }),
  },
  {
    name: 'VOICE CALL: END',
    test: /^VOICE CALL:\s*END/,
    parse: () => ({ type: 'callEnd', reason: 'voice_call_end', index: null }),
  },
  { name: 'VOICE CALL: BEGIN', test: /^VOICE CALL:\s*BEGIN/, parse: (l) => ({ type: 'ignored', line: l }) },
  {
    name: 'MISSED_CALL',
    test: /^MISSED_CALL:/,
    parse: () => ({ type: 'callEnd', reason: 'missed_call', index: null }),
  },
  {
    name: '+CCWA',
    test: /^\+CCWA:/,
    parse: (l) => {
      const c = parseCcwa(l);
      return c ? { type: 'waiting', caller: c } : null;
    },
  },
  {
    name: '+CMTI',
    test: /^\+CMTI:/,
    parse: (l) => {
      const m = parseCmti(l);
      return m ? { type: 'sms', mem: m.mem, index: m.index } : null;
    },
  },
  {
    name: '+CREG/+CGREG/+CEREG',
    test: /^\+C(G|E)?REG:/,
    parse: (l) => {
      const r = parseRegistration(l, false);
      return r ? { type: 'registration', info: r } : null;
    },
  },
  {
    name: '+CUSD',
    test: /^\+CUSD:/,
    parse: (l, o) => {
      const r = parseCusd(l, o.ussdPacked ?? false);
      return r ? { type: 'ussd', result: r } : null;
    },
  },
  {
    name: '+CTTS/+QTTS',
    test: /^\+(CTTS|QTTS):/,
    parse: (l) => {
      const t = parseTtsUrc(l);
      return t ? { type: 'tts', status: t.status } : null;
    },
  },
  { name: '^RSSI', test: /^\^RSSI:/, parse: (l) => ({ type: 'signal', dbm: parseHuaweiRssi(l) }) },
  {
    name: '^HCSQ',
    test: /^\^HCSQ:/,
    parse: (l) => {
      const h = parseHuaweiHcsq(l);
      return h ? { type: 'signal', dbm: h.dbm } : null;
    },
  },
  { name: 'boot', test: /^(RDY|START|\*ATREADY:.*)$/, parse: (l) => ({ type: 'boot', line: l }) },
  { name: '+CPIN', test: /^\+CPIN:/, parse: (l) => ({ type: 'sim', status: parseCpin(l) }) },
  {
    name: 'chatter',
    test: /^(SMS Ready|SMS DONE|Call Ready|PB DONE|\+CFUN:|\^BOOT:|\^MODE:|\^SRVST:|\^SIMST:|\^STIN:|\^DSFLOWRPT:|\^ORIG:|\^CONF:|\^CONN:|\+CIEV:|\+CTZV:|\+CTZE:|\+PSUTTZ:|DST:|\*PSUTTZ|\+CGEV:|\+CPMS:|\+QUSIM:|\+CSMINS:|\+QIURC:|OPL DONE|PNN DONE)/,
    parse: (l) => ({ type: 'ignored', line: l }),
  },
];

/** Parse a line as a URC; null when it is none we know. */
export function matchUrc(line: string, o: UrcOptions = {}): Urc | null {
  for (const e of URC_TABLE) {
    if (e.test.test(line)) return e.parse(line, o);
  }
  return null;
}
