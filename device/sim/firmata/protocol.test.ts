import { describe, expect, it } from 'vitest';
import { FIRMATA, FirmataBoard, PIN_MODES } from './protocol.js';

function board() {
  const b = new FirmataBoard();
  const sent: number[][] = [];
  b.on('send', (bytes) => sent.push([...bytes]));
  return { b, sent };
}

describe('Firmata board protocol', () => {
  it('answers the version and firmware queries as StandardFirmata 2.5', () => {
    const { b, sent } = board();
    b.receive([FIRMATA.REPORT_VERSION, FIRMATA.START_SYSEX, FIRMATA.QUERY_FIRMWARE, FIRMATA.END_SYSEX]);
    expect(sent[0]).toEqual([0xf9, 2, 5]);
    const fw = sent[1]!;
    expect(fw.slice(0, 4)).toEqual([0xf0, 0x79, 2, 5]);
    const name = Buffer.from(fw.slice(4, -1).filter((_, i) => i % 2 === 0)).toString();
    expect(name).toBe('StandardFirmata.ino');
  });

  it('sets pins from digital port messages and single pin writes', () => {
    const { b } = board();
    const outputs: [number, number][] = [];
    b.on('output', (p, v) => outputs.push([p, v]));
    b.receive([FIRMATA.SET_PIN_MODE, 12, PIN_MODES.OUTPUT, FIRMATA.DIGITAL_MESSAGE | 1, 0b0010000, 0]);
    expect(b.pins[12]!.value).toBe(1);
    b.receive([FIRMATA.SET_DIGITAL_PIN_VALUE, 12, 0]);
    expect(outputs).toEqual([
      [12, 1],
      [12, 0],
    ]);
    b.receive([FIRMATA.SET_PIN_MODE, 9, PIN_MODES.PWM, FIRMATA.ANALOG_MESSAGE | 9, 0x7f, 0x01]);
    expect(b.pins[9]!.value).toBe(255);
  });

  it('reports an input port when asked and when a switch changes it', () => {
    const { b, sent } = board();
    b.receive([FIRMATA.SET_PIN_MODE, 7, PIN_MODES.PULLUP, FIRMATA.REPORT_DIGITAL | 0, 1]);
    expect(sent.at(-1)).toEqual([0x90, 0b10000000 & 0x7f, 1]); // pin 7 high (pull-up) -> bit 7 in the MSB byte
    b.setInput(7, 0);
    expect(sent.at(-1)).toEqual([0x90, 0, 0]);
  });

  it('skips garbage and truncated commands, and keeps working', () => {
    const { b, sent } = board();
    b.receive([
      0x01,
      0x02,
      FIRMATA.SET_PIN_MODE,
      3,
      FIRMATA.REPORT_VERSION,
      0x55,
      FIRMATA.START_SYSEX,
      0x42,
      FIRMATA.END_SYSEX,
    ]);
    expect(b.discarded).toBeGreaterThanOrEqual(3);
    expect(sent).toContainEqual([0xf9, 2, 5]);
    b.receive([FIRMATA.SET_PIN_MODE, 3, PIN_MODES.OUTPUT, FIRMATA.SET_DIGITAL_PIN_VALUE, 3, 1]);
    expect(b.pins[3]!.value).toBe(1);
  });
});
