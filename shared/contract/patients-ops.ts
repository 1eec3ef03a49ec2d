/**
 * Ops methods of "who is calling" and follow-up (fleet/patients): the call
 * log with each caller's FHIR match, last contacts and repeat flag; the
 * call-back list; the survey figures; a clinic's FHIR server. Part of
 * OPS_METHODS (./ops.ts), so the CLI, the dashboard and any MQTT tool call
 * them like the others. Answered by fleet/patients/ops.ts.
 *
 * Patient data by role: an operator or admin sees callers' numbers and the
 * FHIR match (name, date of birth); a viewer sees numbers masked to their
 * last four digits and no match. The FHIR token is write-only.
 */
import type { TSchema } from '@sinclair/typebox';
import { Nullable, Strict, Timestamp, Type } from '../schema.js';
import type { MethodSpec } from './rpc.js';

type Role = 'viewer' | 'operator' | 'admin';
interface PatientOpsSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> extends MethodSpec<P, R> {
  role: Role;
  /** What a clinic user may do with it (ClinicScope in ops.ts; none: clinic users are refused). */
  clinic?: 'clinicId';
}
function op<P extends TSchema, R extends TSchema>(spec: PatientOpsSpec<P, R>): PatientOpsSpec<P, R> {
  return spec;
}

const ClinicId = () => Type.String({ minLength: 1, maxLength: 64, description: 'clinic id' });
const CallId = () => Type.String({ minLength: 1, maxLength: 64, description: 'call id (as in the call.* events)' });
const Limit = () => Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'at most (default 100)' }));

export const LOOKUP_STATES = ['pending', 'found', 'none', 'several', 'error', 'skipped', 'off', 'withheld'] as const;

const Lookup = Type.Union(
  LOOKUP_STATES.map((s) => Type.Literal(s)),
  {
    description:
      'the FHIR search: pending (asked), found (one patient), none, several (more than one patient: none picked), error (timeout, refused, 401...: see lookupDetail), skipped (too old, or the queue was full), off (no FHIR server for the clinic), withheld (no number)',
  },
);

export const PatientMatchSchema = Strict({
  name: Nullable(Type.String({ description: 'HumanName use=official, else the first' })),
  birthDate: Nullable(Type.String({ description: 'YYYY, YYYY-MM or YYYY-MM-DD as FHIR gives it' })),
});

export const ContactSchema = Strict({
  kind: Type.Union([Type.Literal('call'), Type.Literal('voicemail'), Type.Literal('sms')]),
  at: Type.String(),
  callId: Nullable(Type.String()),
  detail: Nullable(Type.String({ description: 'a call: its outcome' })),
});

const CallbackState = Type.Union([Type.Literal('open'), Type.Literal('done')]);

export const CallLogEntrySchema = Strict({
  deviceId: Type.String(),
  callId: Type.String(),
  clinicId: Nullable(Type.String()),
  caller: Nullable(Type.String({ description: 'the number (masked for a viewer); null: withheld' })),
  withheld: Type.Boolean(),
  inHours: Nullable(Type.Boolean()),
  startedAt: Type.String(),
  answeredAt: Nullable(Type.String()),
  endedAt: Nullable(Type.String()),
  outcome: Nullable(Type.String({ description: 'as in call.ended; null while the call is live' })),
  rings: Nullable(Type.Integer()),
  durationMs: Nullable(Type.Integer()),
  lookup: Lookup,
  lookupDetail: Nullable(Type.String()),
  matches: Type.Integer({ minimum: 0, description: 'patients the search found (several: none is shown)' }),
  patient: Nullable(PatientMatchSchema),
  lastContacts: Type.Array(ContactSchema),
  repeat: Nullable(Strict({ reason: Type.String() })),
  callback: Nullable(
    Strict({ state: CallbackState, doneBy: Nullable(Type.String()), doneAt: Nullable(Type.String()) }),
  ),
});

