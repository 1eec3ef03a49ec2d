/**
 * Messages other than events and request/response: status, telemetry,
 * configuration and voicemail upload.
 */
import { CallboxError, ErrorCode } from '../errors.js';
import { DeviceId, Nullable, SchemaVersion, type Static, Strict, Timestamp, Type, Uuid } from '../schema.js';
import { utf8Of, validate } from '../validate.js';
import { type AnyEvent, EVENT_SCHEMAS, EVENT_TYPES, type EventType } from './events.js';
import { DeviceSettingsSchema } from './settings.js';

/** Retained on callbox/v1/<id>/status; the last will publishes state "offline". */
export const StatusSchema = Strict({
  v: SchemaVersion(1),
  state: Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('provisioning')]),
  at: Timestamp(),
  bootId: Type.Optional(Uuid()),
  softwareVersion: Type.Optional(Type.String({ maxLength: 40 })),
  reason: Type.Optional(Type.String({ maxLength: 200, description: 'why offline: will, shutdown, revoked' })),
});
export type Status = Static<typeof StatusSchema>;

export const TelemetrySchema = Strict({
  v: SchemaVersion(1),
  at: Timestamp(),
  bootId: Uuid(),
  uptimeS: Type.Integer({ minimum: 0 }),
  softwareVersion: Type.String({ maxLength: 40 }),
  modem: Strict({
    state: Type.String({ maxLength: 40 }),
    signalDbm: Nullable(Type.Integer({ minimum: -140, maximum: 0, description: 'null when unknown (CSQ 99)' })),
    registration: Type.String({ maxLength: 40, description: 'home, roaming, searching, denied, unknown, ...' }),
    operator: Nullable(Type.String({ maxLength: 64 })),
    model: Nullable(Type.String({ maxLength: 64 })),
    firmware: Nullable(Type.String({ maxLength: 128 })),
    simPresent: Type.Boolean(),
  }),
  freeDiskBytes: Type.Integer({ minimum: 0 }),
  outboxDepth: Type.Integer({ minimum: 0 }),
  voicemailsPending: Type.Integer({ minimum: 0 }),
  voicemailsUnheard: Type.Optional(
    Type.Integer({
      minimum: 0,
      description:
        'voicemails recorded on this box that the fleet has not reported heard (voicemail.heard): the voicemail light is on while above 0 (added in contract 1.2; older fleets refuse it, so update the fleet first)',
    }),
  ),
  configVersion: Nullable(Type.Integer({ minimum: 0 })),
});
export type Telemetry = Static<typeof TelemetrySchema>;

/** Retained on callbox/v1/<id>/config/desired by the fleet. */
export const ConfigDesiredSchema = Strict({
  v: SchemaVersion(1),
  version: Type.Integer({ minimum: 1, description: 'increases with every change' }),
  at: Timestamp(),
  settings: DeviceSettingsSchema,
});
export type ConfigDesired = Static<typeof ConfigDesiredSchema>;

/** Retained on callbox/v1/<id>/config/reported by the box. */
export const ConfigReportedSchema = Strict({
  v: SchemaVersion(1),
  version: Type.Integer({ minimum: 0, description: 'the version this report is about' }),
  state: Type.Union([Type.Literal('applied'), Type.Literal('refused')]),
  appliedVersion: Nullable(Type.Integer({ minimum: 0, description: 'version in force on the box now' })),
  reason: Type.Optional(Type.String({ maxLength: 2000, description: 'why refused: the fields and what was wrong' })),
  at: Timestamp(),
});
export type ConfigReported = Static<typeof ConfigReportedSchema>;

/** One chunk of a voicemail upload, on callbox/v1/<id>/voicemail/chunk (QoS 1). */
export const VoicemailChunkSchema = Strict({
  v: SchemaVersion(1),
  voicemailId: Uuid(),
  index: Type.Integer({ minimum: 0, description: 'below count' }),
  count: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    description: `chunks of the recording: every chunk but the last holds at least 1024 bytes, so count <= ceil(totalBytes / 1024)`,
  }),
  totalBytes: Type.Integer({
    minimum: 0,
    maximum: 67_108_864,
    description: 'bytes of the whole recording (64 MiB at most)',
  }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'checksum of the whole recording' }),
  data: Type.String({ contentEncoding: 'base64', maxLength: 65_536, description: 'base64 bytes of this chunk' }),
});
export type VoicemailChunk = Static<typeof VoicemailChunkSchema>;

/**
 * The fleet's answer on callbox/v1/<id>/voicemail/ack: "complete" names the
 * checksum it verified (the box may then delete its copy); "missing" lists
 * the chunk indexes it still needs (resume).
 */
export const VoicemailAckSchema = Strict({
  v: SchemaVersion(1),
  voicemailId: Uuid(),
  state: Type.Union([Type.Literal('complete'), Type.Literal('missing'), Type.Literal('checksum_mismatch')]),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  missing: Type.Array(Type.Integer({ minimum: 0 }), { default: [], maxItems: 100_000 }),
});
export type VoicemailAck = Static<typeof VoicemailAckSchema>;

/** Claim request from a new box (claim credential), on callbox/v1/_claim/<serial>/req. */
export const ClaimRequestSchema = Strict({
  v: SchemaVersion(1),
  id: Uuid('request id'),
  serial: Type.String({ pattern: '^[A-Z0-9][A-Z0-9-]{3,31}$' }),
  model: Type.String({ maxLength: 64 }),
  softwareVersion: Type.String({ maxLength: 40 }),
});
export type ClaimRequest = Static<typeof ClaimRequestSchema>;

/** The fleet's answer on callbox/v1/_claim/<serial>/res. */
export const ClaimResponseSchema = Type.Union([
  Strict({
    v: SchemaVersion(1),
    id: Uuid('the request id answered'),
    state: Type.Literal('approved'),
    deviceId: DeviceId(),
    username: Type.String({ minLength: 1, maxLength: 128 }),
    password: Type.String({ minLength: 16, maxLength: 256 }),
    caPem: Nullable(Type.String({ maxLength: 16_384, description: 'CA to pin for TLS; null on loopback' })),
    brokerUrl: Nullable(Type.String({ maxLength: 256, description: 'where to connect as the device; null: same' })),
  }),
  Strict({
    v: SchemaVersion(1),
    id: Uuid(),
    state: Type.Union([Type.Literal('pending'), Type.Literal('rejected')]),
    reason: Type.String({ maxLength: 500 }),
  }),
]);
export type ClaimResponse = Static<typeof ClaimResponseSchema>;

/**
 * Decode and validate an event payload. The type is checked first so that
 * an error names the field of the right event rather than every union member.
 */
export function decodeEvent(payload: Buffer | string): AnyEvent {
  return decodeEventValue(parseJson(payload, 'event'));
}

/** Parse a JSON payload; a parse failure is a ValidationFailed naming `what`. */
export function parseJson(payload: Buffer | string, what: string): unknown {
  const text = utf8Of(payload, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CallboxError(ErrorCode.ValidationFailed, `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Validate one already parsed event (see decodeEvent). */
export function decodeEventValue(value: unknown): AnyEvent {
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !(EVENT_TYPES as string[]).includes(type)) {
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `event is invalid: /type: got ${JSON.stringify(type)}, expected one of ${EVENT_TYPES.join(', ')}`,
    );
  }
  return validate(EVENT_SCHEMAS[type as EventType], value, `event ${type}`) as AnyEvent;
}
