/**
 * SMS PDUs: 3GPP TS 23.040 9.2.2 (SMS-DELIVER, SMS-SUBMIT), 9.2.3.24.1
 * (concatenation UDH, 8-bit reference) and TS 23.038 6.2.1 (GSM 7-bit
 * default alphabet and its extension table), UCS-2 for everything else.
 * Pure functions; the emulator decodes what the driver encodes.
 */

/** TS 23.038 6.2.1 default alphabet, index = septet. \x1b is the escape to the extension table. */
const GSM7 =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** TS 23.038 6.2.1.1 extension table (after ESC). */
const GSM7_EXT: Readonly<Record<string, number>> = {
  '\f': 0x0a,
  '^': 0x14,
  '{': 0x28,
  '}': 0x29,
  '\\': 0x2f,
  '[': 0x3c,
  '~': 0x3d,
  ']': 0x3e,
  '|': 0x40,
  '€': 0x65,
};
const GSM7_INDEX = new Map<string, number>([...GSM7].map((c, i) => [c, i]));
const GSM7_EXT_REV = new Map<number, string>(Object.entries(GSM7_EXT).map(([c, v]) => [v, c]));

/** Septets for text in the GSM 7-bit alphabet, or null when some character is not in it. */
export function toGsm7(text: string): number[] | null {
  const out: number[] = [];
  for (const ch of text) {
    const i = GSM7_INDEX.get(ch);
    if (i !== undefined && i !== 0x1b) {
      out.push(i);
      continue;
    }
    const e = GSM7_EXT[ch];
    if (e === undefined) return null;
    out.push(0x1b, e);
  }
  return out;
}

export function fromGsm7(septets: readonly number[]): string {
  let out = '';
  for (let i = 0; i < septets.length; i++) {
    const s = septets[i] as number;
    if (s === 0x1b) {
      const next = septets[++i];
      out += next === undefined ? '' : (GSM7_EXT_REV.get(next) ?? ' ');
    } else out += GSM7[s] ?? '?';
  }
  return out;
}

/** Pack header bytes then septets LSB first, with fill bits up to a septet boundary (TS 23.040 9.2.3.24). */
export function packSeptets(septets: readonly number[], header: readonly number[] = []): Buffer {
  const headerBits = header.length * 8;
  const start = Math.ceil(headerBits / 7) * 7;
  const totalBits = start + septets.length * 7;
  const out = Buffer.alloc(Math.ceil(totalBits / 8));
  header.forEach((b, i) => {
    out[i] = b;
  });
  let bit = start;
  for (const s of septets) {
    for (let k = 0; k < 7; k++) {
      if ((s >> k) & 1) out[bit >> 3] = (out[bit >> 3] as number) | (1 << (bit & 7));
      bit++;
    }
  }
  return out;
}

/** Unpack `count` septets from the start of data (header septets included; the caller drops them). */
export function unpackSeptets(data: Buffer, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    let v = 0;
    for (let k = 0; k < 7; k++) {
      const bit = i * 7 + k;
      const byte = data[bit >> 3];
      if (byte === undefined) return out;
      if ((byte >> (bit & 7)) & 1) v |= 1 << k;
    }
    out.push(v);
  }
  return out;
}

