/**
 * The box's wiring: hardware-schematics/pinmap.json is the single source of
 * truth, loaded here as the default wiring, drawn into the schematic by
 * scripts/schematic.ts and cross-checked by a test.
 */
import { readFileSync } from 'node:fs';
import defaultPinmap from '../../hardware-schematics/pinmap.json' with { type: 'json' };
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { type Static, Strict, Type } from '../../shared/schema.js';
import { validate } from '../../shared/validate.js';

export const LED_NAMES = ['ring', 'missed', 'voicemail', 'status', 'fault', 'panic'] as const;
export type LedName = (typeof LED_NAMES)[number];

const Common = {
  gpio: Type.Integer({ minimum: 0, maximum: 27, description: 'BCM line on the header GPIO chip' }),
  header: Type.Integer({ minimum: 1, maximum: 40, description: 'physical pin of the 40-pin header' }),
  firmata: Type.Integer({ minimum: 2, maximum: 69, description: 'Arduino pin on the Firmata board' }),
  activeLow: Type.Boolean(),
  part: Type.String({ minLength: 1, maxLength: 8, description: 'reference designator in the schematic' }),
  label: Type.String({ pattern: '^[A-Z][A-Z0-9_]{1,15}$', description: 'net label in the schematic' }),
  description: Type.String(),
};

const LedSignal = Strict({
  ...Common,
  direction: Type.Literal('out'),
  color: Type.String(),
  resistorOhm: Type.Integer({ minimum: 47, maximum: 10_000 }),
});
const BuzzerSignal = Strict({ ...Common, direction: Type.Literal('out'), pwm: Type.Boolean() });
const InputSignal = Strict({
  ...Common,
  direction: Type.Literal('in'),
  pull: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('none')]),
});

export const PinmapSchema = Strict({
  $comment: Type.Optional(Type.String()),
  version: Type.Literal(1),
  board: Type.String(),
  signals: Strict({
    'led.ring': LedSignal,
    'led.missed': LedSignal,
    'led.voicemail': LedSignal,
    'led.status': LedSignal,
    'led.fault': LedSignal,
    'led.panic': LedSignal,
    buzzer: BuzzerSignal,
    'button.panic': InputSignal,
    'button.hook': InputSignal,
  }),
});
export type Pinmap = Static<typeof PinmapSchema>;
export type SignalName = keyof Pinmap['signals'];
/** Which pin number a board uses: BCM lines on the Pi and the virtual board, Arduino pins over Firmata. */
export type PinNumbering = 'gpio' | 'firmata';

/** Where the default pin map lives in the source tree (it is also built into the program, see loadPinmap). */
export const DEFAULT_PINMAP_FILE = 'hardware-schematics/pinmap.json';

/** Validate a pin map: schema, then no pin used twice in either numbering. */
export function parsePinmap(value: unknown, what = 'pin map'): Pinmap {
  const map = validate(PinmapSchema, value, what);
  for (const key of ['gpio', 'header', 'firmata'] as const) {
    const seen = new Map<number, string>();
    for (const [name, s] of Object.entries(map.signals)) {
      const other = seen.get(s[key]);
      if (other !== undefined) {
        throw new CallboxError(
          ErrorCode.ConfigInvalid,
          `${what} is invalid: /signals/${name}/${key}: got ${s[key]}, expected a pin not already used by ${other}`,
        );
      }
      seen.set(s[key], name);
    }
  }
  return map;
}

/**
 * The pin map in `file`, or the default wiring (hardware-schematics/pinmap.json), which is imported as a module so
 * that a built program carries it without a path into the source tree.
 */
export function loadPinmap(file: string | null = null): Pinmap {
  if (file === null) return parsePinmap(defaultPinmap, `pin map ${DEFAULT_PINMAP_FILE}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CallboxError(ErrorCode.ConfigFileUnreadable, `pin map ${file} cannot be read: ${(e as Error).message}`, {
      file,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CallboxError(ErrorCode.ConfigParseFailed, `pin map ${file} is not JSON: ${(e as Error).message}`, {
      file,
    });
  }
  return parsePinmap(value, `pin map ${file}`);
}

export function pinOf(map: Pinmap, signal: SignalName, numbering: PinNumbering): number {
  return map.signals[signal][numbering];
}
