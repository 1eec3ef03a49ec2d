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
