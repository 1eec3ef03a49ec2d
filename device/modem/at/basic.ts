/**
 * Start-up, identity and SIM state.
 *
 * - ATE0 (V.250 6.2.4) echo off; AT+CMEE=2 (27.007 9.1) verbose +CME ERROR;
 *   AT+CLIP=1 (27.007 7.6) caller id with RING; AT+CRC=1 (27.007 6.11)
 *   +CRING: VOICE instead of RING; AT+CREG=2 (27.007 7.2) registration URCs
 *   with LAC/CI.
 * - AT+CGMI (27.007 5.1), AT+CGMM (5.2), AT+CGMR (5.3), AT+CGSN (5.4, IMEI),
 *   AT+CIMI (5.6, IMSI): bare text lines, some modems prefix them
 *   ("+CGMI: SIMCOM INCORPORATED").
 * - AT+CPIN? (27.007 8.3): READY, SIM PIN, SIM PUK, ... or +CME ERROR 10
 *   when there is no SIM.
 */
import { afterPrefix } from './fields.js';
import type { FinalResult } from './results.js';

/** Commands sent after the port opens, before the vendor profile's own. */
export const INIT_COMMANDS: readonly string[] = ['ATE0', 'AT+CMEE=2', 'AT+CLIP=1', 'AT+CRC=1', 'AT+CREG=2'];

/**
 * The value of an identity reply: the first non-empty line, with an optional
 * "+CGMI:"-style prefix and quotes removed. "IMEI: 8677..." too (some Huawei).
 */
export function parseIdentity(lines: readonly string[], prefix: string): string | null {
  for (const l of lines) {
    let v = afterPrefix(l, prefix);
    v = v.replace(/^IMEI:\s*/i, '').trim();
    v = v.replace(/^"(.*)"$/, '$1').trim();
    if (v !== '') return v;
  }
  return null;
}

export type SimState = 'ready' | 'pin' | 'puk' | 'missing' | 'other';

export interface SimStatus {
  state: SimState;
  /** The code as the modem said it ("SIM PIN", "PH-SIM PIN", "SIM not inserted"). */
  detail: string;
}

/** +CPIN: <code> (27.007 8.3). */
export function parseCpin(line: string): SimStatus {
  const code = afterPrefix(line, '+CPIN:')
    .replace(/^"(.*)"$/, '$1')
    .trim();
  const upper = code.toUpperCase();
  if (upper === 'READY') return { state: 'ready', detail: code };
  if (upper === 'SIM PIN' || upper === 'PH-SIM PIN' || upper === 'SIM PIN2') return { state: 'pin', detail: code };
  if (upper === 'SIM PUK' || upper === 'SIM PUK2' || upper === 'PH-SIM PUK') return { state: 'puk', detail: code };
  if (upper === 'NOT INSERTED' || upper === 'SIM NOT INSERTED' || upper === 'NOT READY')
    return { state: 'missing', detail: code };
  return { state: 'other', detail: code };
}

/** An AT+CPIN? that failed: +CME ERROR 10 (SIM not inserted), 13 (SIM failure), 11/12 (PIN/PUK). */
export function simStateFromError(final: FinalResult): SimStatus | null {
  if (final.kind !== 'cme') return null;
  switch (final.code) {
    case 10:
    case 13:
    case 15:
      return { state: 'missing', detail: final.text ?? String(final.code) };
    case 11:
    case 5:
      return { state: 'pin', detail: final.text ?? String(final.code) };
    case 12:
      return { state: 'puk', detail: final.text ?? String(final.code) };
    case 14:
      return { state: 'other', detail: final.text ?? 'SIM busy' };
    default:
      return null;
  }
}

export function formatCpinEntry(pin: string): string {
  if (!/^\d{4,8}$/.test(pin)) throw new RangeError(`PIN must be 4 to 8 digits (got ${pin.length} characters)`);
  return `AT+CPIN="${pin}"`;
}
