/**
 * One documented example of every message. docs/PROTOCOL.md shows them and
 * the contract tests check that each one passes its schema, so an example
 * can never drift from the code.
 */
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { EventBatchSchema, ReceiptSchema } from './delivery.js';
import type { EventBody, EventType } from './events.js';
import {
  ClaimRequestSchema,
  ClaimResponseSchema,
  ConfigDesiredSchema,
  ConfigReportedSchema,
  StatusSchema,
  TelemetrySchema,
  VoicemailAckSchema,
  VoicemailChunkSchema,
} from './messages.js';
import { RequestSchema, ResponseSchema } from './rpc.js';
import { DeviceSettingsSchema } from './settings.js';
import { UpdateOfferSchema, UpdateProgressSchema } from './update.js';

const DEVICE = 'cb-0001';
const BOOT = '7d0c8a52-3b1e-4c55-9a0e-2f4b6c8d1e3f';
const AT = '2026-11-26T09:15:02.120Z';
const CALL = 'c-0193b2a4-2f1e';
const PANIC = '0193b2a4-4c00-7a21-8f00-6b1d2e3f4a5b';
const VM = '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6c';

export const EVENT_EXAMPLES: { [K in EventType]: EventBody<K> } = {
  'call.incoming': {
    callId: CALL,
    number: '+15551234567',
    withheld: false,
    inHours: true,
    repeatCaller: false,
    waiting: false,
  },
  'call.answered': {
    callId: CALL,
    number: '+15551234567',
    withheld: false,
    by: 'handset',
    rings: 3,
    timeToAnswerMs: 9100,
  },
  'call.rolled_over': {
    callId: CALL,
    number: null,
    withheld: true,
    to: '+15550009999',
    how: 'deflect',
    rings: 5,
  },
  'call.ended': {
    callId: CALL,
    number: '+15551234567',
    withheld: false,
    outcome: 'answered',
    rings: 3,
    timeToAnswerMs: 9100,
    durationMs: 184_000,
    repeatCaller: false,
    inHours: true,
  },
  'call.followup_sms': { callId: CALL, number: '+15551234567', status: 'sent' },
  'survey.sent': { callId: CALL, number: '+15551234567', status: 'sent', attempts: 1 },
  'survey.reply': { callId: CALL, number: '+15551234567', score: 4, sentAt: '2026-11-26T09:20:02.000Z' },
  'panic.pressed': { panicId: PANIC, source: 'gpio:panic' },
  'panic.cancelled': { panicId: PANIC },
  'panic.acknowledged': { panicId: PANIC, by: 'ops:alice' },
  'panic.sms': { panicId: PANIC, to: '+15550002222', status: 'sent', attempt: 1 },
  'panic.fault': { source: 'gpio:panic', fault: 'stuck: held down for 60 s' },
  'voicemail.recorded': {
    voicemailId: VM,
    callId: CALL,
    number: '+15551234567',
    durationMs: 31_500,
    bytes: 504_000,
    sha256: 'a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
    endedBy: 'silence',
    empty: false,
  },
  'modem.state': { state: 'ready' },
  'sms.received': { from: '+15550002222', text: 'ACK 4821', at: '2026-11-26T09:16:40.000Z' },
  'forwarding.state': { reason: 'unconditional', enabled: true, number: '+15550009999', confirmed: true },
  'store.quarantined': {
    movedTo: '/var/lib/callbox/quarantine/box.db.2026-11-26T09-15-02Z',
    reason: 'PRAGMA integrity_check: database disk image is malformed',
  },
};

export function eventExample<K extends EventType>(type: K, seq = 42) {
  return {
    v: 1 as const,
    id: '0193b2a4-2f1e-7c3d-8e4f-5a6b7c8d9e0f',
    deviceId: DEVICE,
    bootId: BOOT,
    seq,
    at: AT,
    type,
    body: EVENT_EXAMPLES[type],
  };
}

const SETTINGS = Value.Default(DeviceSettingsSchema, {
  clinic: { name: 'Main Street Family Practice', timezone: 'America/New_York' },
  hours: {
    weekly: {
      mon: [{ open: '08:00', close: '17:00' }],
      tue: [{ open: '08:00', close: '17:00' }],
      wed: [{ open: '08:00', close: '17:00' }],
      thu: [{ open: '08:00', close: '17:00' }],
      fri: [{ open: '08:00', close: '15:00' }],
    },
    lunch: { start: '12:00', end: '13:00' },
    closures: [{ date: '2026-12-25', reason: 'Christmas Day' }],
  },
  rollover: { number: '+15550009999' },
  panic: { contacts: ['+15550002222', '+15550003333'] },
});

export interface MessageExample {
  name: string;
  schema: TSchema;
  example: unknown;
}

const STREAM = '0193b2a4-1a00-7e65-8d44-0f5b6c7d8e9f';

