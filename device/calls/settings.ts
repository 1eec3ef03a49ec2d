/**
 * DeviceSettings from a partial object: defaults filled in from the schema,
 * then validated whole (a bad field throws ValidationFailed naming it). Used
 * by tests and by anything that builds settings by hand.
 */
import { Value } from '@sinclair/typebox/value';
import { type DeviceSettings, DeviceSettingsSchema } from '../../shared/contract/settings.js';
import { validate } from '../../shared/validate.js';

export type DeepPartial<T> = T extends (infer U)[]
  ? U[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

export function settingsFrom(partial: DeepPartial<DeviceSettings> = {}): DeviceSettings {
  const copy = structuredClone(partial);
  return validate(DeviceSettingsSchema, Value.Default(DeviceSettingsSchema, copy), 'device settings');
}

/** `over` laid on `base`, field by field; arrays and scalars in `over` replace those of `base`. */
export function mergePartial<T>(base: T, over: DeepPartial<T> | undefined): T {
  if (over === undefined) return base;
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return over as T;
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over as object)) {
    out[k] = mergePartial((base as Record<string, unknown>)[k], v as never);
  }
  return out as T;
}
