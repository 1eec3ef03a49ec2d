/**
 * USSD, AT+CUSD (3GPP TS 27.007 7.15): AT+CUSD=1,<str>,<dcs> sends a code
 * such as "*100#"; the network's answer comes as +CUSD: <m>[,<str>,<dcs>]
 * (m: 0 no further action, 1 further action required, 2 terminated by the
 * network, 4 not supported, 5 timeout). Huawei E-series want the code and
 * give the answer as 7-bit packed hex (dcs 15).
 */
import { afterPrefix, intOrNull, splitFields } from './fields.js';
import { fromGsm7, packSeptets, toGsm7, unpackSeptets } from './pdu.js';

export function checkUssdCode(code: string): string {
  const c = code.trim();
  if (!/^[0-9*#+]{1,40}$/.test(c)) throw new RangeError(`USSD code "${c}" is not made of digits, * and # (e.g. *100#)`);
  return c;
}

export function formatCusd(code: string, packed: boolean): string {
  const c = checkUssdCode(code);
  const str = packed
    ? packSeptets(toGsm7(c) ?? [])
        .toString('hex')
        .toUpperCase()
    : c;
  return `AT+CUSD=1,"${str}",15`;
}

export interface UssdResult {
  status: number;
  text: string | null;
  dcs: number | null;
}

/** +CUSD: <m>[,<str>,<dcs>]; `packed`: the string is 7-bit packed hex (Huawei) or UCS-2 hex (dcs 72). */
export function parseCusd(line: string, packed = false): UssdResult | null {
  if (!line.startsWith('+CUSD:')) return null;
  const f = splitFields(afterPrefix(line, '+CUSD:'));
  const status = intOrNull(f[0]?.value);
  if (status === null) return null;
  const dcs = intOrNull(f[2]?.value);
  let text = f[1] === undefined ? null : f[1].value;
  if (text !== null && /^([0-9A-Fa-f]{2})+$/.test(text)) {
    // UCS-2 is whole 16-bit units: an odd number of octets is not UCS-2 and is left as sent (swap16 would throw).
    if (dcs === 72) {
      if (text.length % 4 === 0) text = Buffer.from(text, 'hex').swap16().toString('utf16le');
    } else if (packed) {
      const bytes = Buffer.from(text, 'hex');
      text = fromGsm7(unpackSeptets(bytes, Math.floor((bytes.length * 8) / 7))).replace(/\r$/, '');
    }
  }
  return { status, text, dcs };
}