export const CallbackSchema = Strict({
  deviceId: Type.String(),
  callId: Type.String(),
  clinicId: Nullable(Type.String()),
  caller: Nullable(Type.String()),
  reason: Type.String({ description: 'the outcome that put the call on the list' }),
  createdAt: Type.String(),
  state: CallbackState,
  doneAt: Nullable(Type.String()),
  doneBy: Nullable(
    Type.String({ description: 'ops:<user>, or auto:answered-call when a later answered call closed it' }),
  ),
  note: Nullable(Type.String()),
  closedByCall: Nullable(Type.String()),
  patient: Nullable(PatientMatchSchema),
  repeat: Nullable(Strict({ reason: Type.String() })),
});

export const SurveySummarySchema = Strict({
  clinicId: Type.String(),
  from: Type.String(),
  to: Type.String(),
  sent: Type.Integer({ minimum: 0 }),
  failed: Type.Integer({ minimum: 0 }),
  replies: Type.Integer({ minimum: 0 }),
  responseRate: Nullable(Type.Number({ description: 'replies / sent' })),
  average: Nullable(Type.Number({ description: 'mean score 1-5; null without replies' })),
  distribution: Strict({
    '1': Type.Integer(),
    '2': Type.Integer(),
    '3': Type.Integer(),
    '4': Type.Integer(),
    '5': Type.Integer(),
  }),
});

const FhirSettingsSchema = Strict({
  clinicId: Type.String(),
  baseUrl: Nullable(Type.String()),
  tokenSet: Type.Boolean({ description: 'a token is stored (it is never shown)' }),
  updatedBy: Nullable(Type.String()),
  updatedAt: Nullable(Type.String()),
});

const CLINIC = '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a';
const EXAMPLE_CALL = {
  deviceId: 'cb-cb-0001',
  callId: 'c-0193b2a4-2f1e',
  clinicId: CLINIC,
  caller: '+15551234567',
  withheld: false,
  inHours: true,
  startedAt: '2026-11-26T09:15:02.120Z',
  answeredAt: null,
  endedAt: '2026-11-26T09:15:40.000Z',
  outcome: 'voicemail',
  rings: 5,
  durationMs: 21000,
  lookup: 'found' as const,
  lookupDetail: null,
  matches: 1,
  patient: { name: 'Ada Lovelace', birthDate: '1985-12-10' },
  lastContacts: [{ kind: 'call' as const, at: '2026-11-25T16:02:00.000Z', callId: 'c-0193b1', detail: 'missed' }],
  repeat: { reason: 'called again 17 h after leaving a voicemail' },
  callback: { state: 'open' as const, doneBy: null, doneAt: null },
};

