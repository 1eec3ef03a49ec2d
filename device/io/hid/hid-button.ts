/**
 * A USB HID panic button: which report bit means "pressed" comes from the
 * configuration (vendor/product id, report id, byte, mask), or, for
 * buttons that present as a keyboard, a key usage in the boot keyboard
 * report (modifiers, reserved, six key slots).
 */
import type { Static } from '../../../shared/schema.js';
import type { HidButtonSchema } from '../config.js';

export type HidButtonConfig = Static<typeof HidButtonSchema>;

/** Pressed state from one input report, or null when the report is not this button's. */
export function hidButtonPressed(cfg: HidButtonConfig, data: ArrayLike<number>): boolean | null {
  let off = 0;
  if (cfg.reportId > 0) {
    if (data[0] !== cfg.reportId) return null;
    off = 1;
  }
  if (cfg.kind === 'keyboard') {
    for (let k = off + 2; k < Math.min(data.length, off + 8); k++) if (data[k] === cfg.keyUsage) return true;
    return false;
  }
  const byte = data[off + cfg.byte];
  if (byte === undefined) return null;
  return (byte & cfg.mask) !== 0;
}
