/**
 * The box's schematic, drawn from its source: pinmap.json (which pin does
 * what) plus the circuit and parts tables below. Running
 *
 *   npm run schematic          (tsx scripts/schematic.ts --write)
 *
 * writes hardware-schematics/schematic.svg and parts.csv. Nets are joined by
 * name, as in any schematic: a flag "RING" at header pin 11 is the same
 * wire as the flag "RING" in front of R1. test/io-schematic-pinmap.test.ts
 * checks that every label in the drawing matches pinmap.json and back.
 *
 * Why not KiCad: Debian here ships KiCad 6, whose command line cannot
 * export a schematic to SVG (kicad-cli came with KiCad 7), so the drawing
 * would not be reproducible from source in CI. This generator is the
 * source; a KiCad capture can be made from it by hand when a board is laid
 * out (hardware-schematics/README.md).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LED_NAMES, loadPinmap, type Pinmap, type SignalName } from '../device/io/pinmap.js';

/** The Raspberry Pi 40-pin header (Pi 4 and Pi 5 share it): physical pin -> name. */
export const PI_HEADER: Record<number, string> = {
  1: '3V3',
  2: '5V',
  3: 'GPIO2',
  4: '5V',
  5: 'GPIO3',
  6: 'GND',
  7: 'GPIO4',
  8: 'GPIO14',
  9: 'GND',
  10: 'GPIO15',
  11: 'GPIO17',
  12: 'GPIO18',
  13: 'GPIO27',
  14: 'GND',
  15: 'GPIO22',
  16: 'GPIO23',
  17: '3V3',
  18: 'GPIO24',
  19: 'GPIO10',
  20: 'GND',
  21: 'GPIO9',
  22: 'GPIO25',
  23: 'GPIO11',
  24: 'GPIO8',
  25: 'GND',
  26: 'GPIO7',
  27: 'ID_SD',
  28: 'ID_SC',
  29: 'GPIO5',
  30: 'GND',
  31: 'GPIO6',
  32: 'GPIO12',
  33: 'GPIO13',
  34: 'GND',
  35: 'GPIO19',
  36: 'GPIO16',
  37: 'GPIO26',
  38: 'GPIO20',
  39: 'GND',
  40: 'GPIO21',
};

/** Power pins of the header the panel uses. */
const POWER_NETS: Record<number, string> = { 1: '+3V3', 6: 'GND' };

export interface Part {
  ref: string;
  value: string;
  description: string;
  manufacturer: string;
  mpn: string;
  qty: number;
}

const LED_MPN: Record<string, string> = {
  red: 'WP7113SRD',
  amber: 'WP7113SYD',
  blue: 'WP7113QBC/D',
  green: 'WP7113SGD',
};

const RES_MPN: Record<number, string> = {
  150: 'MFR-25FBF52-150R',
  330: 'MFR-25FBF52-330R',
  1000: 'MFR-25FBF52-1K',
  10000: 'MFR-25FBF52-10K',
};

const ohms = (r: number) => (r >= 1000 ? `${r / 1000}k` : `${r}`) + ' Ω';

/** Resistor reference of each LED: R1..R6 in pin map order. */
export function ledResistorRef(led: (typeof LED_NAMES)[number]): string {
  return `R${LED_NAMES.indexOf(led) + 1}`;
}