export const PATIENT_OPS_METHODS = {
  'calls.list': op({
    role: 'viewer',
    clinic: 'clinicId',
    description:
      "a clinic's call log, newest first: caller, outcome, FHIR match, last contacts, repeat flag, call-back state (numbers masked and no match for a viewer)",
    params: Strict({
      clinicId: ClinicId(),
      from: Type.Optional(Timestamp('calls started at or after')),
      to: Type.Optional(Timestamp('calls started before')),
      limit: Limit(),
    }),
    result: Type.Array(CallLogEntrySchema),
    example: { params: { clinicId: CLINIC, limit: 20 }, result: [EXAMPLE_CALL] },
  }),
  'calls.show': op({
    role: 'viewer',
    description: 'one call of the call log',
    params: Strict({ callId: CallId() }),
    result: CallLogEntrySchema,
    example: { params: { callId: EXAMPLE_CALL.callId }, result: EXAMPLE_CALL },
  }),
  'callbacks.list': op({
    role: 'viewer',
    clinic: 'clinicId',
    description:
      'calls to return: every call that ended in voicemail (or its recording failed), rollover, abandonment or a miss, until marked done or closed by a later answered call from the same number; open ones by default, oldest first',
    params: Strict({
      clinicId: ClinicId(),
      state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('done'), Type.Literal('all')])),
      limit: Limit(),
    }),
    result: Type.Array(CallbackSchema),
    example: {
      params: { clinicId: CLINIC },
      result: [
        {
          deviceId: EXAMPLE_CALL.deviceId,
          callId: EXAMPLE_CALL.callId,
          clinicId: CLINIC,
          caller: '+15551234567',
          reason: 'voicemail',
          createdAt: '2026-11-26T09:15:40.000Z',
          state: 'open',
          doneAt: null,
          doneBy: null,
          note: null,
          closedByCall: null,
          patient: { name: 'Ada Lovelace', birthDate: '1985-12-10' },
          repeat: null,
        },
      ],
    },
  }),
  'callbacks.done': op({
    role: 'operator',
    description: 'mark a call-back done (who and when go to the audit log)',
    params: Strict({ callId: CallId(), note: Type.Optional(Type.String({ maxLength: 500 })) }),
    result: CallbackSchema,
    example: {
      params: { callId: EXAMPLE_CALL.callId, note: 'called back, appointment tomorrow' },
      result: {
        deviceId: EXAMPLE_CALL.deviceId,
        callId: EXAMPLE_CALL.callId,
        clinicId: CLINIC,
        caller: '+15551234567',
        reason: 'voicemail',
        createdAt: '2026-11-26T09:15:40.000Z',
        state: 'done',
        doneAt: '2026-11-26T10:02:00.000Z',
        doneBy: 'ops:alice',
        note: 'called back, appointment tomorrow',
        closedByCall: null,
        patient: null,
        repeat: null,
      },
    },
  }),
  'surveys.summary': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: "a clinic's satisfaction figure: surveys sent, replies, average and distribution of the scores",
    params: Strict({
      clinicId: ClinicId(),
      from: Type.Optional(Timestamp('from (default 30 days ago)')),
      to: Type.Optional(Timestamp('until (default now)')),
    }),
    result: SurveySummarySchema,
    example: {
      params: { clinicId: CLINIC },
      result: {
        clinicId: CLINIC,
        from: '2026-10-27T00:00:00.000Z',
        to: '2026-11-26T00:00:00.000Z',
        sent: 40,
        failed: 1,
        replies: 18,
        responseRate: 0.45,
        average: 4.2,
        distribution: { '1': 1, '2': 0, '3': 2, '4': 7, '5': 8 },
      },
    },
  }),
  'patients.settings.get': op({
    role: 'viewer',
    description: "a clinic's FHIR server for caller lookup (the token is never shown)",
    params: Strict({ clinicId: ClinicId() }),
    result: FhirSettingsSchema,
    example: {
      params: { clinicId: CLINIC },
      result: {
        clinicId: CLINIC,
        baseUrl: 'https://fhir.example.org/r4',
        tokenSet: true,
        updatedBy: 'ops:admin',
        updatedAt: '2026-11-26T08:00:00.000Z',
      },
    },
  }),
  'patients.settings.set': op({
    role: 'admin',
    description:
      "set a clinic's FHIR R4 server (base URL, https or http to loopback) and bearer token, stored encrypted; baseUrl null turns the lookup off",
    params: Strict({
      clinicId: ClinicId(),
      baseUrl: Nullable(
        Type.String({ minLength: 8, maxLength: 500, description: 'FHIR base, e.g. https://fhir.example.org/r4' }),
      ),
      token: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'bearer token (write-only)' })),
    }),
    result: FhirSettingsSchema,
    example: {
      params: { clinicId: CLINIC, baseUrl: 'https://fhir.example.org/r4', token: '...' },
      result: {
        clinicId: CLINIC,
        baseUrl: 'https://fhir.example.org/r4',
        tokenSet: true,
        updatedBy: 'ops:admin',
        updatedAt: '2026-11-26T08:00:00.000Z',
      },
    },
  }),
} as const;

export type PatientOpsMethod = keyof typeof PATIENT_OPS_METHODS;
