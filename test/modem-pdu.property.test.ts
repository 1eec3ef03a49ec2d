/**
 * Property tests of the SMS PDU codec (device/modem/at/pdu.ts, 3GPP TS
 * 23.040 and 23.038): what is encoded decodes to the same text, number,
 * time and concatenation, for GSM 7-bit text (with the extension table),
 * UCS-2 text (any UTF-16, astral characters included), long messages split
 * and joined again, and international and national numbers.
 * A failure prints its seed; replay with CALLBOX_FC_SEED (test/helpers/property.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePdu, encodeDeliver, encodeSubmit, splitText, toGsm7 } from '../device/modem/at/pdu.js';
import { planSms } from '../device/modem/at/sms.js';
import { assertProperty } from './helpers/property.js';

const GSM7_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM7_EXTENSION = '\f^{}\\[~]|€';

/** Text in the GSM 7-bit alphabet, extension characters (two septets each) mixed in. */
const gsm7Text = (maxLength: number) =>
  fc
    .array(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...GSM7_BASIC) }, fc.constantFrom(...GSM7_EXTENSION)), {
      minLength: 1,
      maxLength,
    })
    .map((cs) => cs.join(''));

/** Text that needs UCS-2: at least one character outside GSM 7-bit, any UTF-16 around it. */
const ucs2Text = (maxLength: number) =>
  fc
    .tuple(
      fc.string({ unit: 'binary', maxLength }),
      fc.constantFrom('é€漢', '😀', 'Ж', '\u0000', 'ш', '✓'),
      fc.string({ unit: 'binary', maxLength }),
    )
    .map(([a, b, c]) => a + b + c)
    .filter((t) => toGsm7(t) === null);

const international = fc.stringMatching(/^\+[1-9][0-9]{3,14}$/);
const national = fc.stringMatching(/^[0-9]{1,20}$/);
const withStarHash = fc.stringMatching(/^[0-9*#]{1,20}$/);
const number = fc.oneof(international, national, withStarHash);

/** Every SUBMIT part decodes; they join back to the text; concatenation headers are consistent. */
function roundTripSubmit(to: string, text: string, ref: number): void {
  const parts = encodeSubmit(to, text, ref);
  const decoded = parts.map((p) => decodePdu(p.hex));
  expect(decoded.map((d) => d.text).join('')).toBe(text);
  for (const [i, d] of decoded.entries()) {
    expect(d.type).toBe('submit');
    expect(d.address).toBe(to);
    if (parts.length === 1) expect(d.concat).toBeNull();
    else expect(d.concat).toEqual({ ref: ref & 0xff, total: parts.length, seq: i + 1 });
  }
  for (const p of parts) {
    // AT+CMGS=<length> counts the TPDU without the SMSC octet ("00"); at most 140 octets of user data
    // after first octet, MR, address (2 + up to 10), PID, DCS and UDL.
    expect(p.tpduLength).toBe(p.hex.length / 2 - 1);
    expect(p.tpduLength).toBeLessThanOrEqual(2 + 12 + 3 + 140);
  }
}

describe('PDU codec round trip (properties)', () => {
  it('GSM 7-bit text, extension table included, short and long, to any number', () => {
    assertProperty(
      fc.property(number, gsm7Text(700), fc.integer({ min: 0, max: 255 }), (to, text, ref) => {
        roundTripSubmit(to, text, ref);
        const septets = toGsm7(text) as number[];
        const parts = encodeSubmit(to, text, ref).length;
        if (septets.length <= 160) expect(parts).toBe(1);
        else expect(parts).toBeGreaterThanOrEqual(Math.ceil(septets.length / 153));
      }),
      { numRuns: 300 },
    );
  });

  it('UCS-2 text (any UTF-16: astral characters, NUL, mixed scripts), short and long', () => {
    assertProperty(
      fc.property(number, ucs2Text(300), fc.integer({ min: 0, max: 255 }), (to, text, ref) => {
        roundTripSubmit(to, text, ref);
      }),
      { numRuns: 300 },
    );
  });

  it('a long message is split on septet/surrogate boundaries: no part breaks an escape or a surrogate pair', () => {
    assertProperty(
      fc.property(fc.oneof(gsm7Text(800), ucs2Text(400)), (text) => {
        const parts = splitText(text);
        expect(parts.join('')).toBe(text);
        const gsm = toGsm7(text) !== null;
        for (const p of parts) {
          if (gsm) expect((toGsm7(p) as number[]).length).toBeLessThanOrEqual(parts.length === 1 ? 160 : 153);
          else {
            expect(p.length).toBeLessThanOrEqual(parts.length === 1 ? 70 : 67);
            const last = p.charCodeAt(p.length - 1);
            if (p !== parts.at(-1)) expect(last >= 0xd800 && last <= 0xdbff).toBe(false);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('SMS-DELIVER: sender, text, service centre time and concatenation come back as sent', () => {
    const at = fc
      .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
      .map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000));
    const concat = fc.option(
      fc
        .record({ ref: fc.integer({ min: 0, max: 255 }), total: fc.integer({ min: 2, max: 255 }) })
        .chain(({ ref, total }) =>
          fc.record({ ref: fc.constant(ref), total: fc.constant(total), seq: fc.integer({ min: 1, max: total }) }),
        ),
      { nil: undefined },
    );
    // One DELIVER carries one part: at most 153 septets or 67 UCS-2 units with a header, 160/70 without.
    const text = fc.oneof(
      gsm7Text(140).filter((t) => (toGsm7(t) as number[]).length <= 153),
      ucs2Text(30),
    );
    assertProperty(
      fc.property(number, text, at, concat, (from, body, when, c) => {
        const d = decodePdu(encodeDeliver(from, body, when, c));
        expect(d).toEqual({
          type: 'deliver',
          address: from,
          text: body,
          at: when.toISOString(),
          concat: c ?? null,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('planSms: plain short text goes in text mode as is; anything else in PDUs that decode back to it', () => {
    assertProperty(
      fc.property(
        international,
        fc.oneof(gsm7Text(400), ucs2Text(150), fc.stringMatching(/^[A-Za-z0-9 .,!?]{1,160}$/)),
        (to, text) => {
          const steps = planSms(to, text, 7);
          if (steps[0]?.mode === 'text') {
            expect(steps).toEqual([{ mode: 'text', command: `AT+CMGS="${to}"`, body: text }]);
            return;
          }
          expect(steps.map((s) => decodePdu(s.body).text).join('')).toBe(text);
          for (const s of steps) expect(s.command).toBe(`AT+CMGS=${s.body.length / 2 - 1}`);
        },
      ),
      { numRuns: 300 },
    );
  });
});
