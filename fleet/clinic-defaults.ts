/**
 * A box's settings are layered, field by field (objects merge, anything else, arrays included, replaces):
 *
 *   the schema's defaults
 *   < what the clinic record says (name, time zone, answering service -> rollover.number, contacts' phones ->
 *     panic.contacts)
 *   < the clinic's box defaults (`fleet clinics set-defaults`: hours, calls, ...)
 *   < the box's own settings (`fleet boxes config set`)
 *
 * So a new box of a clinic starts with the clinic's time zone and hours, and a box's own `hours.weekly.sat`
 * changes Saturday only.
 */
import { Value } from '@sinclair/typebox/value';
import { type DeviceSettings, DeviceSettingsSchema } from '../shared/contract/settings.js';
import { validate } from '../shared/validate.js';
import type { Clinic } from './store/types.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Merge layers field by field: later layers win; objects merge, anything else replaces. */
export function mergeSettings(...layers: (Obj | null | undefined)[]): Obj {
  const out: Obj = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      out[k] = isObj(v) && isObj(out[k]) ? mergeSettings(out[k] as Obj, v) : structuredClone(v);
    }
  }
  return out;
}

/** What the clinic record itself says about its boxes' settings. */
export function clinicBase(clinic: Clinic): Obj {
  const phones = clinic.contacts.flatMap((c) => (c.phone ? [c.phone] : []));
  return {
    clinic: { name: clinic.name, timezone: clinic.timezone },
    ...(clinic.answeringService ? { rollover: { number: clinic.answeringService } } : {}),
    ...(phones.length ? { panic: { contacts: phones.slice(0, 10) } } : {}),
  };
}

/** The settings a box gets: its clinic's (when it has one) under its own, defaults filled, validated. */
export function effectiveSettings(clinic: Clinic | undefined, own: unknown, what: string): DeviceSettings {
  const merged = mergeSettings(
    clinic ? clinicBase(clinic) : undefined,
    clinic?.boxDefaults ?? undefined,
    isObj(own) ? own : undefined,
  );
  if (own !== undefined && own !== null && !isObj(own)) {
    // Not an object: let the schema say so.
    return validate(DeviceSettingsSchema, own, what);
  }
  return validate(DeviceSettingsSchema, Value.Default(DeviceSettingsSchema, merged), what);
}
