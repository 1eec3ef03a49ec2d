/**
 * Request/response on MQTT 3.1.1 (aedes speaks nothing newer, so no
 * response-topic property): the request carries an id, the reply goes to the
 * paired topic fixed by the contract (…/req -> …/res) carrying the same id.
 * A responder answers a repeated id with its first answer (idempotent), and
 * a requester gives up after its timeout with RequestTimeout naming the
 * method.
 *
 * Method tables: DEVICE_COMMANDS (fleet -> box, cmd/req), FLEET_REQUESTS
 * (box -> fleet, fleet/req). Ops methods are in ops.ts.
 */
import {
  Nullable,
  PhoneNumber,
  SchemaVersion,
  type Static,
  Strict,
  Timestamp,
  type TSchema,
  Type,
  Uuid,
} from '../schema.js';
import { ConfigDesiredSchema } from './messages.js';
import { UPDATE_CHUNK_METHOD } from './update.js';

/**
 * Version 2 (this contract) adds `expiresAt`: the responder refuses a request
 * it gets after that time on its own clock (error 207 RequestExpired, naming
 * the expiry and the responder's clock), so a command queued for an offline
 * box in its persistent session does not run hours later. A responder still
 * takes version 1 (no expiry: older requesters); a responder older than
 * version 2 refuses a version 2 request on `v`, so boxes are updated before
 * the fleet that commands them. Box -> fleet requests (config.get) stay at
 * version 1, which every fleet reads.
 */
export const REQUEST_VERSION = 2;

export const RequestSchema = Strict({
  v: Type.Union([Type.Literal(1), Type.Literal(2)], {
    description: 'schema version of this message: 2 carries expiresAt; 1 (older requesters) never expires',
  }),
  id: Uuid('request id (UUIDv7); repeats get the first answer'),
  method: Type.String({ minLength: 1, maxLength: 64 }),
  params: Type.Unknown({ description: 'validated against the method' }),
  sentAt: Timestamp(),
  timeoutMs: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 600_000,
      description: 'how long the requester waits; answers after it are dropped',
    }),
  ),
  expiresAt: Type.Optional(
    Timestamp(
      'version 2, required: the responder refuses the request when its own clock is past this time (RequestExpired)',
    ),
  ),
});
export type RpcRequest = Static<typeof RequestSchema>;

export const ErrorShape = Strict({
  code: Type.Integer({ description: 'ErrorCode from shared/errors.ts' }),
  name: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Unknown()),
});

export const ResponseSchema = Type.Union([
  Strict({ v: SchemaVersion(1), id: Uuid(), ok: Type.Literal(true), result: Type.Unknown() }),
  Strict({ v: SchemaVersion(1), id: Uuid(), ok: Type.Literal(false), error: ErrorShape }),
]);
export type RpcResponse = Static<typeof ResponseSchema>;

export interface MethodSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  params: P;
  result: R;
  description: string;
  example: { params: Static<P>; result: Static<R> };
}

function method<P extends TSchema, R extends TSchema>(spec: MethodSpec<P, R>): MethodSpec<P, R> {
  return spec;
}

const ForwardingReason = Type.Union(
  [Type.Literal('unconditional'), Type.Literal('busy'), Type.Literal('no_reply'), Type.Literal('not_reachable')],
  { description: '3GPP TS 27.007 7.11 reasons 0-3' },
);

const ForwardingState = Strict({
  reason: ForwardingReason,
  enabled: Type.Boolean(),
  number: Nullable(PhoneNumber()),
  confirmed: Type.Boolean({ description: 'read back with AT+CCFC query after the change' }),
});

