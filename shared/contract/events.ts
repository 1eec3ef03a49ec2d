/**
 * Events a box reports. Every event is one envelope on
 * callbox/v1/<deviceId>/events (QoS 1, not retained), committed to the box's
 * outbox before it is published and applied once at the fleet by its id.
 *
 * To add an event type: add its body below and a line in EVENT_BODIES; the
 * union, the validator and docs/PROTOCOL.md follow.
 */
import {
  DeviceId,
  Nullable,
  PhoneNumber,
  SchemaVersion,
  type Static,
  Strict,
  Timestamp,
  Type,
  Uuid,
} from '../schema.js';

const CallId = () =>
  Type.String({ minLength: 1, maxLength: 64, description: 'id of the call, shared by all its events' });
/** A caller id: E.164, a national number as the network sent it, or null when withheld. */
const Caller = () =>
  Nullable(Type.String({ pattern: '^\\+?[0-9*#]{1,20}$', description: 'caller number as the network sent it' }));

export const CallOutcome = Type.Union(
  [
    Type.Literal('answered'),
    Type.Literal('missed'),
    Type.Literal('abandoned'),
    Type.Literal('voicemail'),
    Type.Literal('voicemail_failed'),
    Type.Literal('rolled_over'),
  ],
  {
    description:
      'voicemail: the box answered and the message is stored on the box; voicemail_failed: the box answered but the recording failed (the message is lost; added in contract 1.1, a fleet before it refuses the value, so update the fleet first)',
  },
);

const CallBase = {
  callId: CallId(),
  number: Caller(),
  withheld: Type.Boolean(),
};

export const EVENT_BODIES = {
  'call.incoming': Strict({
    ...CallBase,
    inHours: Type.Boolean(),
    repeatCaller: Type.Boolean(),
    waiting: Type.Boolean(),
  }),
  'call.answered': Strict({
    ...CallBase,
    by: Type.Union([
      Type.Literal('handset'),
      Type.Literal('button'),
      Type.Literal('network'),
      Type.Literal('voicemail'),
    ]),
    rings: Type.Integer({ minimum: 0 }),
    timeToAnswerMs: Type.Integer({ minimum: 0 }),
  }),
  'call.rolled_over': Strict({
    ...CallBase,
    to: PhoneNumber(),
    how: Type.Union([Type.Literal('deflect'), Type.Literal('forwarding')]),
    rings: Type.Integer({ minimum: 0 }),
  }),
  'call.ended': Strict({
    ...CallBase,
    outcome: CallOutcome,
    rings: Type.Integer({ minimum: 0 }),
    timeToAnswerMs: Nullable(Type.Integer({ minimum: 0 })),
    durationMs: Type.Integer({ minimum: 0, description: 'talk time after answer; 0 if never answered' }),
    repeatCaller: Type.Boolean(),
    inHours: Type.Boolean(),
    voicemailError: Type.Optional(
      Type.String({ maxLength: 200, description: 'outcome voicemail_failed: why the recording was not kept' }),
    ),
  }),
  'call.followup_sms': Strict({
    callId: CallId(),
    number: PhoneNumber(),
    status: Type.Union([Type.Literal('sent'), Type.Literal('failed')]),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  }),
  'survey.sent': Strict(
    {
      callId: CallId(),
      number: PhoneNumber(),
      status: Type.Union([Type.Literal('sent'), Type.Literal('failed')]),
      attempts: Type.Integer({ minimum: 1, description: 'sends tried (failed: all of them failed)' }),
      reason: Type.Optional(Type.String({ maxLength: 500 })),
    },
    {
      description:
        'the after-call survey SMS to the caller of an answered call (settings.survey); added in contract 1.2: a fleet before it refuses the event, so update the fleet before enabling the survey',
    },
  ),
  'survey.reply': Strict(
    {
      callId: CallId(),
      number: PhoneNumber(),
      score: Type.Integer({ minimum: 1, maximum: 5, description: 'the digit the caller replied, 1 (bad) to 5 (good)' }),
      sentAt: Timestamp('when the survey SMS this answers was sent'),
    },
    {
      description:
        'a reply 1-5 to a survey, from the surveyed number within settings.survey.replyWindowH (instead of sms.received); added in contract 1.2',
    },
  ),
  'panic.pressed': Strict({
    panicId: Uuid('id of this panic'),
    source: Type.String({ maxLength: 120, description: 'button that was pressed' }),
  }),
  'panic.cancelled': Strict({ panicId: Uuid() }),
  'panic.acknowledged': Strict({ panicId: Uuid(), by: Type.String({ maxLength: 120 }) }),
  'panic.sms': Strict({
    panicId: Uuid(),
    to: PhoneNumber(),
    status: Type.Union([Type.Literal('sent'), Type.Literal('failed')]),
    attempt: Type.Integer({ minimum: 1 }),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  }),
  'panic.fault': Strict({
    source: Type.String({ maxLength: 120 }),
    fault: Type.String({ maxLength: 500, description: 'e.g. stuck: held down for 60 s' }),
  }),
  'voicemail.recorded': Strict({
    voicemailId: Uuid(),
    callId: CallId(),
    number: Caller(),
    durationMs: Type.Integer({ minimum: 0 }),
    bytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    endedBy: Type.Optional(
      Type.Union([Type.Literal('hangup'), Type.Literal('max'), Type.Literal('silence')], {
        description:
          'why the recording ended: the caller hung up, it reached voicemail.maxLengthS, or voicemail.silenceEndS of trailing silence (added in contract 1.2: absent from older boxes, refused by older fleets, so update the fleet first)',
      }),
    ),
    empty: Type.Optional(
      Type.Boolean({
        description:
          'true when no 20 ms frame of the message was louder than voicemail.silenceDbfs: the message is kept but holds only silence (added in contract 1.2, like endedBy)',
      }),
    ),
  }),
  'modem.state': Strict({
    state: Type.Union([
      Type.Literal('ready'),
      Type.Literal('disconnected'),
      Type.Literal('sim_missing'),
      Type.Literal('sim_pin'),
      Type.Literal('not_registered'),
      Type.Literal('registration_denied'),
      Type.Literal('no_signal'),
      Type.Literal('resetting'),
    ]),
    detail: Type.Optional(Type.String({ maxLength: 500 })),
  }),
  'sms.received': Strict({
    from: Type.String({
      minLength: 1,
      maxLength: 32,
      description: 'sender as the network gave it (E.164 or national)',
    }),
    text: Type.String({ maxLength: 1600, description: 'the message text, decoded' }),
    at: Timestamp('when the network says it was sent (the SMSC timestamp)'),
  }),
  'forwarding.state': Strict({
    reason: Type.Union([
      Type.Literal('unconditional'),
      Type.Literal('busy'),
      Type.Literal('no_reply'),
      Type.Literal('not_reachable'),
    ]),
    enabled: Type.Boolean(),
    number: Nullable(PhoneNumber()),
    confirmed: Type.Boolean({ description: 'read back from the network with AT+CCFC query' }),
  }),
  'store.quarantined': Strict({
    movedTo: Type.String({ maxLength: 512, description: 'where the corrupt store file was set aside on the box' }),
    reason: Type.String({ maxLength: 2000, description: 'what the integrity check found' }),
  }),
} as const;