/** The parts list, derived from the pin map for the panel and fixed for the rest. */
export function partsList(map: Pinmap): Part[] {
  const parts: Part[] = [];
  for (const led of LED_NAMES) {
    const s = map.signals[`led.${led}`];
    parts.push({
      ref: s.part,
      value: `LED ${s.color}`,
      description: `${s.label} indicator, 5 mm`,
      manufacturer: 'Kingbright',
      mpn: LED_MPN[s.color] ?? 'WP7113SRD',
      qty: 1,
    });
    parts.push({
      ref: ledResistorRef(led),
      value: ohms(s.resistorOhm),
      description: `${s.label} LED series resistor, 1/4 W 1 %`,
      manufacturer: 'Yageo',
      mpn: RES_MPN[s.resistorOhm] ?? `MFR-25FBF52-${s.resistorOhm}R`,
      qty: 1,
    });
  }
  const fixed: Part[] = [
    {
      ref: 'BZ1',
      value: '5 V active buzzer',
      description: 'buzzer, 85 dB, ~30 mA',
      manufacturer: 'PUI Audio',
      mpn: 'AI-1223-TWT-5V-2-R',
      qty: 1,
    },
    {
      ref: 'Q1',
      value: 'PN2222A',
      description: 'NPN low-side switch for the buzzer',
      manufacturer: 'onsemi',
      mpn: 'PN2222ABU',
      qty: 1,
    },
    {
      ref: 'R7',
      value: ohms(1000),
      description: 'Q1 base resistor',
      manufacturer: 'Yageo',
      mpn: RES_MPN[1000]!,
      qty: 1,
    },
    {
      ref: 'R12',
      value: ohms(10000),
      description: 'Q1 base pull-down (buzzer off while the Pi boots)',
      manufacturer: 'Yageo',
      mpn: RES_MPN[10000]!,
      qty: 1,
    },
    {
      ref: 'D7',
      value: '1N4148',
      description: 'flyback diode across BZ1',
      manufacturer: 'onsemi',
      mpn: '1N4148TR',
      qty: 1,
    },
    {
      ref: 'SW1',
      value: 'panic button',
      description: 'momentary, normally open, vandal-resistant 16 mm',
      manufacturer: 'E-Switch',
      mpn: 'PV6F240SS341',
      qty: 1,
    },
    {
      ref: 'R8',
      value: ohms(10000),
      description: 'SW1 pull-up to +3V3',
      manufacturer: 'Yageo',
      mpn: RES_MPN[10000]!,
      qty: 1,
    },
    {
      ref: 'R9',
      value: ohms(1000),
      description: 'SW1 series resistor (RC debounce, ESD current limit)',
      manufacturer: 'Yageo',
      mpn: RES_MPN[1000]!,
      qty: 1,
    },
    {
      ref: 'C1',
      value: '100 nF',
      description: 'SW1 RC debounce capacitor, X7R 50 V',
      manufacturer: 'KEMET',
      mpn: 'C320C104K5R5TA',
      qty: 1,
    },
    {
      ref: 'D8',
      value: 'TVS 3.3 V',
      description: 'ESD protection of the panic button line',
      manufacturer: 'Nexperia',
      mpn: 'PESD3V3L1BA,115',
      qty: 1,
    },
    {
      ref: 'SW2',
      value: 'hook switch',
      description: 'cradle microswitch, closed when the handset is lifted',
      manufacturer: 'Omron',
      mpn: 'D2F-01L',
      qty: 1,
    },
    {
      ref: 'R10',
      value: ohms(10000),
      description: 'SW2 pull-up to +3V3',
      manufacturer: 'Yageo',
      mpn: RES_MPN[10000]!,
      qty: 1,
    },
    {
      ref: 'R11',
      value: ohms(1000),
      description: 'SW2 series resistor',
      manufacturer: 'Yageo',
      mpn: RES_MPN[1000]!,
      qty: 1,
    },
    {
      ref: 'C2',
      value: '100 nF',
      description: 'SW2 RC debounce capacitor',
      manufacturer: 'KEMET',
      mpn: 'C320C104K5R5TA',
      qty: 1,
    },
    {
      ref: 'D9',
      value: 'TVS 3.3 V',
      description: 'ESD protection of the hook switch line',
      manufacturer: 'Nexperia',
      mpn: 'PESD3V3L1BA,115',
      qty: 1,
    },
    {
      ref: 'J1',
      value: '2x20 header',
      description: 'Raspberry Pi 40-pin header socket (to the panel board)',
      manufacturer: 'Samtec',
      mpn: 'SSW-120-01-T-D',
      qty: 1,
    },
    {
      ref: 'J2',
      value: 'JST XH 10-pin',
      description: 'front panel cable: LEDs, buzzer, buttons',
      manufacturer: 'JST',
      mpn: 'B10B-XH-A',
      qty: 1,
    },
    {
      ref: 'U1',
      value: 'Raspberry Pi 4 Model B / Pi 5',
      description: 'the call box computer',
      manufacturer: 'Raspberry Pi',
      mpn: 'SC0194 / SC1112',
      qty: 1,
    },
    {
      ref: 'PS1',
      value: '5.1 V 3 A USB-C (Pi 4) / 5.1 V 5 A (Pi 5)',
      description: 'Raspberry Pi power supply',
      manufacturer: 'Raspberry Pi',
      mpn: 'SC0217 / SC1153',
      qty: 1,
    },
    {
      ref: 'PS2',
      value: '5 V 4 A',
      description: 'separate modem supply: covers the ~2 A transmit bursts a Pi USB port cannot',
      manufacturer: 'MEAN WELL',
      mpn: 'GST25E05-P1J',
      qty: 1,
    },
    {
      ref: 'J3',
      value: 'DC jack 2.1 mm',
      description: 'modem supply input',
      manufacturer: 'CUI Devices',
      mpn: 'PJ-002A',
      qty: 1,
    },
    {
      ref: 'C3',
      value: '1000 µF 10 V',
      description: 'low-ESR bulk capacitor at the modem supply input (transmit bursts)',
      manufacturer: 'Panasonic',
      mpn: 'EEU-FR1A102',
      qty: 1,
    },
    {
      ref: 'C4',
      value: '100 nF',
      description: 'modem supply decoupling',
      manufacturer: 'KEMET',
      mpn: 'C320C104K5R5TA',
      qty: 1,
    },
    {
      ref: 'U2',
      value: 'SIM7600G-H 4G HAT (B)',
      description: 'GSM/LTE modem; powered from PS2, USB data to the Pi, NOT stacked on the Pi header',
      manufacturer: 'Waveshare',
      mpn: '24009',
      qty: 1,
    },
    {
      ref: 'U3',
      value: 'USB sound card (CM108)',
      description: 'voicemail audio in/out',
      manufacturer: 'Sabrent',
      mpn: 'AU-MMSA',
      qty: 1,
    },
    {
      ref: 'U4',
      value: 'USB telephony handset (HID 0x0B)',
      description: 'optional desk handset: hook switch and LEDs over USB HID',
      manufacturer: 'any',
      mpn: 'HID usage page 0x0B',
      qty: 1,
    },
  ];
  return [...parts, ...fixed];
}

