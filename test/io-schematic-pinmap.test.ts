/**
 * The schematic drawing and pinmap.json (the firmware's default wiring)
 * agree: every signal's net label sits at its header pin, next to the pin's
 * GPIO name and its Firmata pin, and appears on the circuit side; the
 * committed SVG and parts list are what the generator makes from the pin map.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPinmap, type Pinmap } from '../device/io/pinmap.js';
import { PARTS_CSV, PI_HEADER, partsCsv, renderSchematic, SCHEMATIC_SVG } from '../scripts/schematic.js';

interface SvgText {
  x: number;
  y: number;
  cls: string;
  text: string;
}

function texts(svg: string): SvgText[] {
  const out: SvgText[] = [];
  for (const m of svg.matchAll(/<text x="([\d.-]+)" y="([\d.-]+)" class="([^"]+)"[^>]*>([^<]*)<\/text>/g)) {
    out.push({ x: Number(m[1]), y: Number(m[2]), cls: m[3]!, text: m[4]!.replace(/&amp;/g, '&') });
  }
  return out;
}

/** Every disagreement between the drawing's labels and the pin map. */
function disagreements(svg: string, map: Pinmap): string[] {
  const t = texts(svg);
  const problems: string[] = [];
  // the header's middle: between the pin number columns of pins 1 and 2
  const p1 = t.find((x) => x.cls === 'pinnum' && x.text === '1');
  const p2 = t.find((x) => x.cls === 'pinnum' && x.text === '2');
  if (!p1 || !p2) return ['the header is not drawn'];
  const mid = (p1.x + p2.x) / 2;
  const sameRow = (y: number, cls: string) => t.filter((x) => x.cls === cls && Math.abs(x.y - y) <= 8);
  for (const [name, s] of Object.entries(map.signals)) {
    const pin = t.find((x) => x.cls === 'pinnum' && x.text === String(s.header));
    if (!pin) {
      problems.push(`${name}: no header pin ${s.header} drawn`);
      continue;
    }
    if (!sameRow(pin.y, 'pinname').some((x) => x.text === `GPIO${s.gpio}`)) {
      problems.push(`${name}: header pin ${s.header} is not labelled GPIO${s.gpio}`);
    }
    const side = (x: SvgText) => (x.x < mid ? 'left' : 'right');
    const onSide = (cls: string) => sameRow(pin.y, cls).filter((x) => side(x) === side(pin));
    if (!onSide('net').some((x) => x.text === s.label)) {
      problems.push(`${name}: net label ${s.label} is not at header pin ${s.header}`);
    }
    if (!onSide('firmata').some((x) => x.text === `Uno D${s.firmata}`)) {
      problems.push(`${name}: Firmata pin D${s.firmata} is not shown at header pin ${s.header}`);
    }
    const nets = t.filter((x) => x.cls === 'net' && x.text === s.label);
    if (nets.length < 2) problems.push(`${name}: net ${s.label} is not drawn on the circuit side`);
    if (!t.some((x) => x.cls === 'ref' && x.text.split(' ')[0] === s.part)) {
      problems.push(`${name}: part ${s.part} is not in the drawing`);
    }
  }
  const labels = new Set(Object.values(map.signals).map((s) => s.label));
  for (const n of t.filter((x) => x.cls === 'net')) {
    if (!labels.has(n.text) && n.text !== '+3V3' && n.text !== 'GND') {
      problems.push(`net label ${n.text} in the drawing is not in the pin map`);
    }
  }
  return problems;
}

describe('schematic and pin map', () => {
  const map = loadPinmap();

  it('the committed drawing and parts list are generated from the current pin map', () => {
    expect(readFileSync(SCHEMATIC_SVG, 'utf8')).toBe(renderSchematic(map));
    expect(readFileSync(PARTS_CSV, 'utf8')).toBe(partsCsv(map));
  });

  it('every label in the drawing agrees with pinmap.json', () => {
    expect(disagreements(readFileSync(SCHEMATIC_SVG, 'utf8'), map)).toEqual([]);
  });

  it('the check catches a drawing that disagrees with the pin map', () => {
    const drawn = readFileSync(SCHEMATIC_SVG, 'utf8');
    const moved = structuredClone(map);
    moved.signals['led.ring'].header = 7;
    moved.signals['led.ring'].gpio = 4;
    moved.signals['button.panic'].firmata = 4;
    moved.signals['led.fault'].label = 'ALARM';
    expect(disagreements(drawn, moved)).toEqual([
      'led.ring: net label RING is not at header pin 7',
      'led.ring: Firmata pin D3 is not shown at header pin 7',
      'led.fault: net label ALARM is not at header pin 18',
      'led.fault: net ALARM is not drawn on the circuit side',
      'button.panic: Firmata pin D4 is not shown at header pin 29',
      'net label FAULT in the drawing is not in the pin map',
      'net label FAULT in the drawing is not in the pin map',
    ]);
  });

  it('the generator refuses a pin map whose GPIO is not at that header pin', () => {
    const wrong = structuredClone(map);
    wrong.signals['led.ring'].header = 12;
    expect(() => renderSchematic(wrong)).toThrow(/led\.ring: GPIO17 is header pin 12\? The header has GPIO18 there/);
  });

  it('the header table is the Pi 40-pin layout', () => {
    expect(Object.keys(PI_HEADER)).toHaveLength(40);
    expect(PI_HEADER[11]).toBe('GPIO17');
    expect(PI_HEADER[40]).toBe('GPIO21');
    expect(Object.values(PI_HEADER).filter((n) => n === 'GND')).toHaveLength(8);
  });
});
