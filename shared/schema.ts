/**
 * Small schema builders used by the contract and the configuration schemas,
 * so that every duration says its unit, range and default the same way and
 * every object that comes from outside rejects unknown fields.
 */
import { type ObjectOptions, type TProperties, Type } from '@sinclair/typebox';
import { DEVICE_ID_PATTERN, E164_PATTERN, UUID_PATTERN } from './ids.js';

export { type Static, type TSchema, Type } from '@sinclair/typebox';

/** An object that rejects unknown fields (commands, configuration: typos must not pass). */
export function Strict<T extends TProperties>(properties: T, options: ObjectOptions = {}) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

/** A section of a configuration: unknown fields rejected, defaults filled in when absent. */
export function Section<T extends TProperties>(properties: T, description: string) {
  return Type.Object(properties, { additionalProperties: false, default: {}, description });
}

interface DurationOpts {
  default: number;
  minimum: number;
  maximum: number;
}

function duration(unit: 'milliseconds' | 'seconds' | 'minutes' | 'hours', description: string, o: DurationOpts) {
  return Type.Integer({
    ...o,
    description: `${description} (${unit}, ${o.minimum} to ${o.maximum}, default ${o.default})`,
  });
}

export const Millis = (description: string, o: DurationOpts) => duration('milliseconds', description, o);
export const Seconds = (description: string, o: DurationOpts) => duration('seconds', description, o);
export const Minutes = (description: string, o: DurationOpts) => duration('minutes', description, o);
export const Hours = (description: string, o: DurationOpts) => duration('hours', description, o);

export const PhoneNumber = (description = 'phone number in E.164 form, e.g. +15551234567') =>
  Type.String({ pattern: E164_PATTERN, description });
export const DeviceId = () => Type.String({ pattern: DEVICE_ID_PATTERN, description: 'device id' });
export const Uuid = (description = 'UUID') => Type.String({ pattern: UUID_PATTERN, description });
export const Timestamp = (description = 'ISO 8601 time with zone, e.g. 2026-11-26T09:15:00.000Z') =>
  Type.String({ format: 'date-time', description });
export const Timezone = () =>
  Type.String({ format: 'iana-timezone', description: 'IANA time zone, e.g. Europe/Berlin or America/New_York' });
export const ClockTime = (description: string) =>
  Type.String({ format: 'hh:mm', description: `${description} (HH:MM, 24 h)` });
export const Nullable = <T extends import('@sinclair/typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);
export const SchemaVersion = <N extends number>(n: N) =>
  Type.Literal(n, { description: 'schema version of this message' });