// ---------------------------------------------------------------- drawing

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

class Svg {
  readonly items: string[] = [];
  line(x1: number, y1: number, x2: number, y2: number): void {
    this.items.push(`<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" class="w"/>`);
  }
  poly(points: [number, number][], cls = 'w'): void {
    this.items.push(`<polyline points="${points.map((p) => p.join(',')).join(' ')}" class="${cls}"/>`);
  }
  rect(x: number, y: number, w: number, h: number, cls = 'box'): void {
    this.items.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" class="${cls}"/>`);
  }
  circle(x: number, y: number, r: number, cls = 'dot'): void {
    this.items.push(`<circle cx="${x}" cy="${y}" r="${r}" class="${cls}"/>`);
  }
  text(x: number, y: number, s: string, cls: string, anchor: 'start' | 'middle' | 'end' = 'start'): void {
    this.items.push(`<text x="${x}" y="${y}" class="${cls}" text-anchor="${anchor}">${esc(s)}</text>`);
  }
  /** A net label flag; `dir` is where the wire leaves it. */
  net(x: number, y: number, name: string, dir: 'left' | 'right'): void {
    const w = name.length * 8 + 14;
    const pts: [number, number][] =
      dir === 'right'
        ? [
            [x - w, y - 9],
            [x - 8, y - 9],
            [x, y],
            [x - 8, y + 9],
            [x - w, y + 9],
            [x - w, y - 9],
          ]
        : [
            [x + w, y - 9],
            [x + 8, y - 9],
            [x, y],
            [x + 8, y + 9],
            [x + w, y + 9],
            [x + w, y - 9],
          ];
    this.poly(pts, 'flag');
    this.text(dir === 'right' ? x - w / 2 - 4 : x + w / 2 + 4, y + 4, name, 'net', 'middle');
  }
  gnd(x: number, y: number): void {
    this.line(x, y, x, y + 8);
    this.line(x - 10, y + 8, x + 10, y + 8);
    this.line(x - 6, y + 12, x + 6, y + 12);
    this.line(x - 2, y + 16, x + 2, y + 16);
  }
  rail(x: number, y: number, name: string): void {
    this.line(x, y, x, y - 10);
    this.line(x - 10, y - 10, x + 10, y - 10);
    this.text(x, y - 14, name, 'rail', 'middle');
  }
  /** Horizontal resistor from x to x+60 at y. */
  resistor(x: number, y: number, ref: string, value: string): void {
    this.line(x, y, x + 10, y);
    const pts: [number, number][] = [[x + 10, y]];
    for (let i = 0; i < 6; i++) pts.push([x + 14 + i * 7, i % 2 ? y + 6 : y - 6]);
    pts.push([x + 52, y], [x + 60, y]);
    this.poly(pts);
    this.text(x + 30, y - 12, ref, 'ref', 'middle');
    this.text(x + 30, y + 20, value, 'val', 'middle');
  }
  /** Vertical resistor from y to y+60 at x. */
  vresistor(x: number, y: number, ref: string, value: string): void {
    const pts: [number, number][] = [
      [x, y],
      [x, y + 10],
    ];
    for (let i = 0; i < 6; i++) pts.push([i % 2 ? x + 6 : x - 6, y + 14 + i * 7]);
    pts.push([x, y + 52], [x, y + 60]);
    this.poly(pts);
    this.text(x + 10, y + 28, ref, 'ref');
    this.text(x + 10, y + 42, value, 'val');
  }
  /** Horizontal LED (anode left) from x to x+40. */
  led(x: number, y: number, ref: string, value: string): void {
    this.line(x, y, x + 10, y);
    this.poly(
      [
        [x + 10, y - 9],
        [x + 28, y],
        [x + 10, y + 9],
        [x + 10, y - 9],
      ],
      'sym',
    );
    this.line(x + 28, y - 9, x + 28, y + 9);
    this.line(x + 28, y, x + 40, y);
    this.line(x + 20, y - 12, x + 27, y - 19);
    this.line(x + 25, y - 10, x + 32, y - 17);
    this.text(x + 20, y - 22, ref, 'ref', 'middle');
    this.text(x + 20, y + 24, value, 'val', 'middle');
  }
  /** Vertical capacitor from y to y+40 at x. */
  vcap(x: number, y: number, ref: string, value: string): void {
    this.line(x, y, x, y + 17);
    this.line(x - 10, y + 17, x + 10, y + 17);
    this.line(x - 10, y + 23, x + 10, y + 23);
    this.line(x, y + 23, x, y + 40);
    this.text(x + 14, y + 18, ref, 'ref');
    this.text(x + 14, y + 32, value, 'val');
  }
  /** Vertical diode, cathode up, from y to y+40 at x (TVS when `tvs`). */
  vdiode(x: number, y: number, ref: string, value: string, tvs = false): void {
    this.line(x, y, x, y + 12);
    this.poly(
      [
        [x - 9, y + 30],
        [x, y + 12],
        [x + 9, y + 30],
        [x - 9, y + 30],
      ],
      'sym',
    );
    this.line(x - 9, y + 12, x + 9, y + 12);
    if (tvs) {
      this.line(x - 9, y + 12, x - 12, y + 8);
      this.line(x + 9, y + 12, x + 12, y + 16);
    }
    this.line(x, y + 30, x, y + 40);
    this.text(x + 14, y + 20, ref, 'ref');
    this.text(x + 14, y + 34, value, 'val');
  }
  /** A normally-open push button, vertical, from y to y+40 at x. */
  vswitch(x: number, y: number, ref: string, value: string): void {
    this.line(x, y, x, y + 12);
    this.circle(x, y + 12, 2.5, 'pin');
    this.line(x, y + 28, x - 10, y + 14);
    this.circle(x, y + 28, 2.5, 'pin');
    this.line(x, y + 28, x, y + 40);
    this.line(x - 16, y + 12, x - 16, y + 28);
    this.line(x - 16, y + 20, x - 6, y + 20);
    this.text(x + 14, y + 20, ref, 'ref');
    this.text(x + 14, y + 34, value, 'val');
  }
  block(x: number, y: number, w: number, h: number, ref: string, lines: string[]): void {
    this.rect(x, y, w, h);
    this.text(x + 8, y + 18, ref, 'ref');
    lines.forEach((l, i) => {
      this.text(x + 8, y + 36 + i * 16, l, 'val');
    });
  }
}

