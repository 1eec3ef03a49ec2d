import { describe, expect, it } from 'vitest';
import { DESK_HANDSET, KEYBOARD_BUTTON, PANIC_BUTTON } from '../../sim/hid/models.js';
import { parseReportDescriptor, readBits, reportKey, USAGE, writeBits } from './descriptor.js';
import { hidButtonPressed } from './hid-button.js';

describe('HID report descriptor parser', () => {
  it('finds the hook switch, mute and the LEDs of a telephony handset', () => {
    const d = parseReportDescriptor(DESK_HANDSET.descriptor);
    expect(d.numbered).toBe(true);
    expect(d.applications).toEqual([{ usagePage: 0x0b, usage: 0x01 }]);
    const find = (kind: string, page: number, usage: number) =>
      d.fields.find((f) => f.kind === kind && f.usagePage === page && f.usage === usage);
    expect(find('input', USAGE.TELEPHONY_PAGE, USAGE.HOOK_SWITCH)).toMatchObject({
      reportId: 2,
      bitOffset: 0,
      bitSize: 1,
      relative: false,
    });
    expect(find('input', USAGE.TELEPHONY_PAGE, USAGE.PHONE_MUTE)).toMatchObject({ bitOffset: 2, relative: true });
    expect(find('output', USAGE.LED_PAGE, USAGE.LED_OFF_HOOK)).toMatchObject({ reportId: 2, bitOffset: 0 });
    expect(find('output', USAGE.LED_PAGE, USAGE.LED_RING)).toMatchObject({ reportId: 2, bitOffset: 2 });
    expect(find('output', USAGE.TELEPHONY_PAGE, USAGE.RINGER)).toMatchObject({ reportId: 3, bitOffset: 0 });
    expect(d.reportBytes.get(reportKey('input', 2))).toBe(1);
    expect(d.reportBytes.get(reportKey('output', 3))).toBe(1);
  });

  it('handles usage ranges, arrays and 32-bit usages', () => {
    const kb = parseReportDescriptor(KEYBOARD_BUTTON.descriptor);
    expect(kb.numbered).toBe(false);
    expect(kb.fields.filter((f) => f.usagePage === 0x07)).toHaveLength(8); // modifiers
    expect(kb.arrays[0]).toMatchObject({ bitOffset: 16, bitSize: 8, count: 6 });
    const ext = parseReportDescriptor([0x0b, 0x20, 0x00, 0x0b, 0x00, 0x75, 0x01, 0x95, 0x01, 0x81, 0x02]);
    expect(ext.fields[0]).toMatchObject({ usagePage: 0x0b, usage: 0x20 });
    expect(parseReportDescriptor(PANIC_BUTTON.descriptor).fields[0]).toMatchObject({ usagePage: 9, usage: 1 });
  });

  it('reads and writes bit fields', () => {
    const data = [0, 0];
    writeBits(data, 3, 1, 1);
    writeBits(data, 6, 4, 0b1011);
    expect(data).toEqual([0b1100_1000, 0b10]);
    expect(readBits(data, 6, 4)).toBe(0b1011);
  });

  it('never throws on garbage', () => {
    for (let n = 0; n < 200; n++) {
      const bytes = Array.from({ length: 40 }, (_, i) => (i * 37 + n * 11) & 0xff);
      expect(() => parseReportDescriptor(bytes)).not.toThrow();
    }
  });
});

describe('HID panic button reports', () => {
  const base = { name: 'b', vendorId: 1, productId: 2, reportId: 0, byte: 0, mask: 1, keyUsage: 0x68 };
  it('bitmask buttons, numbered and not', () => {
    expect(hidButtonPressed({ ...base, kind: 'bitmask' }, PANIC_BUTTON.reports.press)).toBe(true);
    expect(hidButtonPressed({ ...base, kind: 'bitmask' }, PANIC_BUTTON.reports.release)).toBe(false);
    const numbered = { ...base, kind: 'bitmask' as const, reportId: 4, byte: 1, mask: 0x20 };
    expect(hidButtonPressed(numbered, [4, 0, 0x20])).toBe(true);
    expect(hidButtonPressed(numbered, [5, 0, 0x20])).toBeNull();
  });
  it('keyboard-style buttons', () => {
    const kb = { ...base, kind: 'keyboard' as const };
    expect(hidButtonPressed(kb, KEYBOARD_BUTTON.reports.press)).toBe(true);
    expect(hidButtonPressed(kb, KEYBOARD_BUTTON.reports.release)).toBe(false);
    expect(hidButtonPressed(kb, [0, 0, 0x04, 0, 0, 0, 0, 0])).toBe(false);
  });
});
