/**
 * Property tests of the URC table (device/modem/at/urc.ts) and of the line
 * framing under it (device/modem/at/channel.ts, lines.ts):
 *   - every entry of the table has a generator here, and every line it makes
 *     (3GPP TS 27.007/27.005 syntax and the vendor forms the table names) is
 *     classified as that entry's kind;
 *   - no line at all makes the table throw (any UTF-16, and junk after each
 *     known prefix, in both USSD modes);
 *   - a stream of lines split into serial chunks at any points gives the same
 *     URCs, in the same order, as the whole stream at once.
 * A failure prints its seed; replay with CALLBOX_FC_SEED (test/helpers/property.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AtChannel } from '../device/modem/at/channel.js';
import { matchUrc, URC_TABLE, type Urc } from '../device/modem/at/urc.js';
import { assertProperty } from './helpers/property.js';

const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
const phone = fc.oneof(
  digits(4, 15).map((d) => `+${d}`),
  digits(3, 12),
);
const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9A-F]{1,${n}}$`));
const quoted = (a: fc.Arbitrary<string>) => fc.tuple(a, fc.boolean()).map(([v, q]) => (q ? `"${v}"` : v));
const sp = fc.constantFrom('', ' ');
const clccFields = fc
  .tuple(
    fc.integer({ min: 1, max: 7 }),
    fc.integer({ min: 0, max: 1 }),
    fc.integer({ min: 0, max: 7 }),
    fc.integer({ min: 0, max: 2 }),
    fc.integer({ min: 0, max: 1 }),
    fc.option(fc.tuple(phone, fc.constantFrom(129, 145)), { nil: null }),
  )
  .map(([i, d, s, m, p, n]) => `${i},${d},${s},${m},${p}${n ? `,"${n[0]}",${n[1]}` : ''}`);
const text = fc.stringMatching(/^[A-Za-z0-9 .:]{0,30}$/);

/** For each entry of URC_TABLE (by name): lines it must classify, and the URC type they give. */
const GENERATORS: Record<string, { line: fc.Arbitrary<string>; type: Urc['type'] }> = {
  RING: { line: fc.constant('RING'), type: 'ring' },
  '+CRING': { line: fc.constantFrom('VOICE', 'FAX', 'ASYNC', 'REL ASYNC').map((t) => `+CRING: ${t}`), type: 'ring' },
  '+CLIP': {
    line: fc
      .tuple(
        fc.option(phone, { nil: '' }),
        fc.constantFrom(128, 129, 145),
        fc.constantFrom('', ',,,,0', ',,,,1', ',,,,2', ',,,"Ann",0'),
      )
      .map(([n, t, rest]) => `+CLIP: "${n}",${t}${rest}`),
    type: 'clip',
  },
  '+CLCC': { line: fc.tuple(sp, clccFields).map(([s, f]) => `+CLCC:${s}${f}`), type: 'call' },
  '+QIND ccinfo': {
    line: fc.tuple(fc.constantFrom('"ccinfo"', 'ccinfo'), clccFields).map(([k, f]) => `+QIND: ${k},${f}`),
    type: 'call',
  },
  '+QIND': {
    line: fc.constantFrom('+QIND: "csq",20,99', '+QIND: SMS DONE', '+QIND: "act","LTE"', '+QIND: PB DONE'),
    type: 'ignored',
  },
  'NO CARRIER': { line: fc.constant('NO CARRIER'), type: 'callEnd' },
  '+CTTS/+QTTS': {
    line: fc
      .tuple(fc.constantFrom('+CTTS', '+QTTS'), fc.constantFrom(':', ': '), fc.integer({ min: 0, max: 9 }))
      .map(([v, sep, st]) => `${v}${sep}${st}`),
    type: 'tts',
  },
  '^CEND': {
    line: fc
      .tuple(fc.integer({ min: 1, max: 7 }), fc.nat(9999), fc.nat(255), fc.option(fc.nat(127), { nil: null }))
      .map(([i, d, e, c]) => `^CEND:${i},${d},${e}${c === null ? '' : `,${c}`}`),
    type: 'callEnd',
  },
  'VOICE CALL: END': { line: digits(6, 6).map((d) => `VOICE CALL: END: ${d}`), type: 'callEnd' },
  'VOICE CALL: BEGIN': { line: fc.constant('VOICE CALL: BEGIN'), type: 'ignored' },
  MISSED_CALL: {
    line: fc
      .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 10, max: 59 }), phone)
      .map(([h, m, n]) => `MISSED_CALL: ${h}:${m}AM ${n}`),
    type: 'callEnd',
  },
  '+CCWA': {
    line: fc
      .tuple(phone, fc.constantFrom(129, 145), fc.constantFrom(1, 7))
      .map(([n, t, c]) => `+CCWA: "${n}",${t},${c}`),
    type: 'waiting',
  },
  '+CMTI': {
    line: fc
      .tuple(quoted(fc.constantFrom('SM', 'ME', 'MT', 'SR', 'BM')), sp, fc.nat(9999))
      .map(([m, s, i]) => `+CMTI: ${m},${s}${i}`),
    type: 'sms',
  },
  '+CREG/+CGREG/+CEREG': {
    line: fc
      .tuple(
        fc.constantFrom('+CREG:', '+CGREG:', '+CEREG:'),
        sp,
        fc.nat(11),
        fc.option(fc.tuple(hex(4), hex(8), fc.option(fc.nat(9), { nil: null })), { nil: null }),
      )
      .map(
        ([p, s, st, loc]) =>
          `${p}${s}${st}${loc ? `,"${loc[0]}","${loc[1]}"${loc[2] === null ? '' : `,${loc[2]}`}` : ''}`,
      ),
    type: 'registration',
  },
  '+CUSD': {
    line: fc
      .tuple(fc.nat(5), fc.option(fc.tuple(text, fc.constantFrom(15, 72, 0)), { nil: null }))
      .map(([m, t]) => `+CUSD: ${m}${t ? `,"${t[0]}",${t[1]}` : ''}`),
    type: 'ussd',
  },
  '^RSSI': { line: fc.nat(99).map((n) => `^RSSI: ${n}`), type: 'signal' },
  '^HCSQ': {
    line: fc.oneof(
      fc
        .tuple(fc.constantFrom('LTE', 'WCDMA', 'GSM'), fc.nat(255), fc.nat(255), fc.nat(255))
        .map(([m, a, b, c]) => `^HCSQ:"${m}",${a},${b},${c}`),
      fc.constant('^HCSQ: "NOSERVICE"'),
    ),
    type: 'signal',
  },
  boot: {
    line: fc.oneof(
      fc.constantFrom('RDY', 'START'),
      digits(1, 2).map((d) => `*ATREADY: ${d}`),
    ),
    type: 'boot',
  },
  '+CPIN': {
    line: fc.constantFrom('READY', 'NOT INSERTED', 'SIM PIN', 'SIM PUK', 'NOT READY').map((c) => `+CPIN: ${c}`),
    type: 'sim',
  },
  chatter: {
    line: fc.constantFrom(
      'SMS Ready',
      'SMS DONE',
      'Call Ready',
      'PB DONE',
      '+CFUN: 1',
      '^BOOT:12345,0,0,0,6',
      '^MODE:5,4',
      '^SRVST:2',
      '^SIMST:1',
      '+CIEV: "MESSAGE",1',
      '+CTZV: 23/11/26,10:00:00,+08',
      '+CTZE: "+08",0,"2023/11/26,10:00:00"',
      '*PSUTTZ: 2023,11,26,10,0,0,"+8",0',
      'DST: 0',
      '+CGEV: ME PDN ACT 1',
      '+CPMS: "SM",1,30',
      '+QUSIM: 1',
      '+CSMINS: 0,1',
      '+QIURC: "pdpdeact",1',
      'OPL DONE',
      'PNN DONE',
    ),
    type: 'ignored',
  },
};