export function renderSchematic(map: Pinmap): string {
  for (const [name, s] of Object.entries(map.signals)) {
    if (PI_HEADER[s.header] !== `GPIO${s.gpio}`) {
      throw new Error(
        `pin map ${name}: GPIO${s.gpio} is header pin ${s.header}? The header has ${PI_HEADER[s.header]} there`,
      );
    }
  }
  const parts = new Map(partsList(map).map((p) => [p.ref, p]));
  const byHeader = new Map<number, { name: SignalName; label: string; firmata: number }>();
  for (const [name, s] of Object.entries(map.signals)) {
    byHeader.set(s.header, { name: name as SignalName, label: s.label, firmata: s.firmata });
  }
  const svg = new Svg();
  const W = 1560;
  const H = 1200;

  // ---- title
  svg.text(40, 40, 'Callbox panel and power wiring', 'title');
  svg.text(
    40,
    62,
    `${map.board}. Generated from hardware-schematics/pinmap.json by schematic.ts: do not edit.`,
    'note',
  );
  svg.text(
    40,
    80,
    'Nets with the same flag name are connected. A Firmata board (Arduino Uno/Nano) in place of the Pi header uses the "Uno D" pins shown.',
    'note',
  );

  // ---- J1: the Pi header, 2x20
  const hx = 250;
  const hy = 150;
  const row = 30;
  svg.block(hx, hy - 30, 100, row * 20 + 40, 'J1 / U1', []);
  svg.text(hx + 50, hy - 38, 'Raspberry Pi 40-pin header', 'val', 'middle');
  for (let r = 0; r < 20; r++) {
    const y = hy + 10 + r * row;
    for (const side of [0, 1] as const) {
      const pin = r * 2 + 1 + side;
      const px = side === 0 ? hx : hx + 100;
      const ox = side === 0 ? px - 30 : px + 30;
      svg.line(px, y, ox, y);
      svg.circle(px, y, 3, 'pin');
      svg.text(side === 0 ? px + 8 : px - 8, y + 4, String(pin), 'pinnum', side === 0 ? 'start' : 'end');
      svg.text(side === 0 ? ox - 4 : ox + 4, y - 4, PI_HEADER[pin]!, 'pinname', side === 0 ? 'end' : 'start');
      const used = byHeader.get(pin);
      const power = POWER_NETS[pin];
      if (used) {
        svg.net(side === 0 ? ox - 60 : ox + 60, y, used.label, side === 0 ? 'right' : 'left');
        svg.line(side === 0 ? ox - 60 : ox, y, side === 0 ? ox : ox + 60, y);
        svg.text(
          side === 0 ? ox - 150 : ox + 150,
          y + 4,
          `Uno D${used.firmata}`,
          'firmata',
          side === 0 ? 'end' : 'start',
        );
      } else if (power) {
        svg.net(side === 0 ? ox - 60 : ox + 60, y, power, side === 0 ? 'right' : 'left');
        svg.line(side === 0 ? ox - 60 : ox, y, side === 0 ? ox : ox + 60, y);
      }
    }
  }

  // ---- LEDs: flag -> resistor -> LED -> GND
  const cx = 780;
  let y = 150;
  svg.text(cx - 100, y - 40, 'Indicators (3.3 V GPIO, 2-5 mA each)', 'section');
  for (const led of LED_NAMES) {
    const s = map.signals[`led.${led}`];
    const rRef = ledResistorRef(led);
    svg.net(cx, y, s.label, 'right');
    svg.line(cx, y, cx + 40, y);
    svg.resistor(cx + 40, y, rRef, parts.get(rRef)!.value);
    svg.line(cx + 100, y, cx + 130, y);
    svg.led(cx + 130, y, s.part, `${s.color} ${parts.get(s.part)!.mpn}`);
    svg.line(cx + 170, y, cx + 200, y);
    svg.gnd(cx + 200, y);
    svg.text(cx + 240, y + 4, s.description.split(';')[0]!, 'note');
    y += 62;
  }

  // ---- buzzer: flag -> R7 -> Q1 base; Q1 C -> BZ1 -> +5V; D7 across BZ1; R12 base pull-down
  y += 30;
  const bz = map.signals.buzzer;
  svg.text(cx - 100, y - 30, 'Buzzer (low-side NPN switch, PWM volume on Firmata)', 'section');
  const by = y + 110;
  svg.net(cx, by, bz.label, 'right');
  svg.line(cx, by, cx + 40, by);
  svg.resistor(cx + 40, by, 'R7', parts.get('R7')!.value);
  svg.line(cx + 100, by, cx + 150, by);
  svg.circle(cx + 120, by, 3);
  svg.vresistor(cx + 120, by, 'R12', parts.get('R12')!.value);
  svg.gnd(cx + 120, by + 60);
  // Q1: base bar at cx+150, collector up, emitter down
  svg.line(cx + 150, by - 16, cx + 150, by + 16);
  svg.line(cx + 150, by - 6, cx + 170, by - 22);
  svg.line(cx + 150, by + 6, cx + 170, by + 22);
  svg.poly(
    [
      [cx + 162, by + 20],
      [cx + 170, by + 22],
      [cx + 166, by + 14],
    ],
    'sym',
  );
  svg.circle(cx + 160, by, 26, 'outline');
  svg.text(cx + 192, by + 4, 'Q1 PN2222A', 'ref');
  svg.line(cx + 170, by + 22, cx + 170, by + 50);
  svg.gnd(cx + 170, by + 50);
  svg.line(cx + 170, by - 22, cx + 170, by - 40);
  svg.block(cx + 150, by - 90, 40, 50, 'BZ1', []);
  svg.text(cx + 140, by - 66, `${parts.get('BZ1')!.mpn}`, 'val', 'end');
  svg.line(cx + 170, by - 90, cx + 170, by - 100);
  svg.rail(cx + 170, by - 100, '+5V');
  svg.line(cx + 170, by - 40, cx + 300, by - 40);
  svg.line(cx + 170, by - 100, cx + 300, by - 100);
  svg.vdiode(cx + 300, by - 80, 'D7', '1N4148');
  svg.line(cx + 300, by - 100, cx + 300, by - 80);
  y = by + 90;

  // ---- inputs: +3V3 -> R pull-up -> node (switch, TVS to GND) -> R series -> flag (C to GND)
  const inputs: {
    signal: 'button.panic' | 'button.hook';
    sw: string;
    rPull: string;
    rSer: string;
    c: string;
    d: string;
  }[] = [
    { signal: 'button.panic', sw: 'SW1', rPull: 'R8', rSer: 'R9', c: 'C1', d: 'D8' },
    { signal: 'button.hook', sw: 'SW2', rPull: 'R10', rSer: 'R11', c: 'C2', d: 'D9' },
  ];
  svg.text(cx - 100, y, 'Buttons (pull-up, RC debounce, ESD protection; active low)', 'section');
  y += 100;
  for (const inp of inputs) {
    const s = map.signals[inp.signal];
    const nx = cx + 260;
    svg.net(cx, y, s.label, 'right');
    svg.line(cx, y, cx + 60, y);
    svg.circle(cx + 40, y, 3);
    svg.vcap(cx + 40, y, inp.c, parts.get(inp.c)!.value);
    svg.gnd(cx + 40, y + 40);
    svg.resistor(cx + 60, y, inp.rSer, parts.get(inp.rSer)!.value);
    svg.line(cx + 120, y, nx + 60, y);
    svg.circle(nx, y, 3);
    svg.vresistor(nx, y - 70, inp.rPull, parts.get(inp.rPull)!.value);
    svg.line(nx, y - 10, nx, y);
    svg.rail(nx, y - 70, '+3V3');
    svg.circle(nx + 60, y, 3);
    svg.vswitch(nx + 60, y, inp.sw, parts.get(inp.sw)!.value);
    svg.gnd(nx + 60, y + 40);
    svg.line(nx + 60, y, nx + 170, y);
    svg.vdiode(nx + 170, y, inp.d, parts.get(inp.d)!.mpn, true);
    svg.gnd(nx + 170, y + 40);
    svg.text(nx + 230, y + 4, `${s.description.split(/[:,]/)[0]}`, 'note');
    y += 130;
  }

  // ---- power and USB
  const py = 770;
  svg.text(40, py, 'Power and USB', 'section');
  svg.block(40, py + 20, 200, 70, 'PS1', [parts.get('PS1')!.value, 'Pi USB-C power input only']);
  svg.block(40, py + 110, 200, 70, 'PS2', [parts.get('PS2')!.value, parts.get('PS2')!.mpn]);
  svg.line(240, py + 145, 300, py + 145);
  svg.block(300, py + 120, 60, 50, 'J3', ['DC']);
  svg.line(360, py + 145, 440, py + 145);
  svg.text(420, py + 138, '+5V_MODEM', 'rail', 'middle');
  svg.circle(390, py + 145, 3);
  svg.vcap(390, py + 145, 'C3', '1000 µF');
  svg.gnd(390, py + 185);
  svg.line(420, py + 145, 540, py + 145);
  svg.circle(470, py + 145, 3);
  svg.vcap(470, py + 145, 'C4', parts.get('C4')!.value);
  svg.gnd(470, py + 185);
  svg.block(540, py + 110, 190, 90, 'U2', ['SIM7600G-H modem', '5 V in: ~2 A bursts', 'USB data -> Pi USB']);
  svg.text(
    40,
    py + 230,
    'The modem is NOT powered from the Pi: a Pi USB port gives 0.6-1.2 A for all ports together,',
    'note',
  );
  svg.text(
    40,
    py + 246,
    'a GSM/LTE modem draws up to ~2 A in transmit bursts. PS2 grounds tie to the Pi at one point (U2 USB shield).',
    'note',
  );
  svg.block(40, py + 270, 200, 70, 'U3', ['USB sound card (CM108)', 'voicemail audio -> Pi USB']);
  svg.block(260, py + 270, 220, 70, 'U4', ['USB handset, HID page 0x0B', 'hook switch + LEDs -> Pi USB']);
  svg.block(500, py + 270, 230, 70, 'USB panic button (opt.)', ['HID, vid/pid/bit from config', '-> Pi USB']);
  svg.text(
    40,
    py + 370,
    'J2 (front panel cable, JST XH 10): +3V3, GND, RING, MISSED, VOICEMAIL, STATUS, FAULT, PANIC, BUZZER, PANIC_BTN;',
    'note',
  );
  svg.text(
    40,
    py + 386,
    'the hook switch SW2 sits in the handset cradle and joins HOOK/GND through its own 2-pin cable.',
    'note',
  );

  const style = `
    .w { stroke: #111; stroke-width: 1.6; fill: none }
    .sym { stroke: #111; stroke-width: 1.6; fill: #fff }
    .flag { stroke: #1a5; stroke-width: 1.4; fill: #efe }
    .box { stroke: #111; stroke-width: 1.6; fill: #fafafa }
    .outline { stroke: #111; stroke-width: 1.2; fill: none }
    .dot { fill: #111 }
    .pin { fill: #fff; stroke: #111; stroke-width: 1.2 }
    text { font-family: 'DejaVu Sans', Arial, sans-serif }
    .title { font-size: 22px; font-weight: bold }
    .section { font-size: 15px; font-weight: bold }
    .note { font-size: 11px; fill: #444 }
    .net { font-size: 11px; font-weight: bold; fill: #063 }
    .ref { font-size: 12px; font-weight: bold }
    .val { font-size: 11px }
    .rail { font-size: 11px; font-weight: bold; fill: #a00 }
    .pinnum { font-size: 10px }
    .pinname { font-size: 10px; fill: #333 }
    .firmata { font-size: 10px; fill: #04a }`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`,
    '<title>Callbox panel and power wiring (generated from pinmap.json)</title>',
    `<style>${style}\n</style>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`,
    ...svg.items,
    '</svg>',
    '',
  ].join('\n');
}

export function partsCsv(map: Pinmap): string {
  const q = (s: string | number) => (/[",]/.test(String(s)) ? `"${String(s).replace(/"/g, '""')}"` : String(s));
  const rows = partsList(map).map((p) =>
    [p.ref, p.value, p.description, p.manufacturer, p.mpn, p.qty].map(q).join(','),
  );
  return ['ref,value,description,manufacturer,mpn,qty', ...rows, ''].join('\n');
}

const here = join(dirname(fileURLToPath(import.meta.url)), '..', 'hardware-schematics');
export const SCHEMATIC_SVG = join(here, 'schematic.svg');
export const PARTS_CSV = join(here, 'parts.csv');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  const map = loadPinmap();
  writeFileSync(SCHEMATIC_SVG, renderSchematic(map));
  writeFileSync(PARTS_CSV, partsCsv(map));
  console.log(`wrote ${SCHEMATIC_SVG} and ${PARTS_CSV}`);
}