/**
 * The largest sequence number (2^32 - 1: 136 years of an event a second). Far below 2^53, where
 * seq + 1 === seq and gap detection would see nothing.
 */
export const MAX_SEQ = 4_294_967_295;

/** How far ahead of the fleet's clock an event's `at` may be (a box clock a little fast is fine; year 9999 is not). */
export const MAX_FUTURE_SKEW_MS = 24 * 3_600_000;

export type EventType = keyof typeof EVENT_BODIES;
export const EVENT_TYPES = Object.keys(EVENT_BODIES) as EventType[];

function envelope<K extends EventType>(type: K) {
  return Strict(
    {
      v: SchemaVersion(1),
      id: Uuid('UUIDv7 event id: unique, sorts by time'),
      deviceId: DeviceId(),
      bootId: Uuid('id of the run of the box that made the event'),
      seq: Type.Integer({
        minimum: 1,
        maximum: MAX_SEQ,
        description: 'per-device sequence number, +1 per event, kept across reboots',
      }),
      at: Timestamp('when the thing happened, on the box clock'),
      type: Type.Literal(type),
      body: EVENT_BODIES[type],
    },
    { $id: `event:${type}`, description: `event ${type}` },
  );
}

type EnvelopeOf<K extends EventType> = ReturnType<typeof envelope<K>>;
export const EVENT_SCHEMAS = Object.fromEntries(EVENT_TYPES.map((t) => [t, envelope(t)])) as {
  [K in EventType]: EnvelopeOf<K>;
};

export const EventEnvelopeSchema = Type.Union(
  EVENT_TYPES.map((t) => EVENT_SCHEMAS[t]),
  { description: 'any event' },
);

export type EventBody<K extends EventType> = Static<(typeof EVENT_BODIES)[K]>;
export type EventOf<K extends EventType> = Static<EnvelopeOf<K>>;
export type AnyEvent = { [K in EventType]: EventOf<K> }[EventType];