const known = fc.oneof(...Object.values(GENERATORS).map((g) => g.line));

/** Lines the table does not know, or mangled known ones (no CR/LF inside: a line is a line). */
const PREFIXES = [
  'RING',
  '+CRING:',
  '+CLIP:',
  '+CLCC:',
  '+QIND:',
  'NO CARRIER',
  '^CEND:',
  'VOICE CALL:',
  'MISSED_CALL:',
  '+CCWA:',
  '+CMTI:',
  '+CREG:',
  '+CGREG:',
  '+CEREG:',
  '+CUSD:',
  '^RSSI:',
  '^HCSQ:',
  '*ATREADY:',
  '+CPIN:',
  '+CSQ:',
  '+COPS:',
];
const unknown = fc.oneof(
  fc.stringMatching(/^[ -~]{1,40}$/),
  fc.tuple(fc.constantFrom(...PREFIXES), fc.stringMatching(/^[ -~]{0,20}$/)).map(([p, r]) => `${p}${r}`),
);

function channel(): { ch: AtChannel; urcs: Urc[] } {
  const urcs: Urc[] = [];
  const ch = new AtChannel(
    {
      onUrc: (line) => {
        const u = matchUrc(line);
        if (u) urcs.push(u);
        return u !== null;
      },
      onDiscard: () => {},
      onTimeout: () => {},
    },
    { quietMs: 100, timeoutMs: 1000 },
  );
  ch.attach(async () => {});
  return { ch, urcs };
}

