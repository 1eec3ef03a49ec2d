/**
 * SMS, 3GPP TS 27.005: AT+CMGF (3.2.3) text/PDU mode, AT+CMGS (3.5.1 text,
 * 4.3 PDU) with its "> " prompt and +CMGS: <mr>, +CMTI (3.4.1) new message
 * indication, AT+CMGL (3.4.2 text, 4.1 PDU) list of stored messages,
 * AT+CMGR (3.4.3 text, 4.4 PDU), AT+CMGD (3.5.4).
 */
import { checkNumber } from './calls.js';
import { afterPrefix, intOrNull, splitFields } from './fields.js';
import { type DecodedPdu, decodePdu, encodeSubmit, type SubmitPart } from './pdu.js';

/** Ctrl-Z ends the message body after the prompt; ESC cancels it (27.005 3.5.1). */
export const CTRL_Z = '\x1a';
export const ESC = '\x1b';

/**
 * Characters that are the same byte in the GSM 7-bit alphabet and in ASCII, so a
 * text made only of them passes through text mode whatever AT+CSCS says.
 */
const TEXT_MODE_SAFE = /^[A-Za-z0-9 !"#%&'()*+,\-./:;<=>?\n]*$/;

export interface SmsStep {
  mode: 'text' | 'pdu';
  /** AT+CMGS="<da>" (text) or AT+CMGS=<length> (PDU). */
  command: string;
  /** Sent after the "> " prompt, before Ctrl-Z. */
  body: string;
}

/**
 * How to send a text: one text-mode message when it is short and plain; otherwise PDUs
 * (GSM 7-bit or UCS-2, concatenated with reference `ref` when long).
 */
export function planSms(to: string, text: string, ref: number): SmsStep[] {
  const n = checkNumber(to, 'to');
  if (text.length === 0) throw new RangeError('SMS text is empty');
  if (text.length > 2000) throw new RangeError(`SMS text is ${text.length} characters; at most 2000 are sent`);
  if (text.length <= 160 && TEXT_MODE_SAFE.test(text)) {
    return [{ mode: 'text', command: `AT+CMGS="${n}"`, body: text }];
  }
  return encodeSubmit(n, text, ref).map((p: SubmitPart) => ({
    mode: 'pdu' as const,
    command: `AT+CMGS=${p.tpduLength}`,
    body: p.hex,
  }));
}

/** +CMGS: <mr>[,<scts>] (27.005 3.5.1). */
export function parseCmgs(line: string): number | null {
  if (!line.startsWith('+CMGS:')) return null;
  return intOrNull(splitFields(afterPrefix(line, '+CMGS:'))[0]?.value);
}

/** The highest storage index read or deleted (formatCmgr, formatCmgd; no SIM or modem stores more). */
export const MAX_SMS_INDEX = 9999;

/**
 * +CMTI: <mem>,<index> (27.005 3.4.1). <mem> is a storage name (3.2.2: "SM", "ME", "MT",
 * "BM", "SR", "TA"; quoted by the standard, bare on some firmware); <index> is a location
 * number: digits only, 0..MAX_SMS_INDEX. Anything else (a negative, signed, fractional,
 * hex or empty index, no memory) is not a +CMTI: null, so no read is ever sent for it.
 */
export function parseCmti(line: string): { mem: string; index: number } | null {
  if (!line.startsWith('+CMTI:')) return null;
  const f = splitFields(afterPrefix(line, '+CMTI:')).map((x) => x.value);
  if (f.length !== 2) return null;
  const mem = (f[0] ?? '').trim();
  const raw = (f[1] ?? '').trim();
  if (!/^[A-Za-z][A-Za-z0-9_]{0,7}$/.test(mem) || !/^\d{1,4}$/.test(raw)) return null;
  const index = Number(raw);
  return index <= MAX_SMS_INDEX ? { mem, index } : null;
}

/** The answer to AT+CMGR=<i> in PDU mode: "+CMGR: <stat>,[<alpha>],<length>" then the PDU line (27.005 4.4). */
export function parseCmgrPdu(lines: readonly string[]): DecodedPdu | null {
  const at = lines.findIndex((l) => l.startsWith('+CMGR:'));
  if (at < 0) return null;
  const pdu = lines[at + 1];
  if (!pdu) return null;
  return decodePdu(pdu.trim());
}

/**
 * The answer to AT+CMGR=<i> in text mode (27.005 3.4.3):
 * +CMGR: <stat>,<oa>,[<alpha>],<scts>[,...] then the text (possibly several lines).
 */
export function parseCmgrText(lines: readonly string[]): { from: string; text: string; at: string | null } | null {
  const at = lines.findIndex((l) => l.startsWith('+CMGR:'));
  if (at < 0) return null;
  const f = splitFields(afterPrefix(lines[at] as string, '+CMGR:')).map((x) => x.value);
  return { from: f[1] ?? '', text: lines.slice(at + 1).join('\n'), at: f[3] ? f[3] : null };
}

/** One stored message as AT+CMGL lists it in PDU mode. */
export interface CmglEntry {
  index: number;
  /** <stat> (27.005 3.1): 0 received unread, 1 received read, 2 stored unsent, 3 stored sent. */
  stat: number;
  /** The PDU as hex, SMSC prefix included (as AT+CMGR gives it). */
  pdu: string;
}

/**
 * The answer to AT+CMGL=<stat> in PDU mode (27.005 4.1): for each message
 * "+CMGL: <index>,<stat>,[<alpha>],<length>" then the PDU on its own line.
 * Entries whose header does not parse, or with no PDU line after them, are
 * left out (the rest of the list still counts).
 */
export function parseCmglPdu(lines: readonly string[]): CmglEntry[] {
  const out: CmglEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.startsWith('+CMGL:')) continue;
    const f = splitFields(afterPrefix(line, '+CMGL:')).map((x) => x.value);
    const index = intOrNull(f[0]);
    const stat = intOrNull(f[1]);
    const pdu = lines[i + 1]?.trim();
    if (index === null || stat === null || !pdu || pdu.startsWith('+CMGL:')) continue;
    out.push({ index, stat, pdu });
    i++;
  }
  return out;
}

/** AT+CMGL=4 (PDU mode): every stored message, read or not (27.005 4.1, <stat> 4 = all). */
export const CMGL_ALL_PDU = 'AT+CMGL=4';

/** The PDU line of an AT+CMGR=<i> answer in PDU mode (as stored, for a stable identity of the message). */
export function cmgrPduLine(lines: readonly string[]): string | null {
  const at = lines.findIndex((l) => l.startsWith('+CMGR:'));
  return at < 0 ? null : (lines[at + 1]?.trim() ?? null) || null;
}

export function formatCmgr(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > MAX_SMS_INDEX)
    throw new RangeError(`SMS index ${index} is not 0..${MAX_SMS_INDEX}`);
  return `AT+CMGR=${index}`;
}

export function formatCmgd(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > MAX_SMS_INDEX)
    throw new RangeError(`SMS index ${index} is not 0..${MAX_SMS_INDEX}`);
  return `AT+CMGD=${index}`;
}
