/**
 * Device models for the simulated HID bus: a report descriptor and the
 * input reports the device sends for each action, as bytes.
 *
 * The handset descriptor follows the layout USB telephony handsets and
 * headsets use (Telephony page 0x0B, Headset/Handset application, report 2
 * for hook switch and buttons in, LEDs out; the ringer on report 3). It is
 * written for this project, not dumped from a particular device: the
 * handset code reads any descriptor through device/io/hid/descriptor.ts,
 * and a real device's descriptor (from
 * /sys/class/hidraw/hidrawN/device/report_descriptor) can be added here as
 * another model to replay it.
 */

export interface HidModel {
  name: string;
  vendorId: number;
  productId: number;
  manufacturer: string;
  product: string;
  usagePage: number;
  usage: number;
  descriptor: number[];
}

/** pid.codes test vendor id (0x1209): no real vendor is claimed. */
const TEST_VID = 0x1209;

export const DESK_HANDSET: HidModel & {
  reports: { offHook: number[]; onHook: number[]; mutePress: number[]; muteRelease: number[] };
} = {
  name: 'desk-handset',
  vendorId: TEST_VID,
  productId: 0xcb01,
  manufacturer: 'Callbox simulation',
  product: 'USB desk handset (simulated)',
  usagePage: 0x0b,
  usage: 0x01,
  // biome-ignore format: one HID item per line
  descriptor: [
    0x05, 0x0b,       // Usage Page (Telephony)
    0x09, 0x01,       // Usage (Phone)
    0xa1, 0x01,       // Collection (Application)
    0x85, 0x02,       //   Report ID (2)
    0x15, 0x00,       //   Logical Minimum (0)
    0x25, 0x01,       //   Logical Maximum (1)
    0x09, 0x20,       //   Usage (Hook Switch)
    0x09, 0x97,       //   Usage (Line Busy Tone)
    0x75, 0x01,       //   Report Size (1)
    0x95, 0x02,       //   Report Count (2)
    0x81, 0x22,       //   Input (Data, Var, Abs, No Preferred)
    0x09, 0x2f,       //   Usage (Phone Mute)
    0x09, 0x21,       //   Usage (Flash)
    0x95, 0x02,       //   Report Count (2)
    0x81, 0x06,       //   Input (Data, Var, Rel)
    0x95, 0x04,       //   Report Count (4)
    0x81, 0x03,       //   Input (Const) padding
    0x05, 0x08,       //   Usage Page (LEDs)
    0x09, 0x17,       //   Usage (Off-Hook)
    0x09, 0x09,       //   Usage (Mute)
    0x09, 0x18,       //   Usage (Ring)
    0x09, 0x20,       //   Usage (Hold)
    0x95, 0x04,       //   Report Count (4)
    0x91, 0x22,       //   Output (Data, Var, Abs, No Preferred)
    0x95, 0x04,       //   Report Count (4)
    0x91, 0x03,       //   Output (Const) padding
    0x85, 0x03,       //   Report ID (3)
    0x05, 0x0b,       //   Usage Page (Telephony)
    0x09, 0x9e,       //   Usage (Ringer)
    0x95, 0x01,       //   Report Count (1)
    0x91, 0x22,       //   Output (Data, Var, Abs)
    0x95, 0x07,       //   Report Count (7)
    0x91, 0x03,       //   Output (Const) padding
    0xc0,             // End Collection
  ],
  reports: {
    offHook: [0x02, 0x01],
    onHook: [0x02, 0x00],
    mutePress: [0x02, 0x05],
    muteRelease: [0x02, 0x01],
  },
};

/** A one-button USB panic button: unnumbered 1-byte report, bit 0 = pressed. */
export const PANIC_BUTTON: HidModel & { reports: { press: number[]; release: number[] } } = {
  name: 'panic-button',
  vendorId: TEST_VID,
  productId: 0xcb02,
  manufacturer: 'Callbox simulation',
  product: 'USB panic button (simulated)',
  usagePage: 0x01,
  usage: 0x05,
  // biome-ignore format: one HID item per line
  descriptor: [
    0x05, 0x01, 0x09, 0x05, 0xa1, 0x01,  // Generic Desktop, Game Pad, Application
    0x05, 0x09, 0x19, 0x01, 0x29, 0x01,  // Buttons 1..1
    0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x01, 0x81, 0x02,
    0x95, 0x07, 0x81, 0x03,              // padding
    0xc0,
  ],
  reports: { press: [0x01], release: [0x00] },
};

/** A foot switch that types a key (boot keyboard report): F13 (0x68). */
export const KEYBOARD_BUTTON: HidModel & { reports: { press: number[]; release: number[] } } = {
  name: 'keyboard-button',
  vendorId: TEST_VID,
  productId: 0xcb03,
  manufacturer: 'Callbox simulation',
  product: 'USB foot switch, keyboard mode (simulated)',
  usagePage: 0x01,
  usage: 0x06,
  // biome-ignore format: one HID item per line
  descriptor: [
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01,              // Generic Desktop, Keyboard
    0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, // modifiers
    0x95, 0x01, 0x75, 0x08, 0x81, 0x03,              // reserved
    0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x25, 0x73, 0x05, 0x07, 0x19, 0x00, 0x29, 0x73, 0x81, 0x00, // keys
    0xc0,
  ],
  reports: { press: [0, 0, 0x68, 0, 0, 0, 0, 0], release: [0, 0, 0, 0, 0, 0, 0, 0] },
};