describe('URC table (properties)', () => {
  it('has a generator here for every entry of the table (a new entry needs one)', () => {
    expect(Object.keys(GENERATORS).sort()).toEqual(URC_TABLE.map((e) => e.name).sort());
  });

  it('classifies every line each entry stands for, as that entry', () => {
    for (const [name, g] of Object.entries(GENERATORS)) {
      assertProperty(
        fc.property(g.line, (line) => {
          const entry = URC_TABLE.find((e) => e.test.test(line));
          expect(entry?.name, line).toBe(name);
          expect(matchUrc(line)?.type, line).toBe(g.type);
        }),
        { numRuns: 60 },
      );
    }
  });

  it('never throws, whatever the line (any UTF-16; junk after each known prefix; both USSD modes)', () => {
    assertProperty(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 80 }),
          fc.tuple(fc.constantFrom(...PREFIXES), fc.string({ unit: 'binary', maxLength: 60 })).map(([p, r]) => p + r),
          // Hex strings with every DCS (odd octet counts in UCS-2 among them): the decoding branches.
          fc
            .tuple(fc.stringMatching(/^([0-9A-Fa-f]{2}){0,12}[0-9A-Fa-f]?$/), fc.constantFrom(0, 15, 68, 72, 17))
            .map(([h, d]) => `+CUSD: 0,"${h}",${d}`),
        ),
        fc.boolean(),
        (line, packed) => {
          expect(() => matchUrc(line, { ussdPacked: packed })).not.toThrow();
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a UCS-2 USSD string with an odd number of octets is kept as sent, not thrown on (found by the property above)', () => {
    expect(matchUrc('+CUSD: 0,"A0",72')).toMatchObject({ type: 'ussd', result: { status: 0, text: 'A0', dcs: 72 } });
    expect(matchUrc('+CUSD: 0,"00480069",72')).toMatchObject({ result: { text: 'Hi' } });
  });

  it('a stream of lines split into serial chunks at any points gives the same URCs as the whole stream', () => {
    assertProperty(
      fc.property(
        fc.array(fc.oneof({ weight: 4, arbitrary: known }, unknown), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(10_000), { maxLength: 40 }),
        fc.constantFrom('\r\n', '\r', '\n'),
        (lines, cutsRaw, eol) => {
          const wire = lines.map((l) => `\r\n${l}${eol}`).join('');
          // The framer trims each line (lines.ts): the table sees "RING" for "RING ".
          const expected = lines.map((l) => matchUrc(l.trim())).filter((u): u is Urc => u !== null);
          const whole = channel();
          whole.ch.feed(Buffer.from(wire, 'latin1'));
          const buf = Buffer.from(wire, 'latin1');
          const cuts = [...new Set(cutsRaw.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
          const split = channel();
          let at = 0;
          for (const c of [...cuts, buf.length]) {
            split.ch.feed(buf.subarray(at, c));
            at = c;
          }
          expect(split.urcs).toEqual(whole.urcs);
          expect(whole.urcs).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
