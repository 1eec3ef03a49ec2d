import { Millis, Nullable, Seconds, Section, Strict, Type } from '../../shared/schema.js';

const UsbId = (description: string) => Type.Integer({ minimum: 0, maximum: 0xffff, description });

/** A USB HID panic button: which bit of which report means "pressed". */
export const HidButtonSchema = Strict(
  {
    name: Type.String({ minLength: 1, maxLength: 40, description: 'source name used in events, e.g. "hid-desk"' }),
    vendorId: UsbId('USB vendor id'),
    productId: UsbId('USB product id'),
    kind: Type.Union([Type.Literal('bitmask'), Type.Literal('keyboard')], {
      default: 'bitmask',
      description:
        'bitmask: the button is bit `mask` of byte `byte` of report `reportId`; keyboard: a boot keyboard report containing key usage `keyUsage`',
    }),
    reportId: Type.Integer({ minimum: 0, maximum: 255, default: 0, description: 'report id (0: unnumbered reports)' }),
    byte: Type.Integer({ minimum: 0, maximum: 63, default: 0, description: 'byte offset in the report after the id' }),
    mask: Type.Integer({ minimum: 1, maximum: 255, default: 1, description: 'bit mask of the button in that byte' }),
    keyUsage: Type.Integer({
      minimum: 4,
      maximum: 0xff,
      default: 0x28,
      description: 'keyboard usage id of the key (0x28 Enter, 0x2c Space, 0x68 F13)',
    }),
  },
  { description: 'a USB HID panic button' },
);

/** The io section of the box configuration (owned by device/io). */
export const IoConfigSchema = Section(
  {
    board: Type.Union([Type.Literal('virtual'), Type.Literal('firmata'), Type.Literal('linux-gpio')], {
      default: 'linux-gpio',
      description: 'johnny-five IO: virtual (simulation), firmata (USB microcontroller), linux-gpio (the Pi header)',
    }),
    firmataPath: Type.String({ default: '/dev/serial/by-id/usb-Arduino-if00', description: 'Firmata board port' }),
    firmataBaudRate: Type.Integer({
      minimum: 9600,
      maximum: 1_000_000,
      default: 57600,
      description: 'StandardFirmata speed in baud',
    }),
    gpioChip: Type.String({
      minLength: 1,
      default: 'gpiochip0',
      description:
        'GPIO chip of the 40-pin header (gpiochip0 on Pi 4 and on Pi 5 with kernel 6.6.45+; gpiochip4 before)',
    }),
    pinmapFile: Type.Union([Type.String(), Type.Null()], {
      default: null,
      description: 'pin map; null: hardware-schematics/pinmap.json',
    }),
    debounceMs: Millis('a button level must hold this long to count', { default: 30, minimum: 1, maximum: 500 }),
    doublePressMs: Millis('two presses within this time confirm a panic', {
      default: 600,
      minimum: 100,
      maximum: 3000,
    }),
    stuckS: Seconds('a button held down this long is reported as stuck (once)', {
      default: 60,
      minimum: 5,
      maximum: 3600,
    }),
    smsRetryMinS: Seconds('first wait before retrying a panic SMS round that no contact accepted', {
      default: 15,
      minimum: 1,
      maximum: 600,
    }),
    smsRetryMaxS: Seconds('longest wait between panic SMS rounds', { default: 300, minimum: 5, maximum: 3600 }),
    hidButtons: Type.Array(HidButtonSchema, { default: [], maxItems: 8, description: 'USB HID panic buttons' }),
    handset: Section(
      {
        enabled: Type.Boolean({ default: true, description: 'use a USB telephony handset (HID usage page 0x0B)' }),
        vendorId: { ...Nullable(UsbId('only this vendor id')), default: null },
        productId: { ...Nullable(UsbId('only this product id')), default: null },
      },
      'USB telephony handset',
    ),
    hidRescanMs: Millis('look for plugged and unplugged HID devices this often', {
      default: 2000,
      minimum: 200,
      maximum: 60_000,
    }),
  },
  'LEDs, buzzer and buttons',
);