export const DEVICE_COMMANDS = {
  'forwarding.set': method({
    description: "switch network call forwarding (the clinic's rollover) on or off; confirmed by reading it back",
    params: Strict({
      enabled: Type.Boolean(),
      reason: Type.Optional(ForwardingReason),
      number: Type.Optional(PhoneNumber('forward to; default: the rollover number from the settings')),
      reasonText: Type.Optional(Type.String({ maxLength: 200, description: 'why, for the box log and events' })),
    }),
    result: ForwardingState,
    example: {
      params: { enabled: true, reason: 'unconditional', number: '+15550001111' },
      result: { reason: 'unconditional', enabled: true, number: '+15550001111', confirmed: true },
    },
  }),
  'forwarding.query': method({
    description: 'read every forwarding reason back from the network',
    params: Strict({}),
    result: Strict({ states: Type.Array(ForwardingState) }),
    example: {
      params: {},
      result: { states: [{ reason: 'unconditional', enabled: false, number: null, confirmed: true }] },
    },
  }),
  'sms.send': method({
    description: 'send an SMS through the box modem (alerts when a clinic has no other channel)',
    params: Strict({ to: PhoneNumber(), text: Type.String({ minLength: 1, maxLength: 1530 }) }),
    result: Strict({ parts: Type.Integer({ minimum: 1 }), references: Type.Array(Type.Integer()) }),
    example: {
      params: { to: '+15550002222', text: 'Panic at Main St clinic' },
      result: { parts: 1, references: [17] },
    },
  }),
  'panic.ack': method({
    description: 'a person acknowledged a panic: show it on the LEDs and stop the SMS fallback',
    params: Strict({ panicId: Uuid(), by: Type.String({ minLength: 1, maxLength: 120 }) }),
    result: Strict({ acknowledged: Type.Boolean() }),
    example: {
      params: { panicId: '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a', by: 'ops:alice' },
      result: { acknowledged: true },
    },
  }),
  'indicators.test': method({
    description: 'run every LED and the buzzer briefly',
    params: Strict({ durationMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000 })) }),
    result: Strict({ tested: Type.Array(Type.String()) }),
    example: { params: { durationMs: 2000 }, result: { tested: ['ring', 'missed', 'voicemail', 'status', 'buzzer'] } },
  }),
  'voicemail.heard': method({
    description:
      'someone listened to a voicemail of this box at the fleet: it is no longer unheard, and the voicemail light goes out when none is left (idempotent; an id the box does not hold changes nothing)',
    params: Strict({ voicemailId: Uuid('the voicemail, as in voicemail.recorded') }),
    result: Strict({
      cleared: Type.Boolean({ description: 'the box held it as unheard until now' }),
      unheard: Type.Integer({
        minimum: 0,
        description: 'voicemails still unheard on the box (the light is on while above 0)',
      }),
    }),
    example: {
      params: { voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6c' },
      result: { cleared: true, unheard: 0 },
    },
  }),
  reboot: method({
    description: 'restart the box software (systemd restarts it)',
    params: Strict({ delayS: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })) }),
    result: Strict({ scheduledAt: Timestamp() }),
    example: { params: { delayS: 5 }, result: { scheduledAt: '2026-11-26T10:00:05.000Z' } },
  }),
  'diagnostics.collect': method({
    description: 'a snapshot of the box: modem, link, outbox, disk, versions',
    params: Strict({}),
    result: Type.Record(Type.String(), Type.Unknown()),
    example: { params: {}, result: { modem: { state: 'ready' }, outboxDepth: 0 } },
  }),
} as const;
export type DeviceCommand = keyof typeof DEVICE_COMMANDS;

export const FLEET_REQUESTS = {
  'config.get': method({
    description: 'the full desired configuration for the asking box (null before any was set)',
    params: Strict({}),
    result: Nullable(ConfigDesiredSchema),
    example: { params: {}, result: null },
  }),
  'update.chunk': method(UPDATE_CHUNK_METHOD),
} as const;

export type MethodTable = Record<string, MethodSpec>;
export type ParamsOf<T extends MethodTable, M extends keyof T> = Static<T[M]['params']>;
export type ResultOf<T extends MethodTable, M extends keyof T> = Static<T[M]['result']>;