export const MESSAGE_EXAMPLES: MessageExample[] = [
  {
    name: 'EventBatch',
    schema: EventBatchSchema,
    example: {
      v: 1,
      deviceId: DEVICE,
      stream: STREAM,
      floor: 40,
      after: 41,
      events: [
        eventExample('call.incoming', 42),
        { ...eventExample('call.answered', 43), id: '0193b2a4-3a10-7c3d-8e4f-5a6b7c8d9e10' },
      ],
    },
  },
  { name: 'Receipt', schema: ReceiptSchema, example: { v: 1, stream: STREAM, seq: 43, at: AT } },
  {
    name: 'Status',
    schema: StatusSchema,
    example: { v: 1, state: 'online', at: AT, bootId: BOOT, softwareVersion: '0.1.0' },
  },
  {
    name: 'Telemetry',
    schema: TelemetrySchema,
    example: {
      v: 1,
      at: AT,
      bootId: BOOT,
      uptimeS: 86_400,
      softwareVersion: '0.1.0',
      modem: {
        state: 'ready',
        signalDbm: -73,
        registration: 'home',
        operator: 'T-Mobile',
        model: 'SIMCOM_SIM7600E-H',
        firmware: 'LE20B04SIM7600M22',
        simPresent: true,
      },
      freeDiskBytes: 12_884_901_888,
      outboxDepth: 0,
      voicemailsPending: 1,
      voicemailsUnheard: 2,
      configVersion: 7,
    },
  },
  {
    name: 'UpdateOffer',
    schema: UpdateOfferSchema,
    example: {
      v: 1,
      rolloutId: STREAM,
      program: 'device',
      version: '1.2.0',
      totalBytes: 31_457_280,
      sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
      at: AT,
    },
  },
  {
    name: 'UpdateProgress',
    schema: UpdateProgressSchema,
    example: {
      v: 1,
      rolloutId: STREAM,
      version: '1.2.0',
      state: 'rolled_back',
      running: '1.1.0',
      reason: 'release 1.2.0 did not confirm its health before 2026-11-26T10:05:00.000Z: modem not ready',
      at: AT,
    },
  },
  { name: 'ConfigDesired', schema: ConfigDesiredSchema, example: { v: 1, version: 7, at: AT, settings: SETTINGS } },
  {
    name: 'ConfigReported',
    schema: ConfigReportedSchema,
    example: {
      v: 1,
      version: 8,
      state: 'refused',
      appliedVersion: 7,
      reason: 'settings is invalid: /calls/ringTimeoutS: got -1, expected integer >= 5, <= 300',
      at: AT,
    },
  },
  {
    name: 'VoicemailChunk',
    schema: VoicemailChunkSchema,
    example: {
      v: 1,
      voicemailId: VM,
      index: 0,
      count: 8,
      totalBytes: 504_000,
      sha256: 'a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
      data: 'UklGRiQAAABXQVZFZm10IBAAAAABAAEA',
    },
  },
  {
    name: 'VoicemailAck',
    schema: VoicemailAckSchema,
    example: {
      v: 1,
      voicemailId: VM,
      state: 'complete',
      sha256: 'a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
      missing: [],
    },
  },
  {
    name: 'ClaimRequest',
    schema: ClaimRequestSchema,
    example: {
      v: 1,
      id: '0193b2a4-6e00-7c43-8b22-8d3f4a5b6c7d',
      serial: 'CB24-000123',
      model: 'callbox-1',
      softwareVersion: '0.1.0',
    },
  },
  {
    name: 'ClaimResponse',
    schema: ClaimResponseSchema,
    example: {
      v: 1,
      id: '0193b2a4-6e00-7c43-8b22-8d3f4a5b6c7d',
      state: 'approved',
      deviceId: DEVICE,
      username: DEVICE,
      password: 'kP3v9wQz7XbN2mLr8tYc4hJd',
      caPem: null,
      brokerUrl: null,
    },
  },
  {
    name: 'Request',
    schema: RequestSchema,
    example: {
      v: 2,
      id: '0193b2a4-7f00-7d54-9c33-9e4a5b6c7d8e',
      method: 'forwarding.set',
      params: { enabled: true, reason: 'unconditional', number: '+15550009999' },
      sentAt: AT,
      timeoutMs: 30_000,
      expiresAt: new Date(Date.parse(AT) + 30_000).toISOString(),
    },
  },
  {
    name: 'Response',
    schema: ResponseSchema,
    example: {
      v: 1,
      id: '0193b2a4-7f00-7d54-9c33-9e4a5b6c7d8e',
      ok: false,
      error: {
        code: 300,
        name: 'ModemTimeout',
        message: 'AT+CCFC=0,3,"+15550009999",145 got no reply within 60000 ms',
      },
    },
  },
];