function encodeAddress(number: string): Buffer {
  const intl = number.startsWith('+');
  const digits = number.replace(/^\+/, '');
  if (!/^[0-9*#]{1,20}$/.test(digits)) throw new RangeError(`number "${number}" cannot be put in a PDU`);
  const sem = digits.replace(/\*/g, 'A').replace(/#/g, 'B') + (digits.length % 2 ? 'F' : '');
  let swapped = '';
  for (let i = 0; i < sem.length; i += 2) swapped += sem[i + 1] + (sem[i] as string);
  return Buffer.concat([Buffer.from([digits.length, intl ? 0x91 : 0x81]), Buffer.from(swapped, 'hex')]);
}

/** An address field at data[at]: returns the number and the offset after it. */
function decodeAddress(data: Buffer, at: number): { number: string; next: number } {
  const len = data[at] ?? 0;
  const type = data[at + 1] ?? 0x81;
  const octets = Math.ceil(len / 2);
  const body = data.subarray(at + 2, at + 2 + octets);
  if ((type & 0x70) === 0x50) {
    // Alphanumeric (TS 23.040 9.1.2.5): GSM 7-bit packed, len counts semi-octets.
    return { number: fromGsm7(unpackSeptets(body, Math.floor((len * 4) / 7))), next: at + 2 + octets };
  }
  let digits = '';
  for (const b of body) digits += (b & 0x0f).toString(16) + (b >> 4).toString(16);
  digits = digits.slice(0, len).replace(/a/g, '*').replace(/b/g, '#');
  return { number: ((type & 0x70) === 0x10 ? '+' : '') + digits, next: at + 2 + octets };
}

export type Alphabet = 'gsm7' | '8bit' | 'ucs2';

/** TS 23.038 4: the alphabet of a data coding scheme. */
export function alphabetOf(dcs: number): Alphabet {
  if ((dcs & 0xc0) === 0x00 || (dcs & 0xc0) === 0x40) {
    const a = (dcs >> 2) & 3;
    return a === 1 ? '8bit' : a === 2 ? 'ucs2' : 'gsm7';
  }
  if ((dcs & 0xf0) === 0xf0) return dcs & 0x04 ? '8bit' : 'gsm7';
  if ((dcs & 0xf0) === 0xe0) return 'ucs2';
  return 'gsm7';
}

export interface Concat {
  ref: number;
  total: number;
  seq: number;
}

export interface SubmitPart {
  /** TPDU in hex, with "00" (default SMSC) in front, for AT+CMGS in PDU mode. */
  hex: string;
  /** <length> for AT+CMGS=<length>: TPDU octets without the SMSC part (TS 27.005 3.5.1). */
  tpduLength: number;
}

const SINGLE = { gsm7: 160, ucs2: 70 } as const;
const PART = { gsm7: 153, ucs2: 67 } as const;

function splitGsm7(septets: number[]): number[][] {
  if (septets.length <= SINGLE.gsm7) return [septets];
  const parts: number[][] = [];
  let i = 0;
  while (i < septets.length) {
    let end = Math.min(i + PART.gsm7, septets.length);
    if (septets[end - 1] === 0x1b && end < septets.length) end--; // keep ESC with its character
    parts.push(septets.slice(i, end));
    i = end;
  }
  return parts;
}

function splitUcs2(text: string): string[] {
  if (text.length <= SINGLE.ucs2) return [text];
  const parts: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(i + PART.ucs2, text.length);
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff && end < text.length) end--; // keep surrogate pairs whole
    parts.push(text.slice(i, end));
    i = end;
  }
  return parts;
}

/** The text of each part a message is sent in (GSM 7-bit 160/153, else UCS-2 70/67). */
export function splitText(text: string): string[] {
  const septets = toGsm7(text);
  return septets ? splitGsm7(septets).map((p) => fromGsm7(p)) : splitUcs2(text);
}

/** SMS-SUBMIT PDUs for a text: GSM 7-bit when it fits the alphabet, else UCS-2; concatenated when long. */
export function encodeSubmit(to: string, text: string, ref: number): SubmitPart[] {
  const da = encodeAddress(to);
  const septets = toGsm7(text);
  const bodies: { dcs: number; udl: number; ud: Buffer; udh: boolean }[] = [];
  if (septets) {
    const parts = splitGsm7(septets);
    parts.forEach((p, i) => {
      const header = parts.length > 1 ? [0x05, 0x00, 0x03, ref & 0xff, parts.length, i + 1] : [];
      const ud = packSeptets(p, header);
      bodies.push({ dcs: 0x00, udl: Math.ceil((header.length * 8) / 7) + p.length, ud, udh: header.length > 0 });
    });
  } else {
    const parts = splitUcs2(text);
    parts.forEach((p, i) => {
      const header =
        parts.length > 1 ? Buffer.from([0x05, 0x00, 0x03, ref & 0xff, parts.length, i + 1]) : Buffer.alloc(0);
      const ud = Buffer.concat([header, Buffer.from(p, 'utf16le').swap16()]);
      bodies.push({ dcs: 0x08, udl: ud.length, ud, udh: header.length > 0 });
    });
  }
  return bodies.map((b) => {
    // First octet: SMS-SUBMIT (MTI 01), no validity period, UDHI when concatenated (TS 23.040 9.2.2.2).
    const tpdu = Buffer.concat([Buffer.from([b.udh ? 0x41 : 0x01, 0x00]), da, Buffer.from([0x00, b.dcs, b.udl]), b.ud]);
    return { hex: `00${tpdu.toString('hex').toUpperCase()}`, tpduLength: tpdu.length };
  });
}

export interface DecodedPdu {
  type: 'deliver' | 'submit';
  /** Originator (deliver) or destination (submit). */
  address: string;
  text: string;
  /** Service centre time stamp (deliver), ISO 8601. */
  at: string | null;
  concat: Concat | null;
}

function decodeScts(b: Buffer): string | null {
  if (b.length < 7) return null;
  const d = (x: number) => (x & 0x0f) * 10 + (x >> 4);
  const tzByte = b[6] as number;
  const quarters = (tzByte & 0x07) * 10 + (tzByte >> 4);
  const sign = tzByte & 0x08 ? -1 : 1;
  const year = 2000 + d(b[0] as number);
  const utc = Date.UTC(
    year,
    d(b[1] as number) - 1,
    d(b[2] as number),
    d(b[3] as number),
    d(b[4] as number),
    d(b[5] as number),
  );
  if (Number.isNaN(utc)) return null;
  return new Date(utc - sign * quarters * 15 * 60_000).toISOString();
}

function decodeUd(
  data: Buffer,
  at: number,
  dcs: number,
  udl: number,
  udhi: boolean,
): { text: string; concat: Concat | null } {
  const ud = data.subarray(at);
  let concat: Concat | null = null;
  let headerLen = 0;
  if (udhi && ud.length > 0) {
    headerLen = (ud[0] as number) + 1;
    let i = 1;
    while (i + 1 < headerLen) {
      const iei = ud[i] as number;
      const len = ud[i + 1] as number;
      if (iei === 0x00 && len === 3)
        concat = { ref: ud[i + 2] as number, total: ud[i + 3] as number, seq: ud[i + 4] as number };
      if (iei === 0x08 && len === 4)
        concat = {
          ref: ((ud[i + 2] as number) << 8) | (ud[i + 3] as number),
          total: ud[i + 4] as number,
          seq: ud[i + 5] as number,
        };
      i += 2 + len;
    }
  }
  const alphabet = alphabetOf(dcs);
  if (alphabet === 'gsm7') {
    const skip = Math.ceil((headerLen * 8) / 7);
    return { text: fromGsm7(unpackSeptets(ud, udl).slice(skip)), concat };
  }
  const body = ud.subarray(headerLen, udl);
  if (alphabet === 'ucs2') {
    const even = Buffer.from(body.subarray(0, body.length - (body.length % 2)));
    return { text: even.swap16().toString('utf16le'), concat };
  }
  return { text: body.toString('latin1'), concat };
}

/** Decodes an SMS-DELIVER or SMS-SUBMIT PDU with its SMSC prefix (as AT+CMGR and AT+CMGS carry them). */
export function decodePdu(hex: string): DecodedPdu {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new RangeError('PDU is not an even-length hex string');
  const data = Buffer.from(hex, 'hex');
  let i = (data[0] ?? 0) + 1; // SMSC information
  const first = data[i++];
  if (first === undefined) throw new RangeError('PDU too short');
  const mti = first & 0x03;
  const udhi = (first & 0x40) !== 0;
  if (mti === 0) {
    const oa = decodeAddress(data, i);
    i = oa.next;
    i++; // PID
    const dcs = data[i++] ?? 0;
    const at = decodeScts(data.subarray(i, i + 7));
    i += 7;
    const udl = data[i++] ?? 0;
    return { type: 'deliver', address: oa.number, at, ...decodeUd(data, i, dcs, udl, udhi) };
  }
  if (mti === 1) {
    i++; // MR
    const da = decodeAddress(data, i);
    i = da.next;
    i++; // PID
    const dcs = data[i++] ?? 0;
    const vpf = (first >> 3) & 0x03;
    i += vpf === 2 ? 1 : vpf === 0 ? 0 : 7;
    const udl = data[i++] ?? 0;
    return { type: 'submit', address: da.number, at: null, ...decodeUd(data, i, dcs, udl, udhi) };
  }
  throw new RangeError(`PDU type ${mti} is neither SMS-DELIVER nor SMS-SUBMIT`);
}

/** SMS-DELIVER PDU (with empty SMSC) for a received text: what the emulator stores. */
export function encodeDeliver(from: string, text: string, at: Date, concat?: Concat): string {
  const oa = encodeAddress(from);
  const bcd = (n: number) => ((n % 10) << 4) | Math.floor(n / 10);
  const scts = Buffer.from([
    bcd(at.getUTCFullYear() % 100),
    bcd(at.getUTCMonth() + 1),
    bcd(at.getUTCDate()),
    bcd(at.getUTCHours()),
    bcd(at.getUTCMinutes()),
    bcd(at.getUTCSeconds()),
    0x00,
  ]);
  const header = concat ? [0x05, 0x00, 0x03, concat.ref, concat.total, concat.seq] : [];
  const septets = toGsm7(text);
  let dcs: number;
  let udl: number;
  let ud: Buffer;
  if (septets) {
    dcs = 0;
    ud = packSeptets(septets, header);
    udl = Math.ceil((header.length * 8) / 7) + septets.length;
  } else {
    dcs = 0x08;
    ud = Buffer.concat([Buffer.from(header), Buffer.from(text, 'utf16le').swap16()]);
    udl = ud.length;
  }
  const tpdu = Buffer.concat([
    Buffer.from([concat ? 0x44 : 0x04]),
    oa,
    Buffer.from([0x00, dcs]),
    scts,
    Buffer.from([udl]),
    ud,
  ]);
  return `00${tpdu.toString('hex').toUpperCase()}`;
}
