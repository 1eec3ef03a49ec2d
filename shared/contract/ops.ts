/**
 * The ops API: requests an ops user sends to the fleet on
 * callbox/v1/_ops/<user>/req, answered on .../res (RpcRequester /
 * RpcResponder from shared/rpc.ts, like DEVICE_COMMANDS). Each method names
 * the least role that may call it (viewer < operator < admin); every
 * change is written to the fleet's audit log with who, what, when, before
 * and after.
 *
 * A box is named by its serial (upper case, as on the label) or by its
 * device id (lower case, given at approval): the `box` field takes either.
 */
import { ClaimSecret } from '../claim-secret.js';
import { Nullable, PhoneNumber, type Static, Strict, Timestamp, Timezone, type TSchema, Type } from '../schema.js';
import { ALERT_OPS_METHODS } from './alerts-ops.js';
import { EVENT_TYPES } from './events.js';
import { FIGURES_OPS_METHODS, TelemetryPointSchema } from './figures-ops.js';
import { PATIENT_OPS_METHODS } from './patients-ops.js';
import type { MethodSpec } from './rpc.js';
import { TRIAGE_OPS_METHODS } from './triage-ops.js';
import { RELEASE_OPS_METHODS } from './update.js';

/** clinic: a clinic manager bound to one clinic; may call only methods that say how they keep to its clinic. */
export type OpsRole = 'viewer' | 'operator' | 'admin' | 'clinic';

/**
 * How a method keeps a clinic user (role clinic) to its own clinic; a method without one is refused to
 * clinic users (NotAuthorized), whatever its role. Checked by the fleet before the method runs, for the MQTT
 * and the HTTP API alike (fleet/ops-api.ts):
 *   none       the method shows no clinic's data (fleet.hello)
 *   clinicId   params.clinicId is the caller's clinic (set to it when absent; another clinic is refused)
 *   clinic     params.clinic (a clinic id or name) names the caller's clinic (set to it when absent)
 *   box        params.box names a box of the caller's clinic (required)
 *   alert      the alert named by id or code is of the caller's clinic
 *   voicemail  params.voicemailId is a voicemail of a box of the caller's clinic
 *   clinics    the answer lists the caller's clinic only
 */
export type ClinicScope = 'none' | 'clinicId' | 'clinic' | 'box' | 'alert' | 'voicemail' | 'clinics';

export interface OpsMethodSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> extends MethodSpec<P, R> {
  role: OpsRole;
  /** What a clinic user may do with it (none given: clinic users are refused). */
  clinic?: ClinicScope;
}

function op<P extends TSchema, R extends TSchema>(spec: OpsMethodSpec<P, R>): OpsMethodSpec<P, R> {
  return spec;
}

const BoxRef = () => Type.String({ minLength: 3, maxLength: 64, description: 'serial (upper case) or device id' });
const Id = (what: string) => Type.String({ minLength: 1, maxLength: 64, description: what });

export const ClaimStateSchema = Type.Union([
  Type.Literal('registered'),
  Type.Literal('pending'),
  Type.Literal('approved'),
  Type.Literal('rejected'),
  Type.Literal('decommissioned'),
]);

export const BoxSchema = Type.Object({
  serial: Type.String(),
  deviceId: Nullable(Type.String()),
  claimState: ClaimStateSchema,
  clinicId: Nullable(Type.String()),
  model: Nullable(Type.String()),
  firmware: Nullable(Type.String()),
  desiredVersion: Type.Integer(),
  reportedVersion: Nullable(Type.Integer()),
  reportedState: Nullable(Type.Union([Type.Literal('applied'), Type.Literal('refused')])),
  reportedReason: Nullable(Type.String()),
  lastSeenAt: Nullable(Type.String()),
  online: Type.Boolean(),
  lastClaimRequestId: Nullable(Type.String()),
  /** The newest telemetry the box sent (fleet/figures keeps the history): signal, operator, outbox, disk, version. */
  telemetry: Type.Optional(Nullable(TelemetryPointSchema)),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

const ContactSchema = Strict({
  name: Type.String({ minLength: 1, maxLength: 120 }),
  role: Type.Optional(Type.String({ maxLength: 120 })),
  phone: Type.Optional(PhoneNumber()),
  email: Type.Optional(Type.String({ maxLength: 254, pattern: '^[^@\\s]+@[^@\\s]+$' })),
});

const ClinicFields = {
  organisationId: Type.Optional(Nullable(Id('organisation id'))),
  name: Type.String({ minLength: 1, maxLength: 120 }),
  timezone: Timezone(),
  phoneNumbers: Type.Array(PhoneNumber(), { maxItems: 20, default: [] }),
  answeringService: Type.Optional(Nullable(PhoneNumber('answering-service number, E.164'))),
  contacts: Type.Array(ContactSchema, { maxItems: 50, default: [] }),
};

export const ClinicSchema = Type.Object({
  id: Type.String(),
  organisationId: Nullable(Type.String()),
  name: Type.String(),
  timezone: Type.String(),
  phoneNumbers: Type.Array(Type.String()),
  answeringService: Nullable(Type.String()),
  contacts: Type.Array(Type.Object({ name: Type.String() })),
  boxDefaults: Type.Optional(Nullable(Type.Record(Type.String(), Type.Unknown()))),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

const StoredEventSchema = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  bootId: Type.String(),
  seq: Type.Integer(),
  type: Type.String(),
  at: Type.String(),
  receivedAt: Type.String(),
  body: Type.Unknown(),
});

const AuditSchema = Type.Object({
  id: Type.Integer(),
  at: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  before: Type.Unknown(),
  after: Type.Unknown(),
});

const DesiredSchema = Type.Object({
  deviceId: Type.String(),
  version: Type.Integer(),
  settings: Type.Unknown(),
  createdBy: Type.String(),
  createdAt: Type.String(),
});

const EXAMPLE_BOX: Static<typeof BoxSchema> = {
  serial: 'CB-0001',
  deviceId: 'cb-cb-0001',
  claimState: 'approved',
  clinicId: null,
  model: 'cb1',
  firmware: '1.0.0',
  desiredVersion: 0,
  reportedVersion: null,
  reportedState: null,
  reportedReason: null,
  lastSeenAt: null,
  online: false,
  lastClaimRequestId: null,
  createdAt: '2026-11-26T10:00:00.000Z',
  updatedAt: '2026-11-26T10:00:00.000Z',
};

const EXAMPLE_CLINIC: Static<typeof ClinicSchema> = {
  id: '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a',
  organisationId: null,
  name: 'Main St',
  timezone: 'America/New_York',
  phoneNumbers: ['+15550001000'],
  answeringService: '+15550009999',
  contacts: [{ name: 'Dr. Ada' }],
  createdAt: '2026-11-26T10:00:00.000Z',
  updatedAt: '2026-11-26T10:00:00.000Z',
};

/**
 * Every list answer is a page: at most `limit` items (default 100, at most MAX_PAGE) from a cursor, the
 * key of the last item of the page before (`after` for lists in key order, `before` for newest-first
 * lists). A page shorter than the limit is the last. With the responder's bound on an answer's bytes
 * (shared/rpc.ts), no list answer grows with the fleet.
 */
export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;
const Limit = () =>
  Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_PAGE,
      description: `at most (default ${DEFAULT_PAGE}, at most ${MAX_PAGE})`,
    }),
  );
const After = (key: string) =>
  Type.Optional(
    Type.String({ minLength: 1, maxLength: 64, description: `cursor: the ${key} of the last item of the page before` }),
  );

export const OPS_METHODS = {
  'fleet.hello': op({
    role: 'viewer',
    clinic: 'none',
    description:
      'a cheap check that a Callbox fleet answers here and knows the caller (the CLI sends it first and gives up within a second)',
    params: Strict({}),
    result: Strict({
      service: Type.Literal('callbox-fleet'),
      version: Type.String(),
      user: Type.String(),
    }),
    example: { params: {}, result: { service: 'callbox-fleet', version: '1.0.0', user: 'ops:admin' } },
  }),
  'boxes.list': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: 'boxes, optionally of one clinic or claim state',
    params: Strict({
      clinicId: Type.Optional(Id('clinic id')),
      claimState: Type.Optional(ClaimStateSchema),
      after: After('serial'),
      limit: Limit(),
    }),
    result: Type.Array(BoxSchema),
    example: { params: { claimState: 'pending' }, result: [] },
  }),
  'boxes.show': op({
    role: 'viewer',
    clinic: 'box',
    description: 'one box: registry row, presence, desired configuration, sequence gaps',
    params: Strict({ box: BoxRef() }),
    result: Type.Object({
      box: BoxSchema,
      desired: Nullable(DesiredSchema),
      gaps: Type.Array(Type.Object({ fromSeq: Type.Integer(), toSeq: Type.Integer() })),
      eventCount: Type.Integer(),
    }),
    example: {
      params: { box: 'CB-0001' },
      result: {
        box: EXAMPLE_BOX,
        desired: null,
        gaps: [],
        eventCount: 0,
      },
    },
  }),
  'boxes.register': op({
    role: 'operator',
    description:
      'register a serial in advance; with the claim secret from its label its claim is approved automatically (only that secret may claim it); without it, its claim waits for claims.approve',
    params: Strict({
      serial: Type.String({ pattern: '^[A-Z0-9][A-Z0-9-]{3,31}$' }),
      claimSecret: Type.Optional(ClaimSecret()),
      clinicId: Type.Optional(Id('clinic id')),
    }),
    result: BoxSchema,
    example: {
      params: { serial: 'CB-0002', claimSecret: 'label-secret-of-CB-0002' },
      result: { ...EXAMPLE_BOX, serial: 'CB-0002', deviceId: null, claimState: 'registered' },
    },
  }),
  'claims.list': op({
    role: 'viewer',
    description: 'boxes waiting for approval, in serial order',
    params: Strict({ after: After('serial'), limit: Limit() }),
    result: Type.Array(BoxSchema),
    example: { params: {}, result: [] },
  }),
  'claims.approve': op({
    role: 'operator',
    description: 'approve a pending claim: the box gets a device id and its own credentials',
    params: Strict({
      serial: Type.String({ pattern: '^[A-Z0-9][A-Z0-9-]{3,31}$' }),
      clinicId: Type.Optional(Id('clinic id')),
    }),
    result: BoxSchema,
    example: { params: { serial: 'CB-0003' }, result: EXAMPLE_BOX },
  }),
  'claims.reject': op({
    role: 'operator',
    description: 'reject a pending claim',
    params: Strict({
      serial: Type.String({ pattern: '^[A-Z0-9][A-Z0-9-]{3,31}$' }),
      reason: Type.String({ minLength: 1, maxLength: 500 }),
    }),
    result: BoxSchema,
    example: { params: { serial: 'CB-0003', reason: 'not ours' }, result: EXAMPLE_BOX },
  }),
  'boxes.assign': op({
    role: 'operator',
    description: 'assign a box to a clinic (null: unassign)',
    params: Strict({ box: BoxRef(), clinicId: Nullable(Id('clinic id')) }),
    result: BoxSchema,
    example: { params: { box: 'CB-0001', clinicId: null }, result: EXAMPLE_BOX },
  }),
  'boxes.setConfig': op({
    role: 'operator',
    description:
      'set the box settings (DeviceSettingsSchema; missing sections take their defaults): stored as a new version and published retained on config/desired',
    params: Strict({ box: BoxRef(), settings: Type.Unknown({ description: 'DeviceSettings' }) }),
    result: Strict({ deviceId: Type.String(), version: Type.Integer({ minimum: 1 }) }),
    example: { params: { box: 'CB-0001', settings: {} }, result: { deviceId: 'cb-cb-0001', version: 3 } },
  }),
  'boxes.getConfig': op({
    role: 'viewer',
    clinic: 'box',
    description: 'the desired configuration of a box (a version, default the newest)',
    params: Strict({ box: BoxRef(), version: Type.Optional(Type.Integer({ minimum: 1 })) }),
    result: Nullable(DesiredSchema),
    example: { params: { box: 'CB-0001' }, result: null },
  }),
  'boxes.rotateCredentials': op({
    role: 'operator',
    description:
      'revoke the box credentials and close its session; the box claims again with its claim secret and, being approved, gets new ones at once',
    params: Strict({ box: BoxRef() }),
    result: BoxSchema,
    example: { params: { box: 'CB-0001' }, result: EXAMPLE_BOX },
  }),
  'boxes.decommission': op({
    role: 'admin',
    description: 'revoke the box credentials (device and claim), close its session at once, clear its configuration',
    params: Strict({ box: BoxRef(), reason: Type.String({ minLength: 1, maxLength: 500 }) }),
    result: BoxSchema,
    example: { params: { box: 'CB-0001', reason: 'returned' }, result: EXAMPLE_BOX },
  }),
  'boxes.command': op({
    role: 'operator',
    description: 'send a DEVICE_COMMANDS method to a box and return its answer',
    params: Strict({
      box: BoxRef(),
      method: Type.String({ minLength: 1, maxLength: 64 }),
      params: Type.Optional(Type.Unknown()),
      timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
      expiresInMs: Type.Optional(
        Type.Integer({
          minimum: 1000,
          maximum: 604_800_000,
          description: 'the box refuses the command (RequestExpired) this long after it was sent; default: timeoutMs',
        }),
      ),
    }),
    result: Type.Unknown(),
    example: { params: { box: 'CB-0001', method: 'indicators.test', params: {} }, result: { tested: ['ring'] } },
  }),
  'clinics.list': op({
    role: 'viewer',
    clinic: 'clinics',
    description: 'clinics, optionally of one organisation',
    params: Strict({ organisationId: Type.Optional(Id('organisation id')), after: After('id'), limit: Limit() }),
    result: Type.Array(ClinicSchema),
    example: { params: {}, result: [] },
  }),
  'clinics.show': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: 'one clinic and its boxes (by id or exact name)',
    params: Strict({
      clinicId: Type.String({ minLength: 1, maxLength: 120, description: 'clinic id or exact clinic name' }),
    }),
    result: Type.Object({ clinic: ClinicSchema, boxes: Type.Array(BoxSchema) }),
    example: { params: { clinicId: EXAMPLE_CLINIC.id }, result: { clinic: EXAMPLE_CLINIC, boxes: [EXAMPLE_BOX] } },
  }),
  'clinics.create': op({
    role: 'operator',
    description: 'create a clinic',
    params: Strict(ClinicFields),
    result: ClinicSchema,
    example: {
      params: { name: 'Main St', timezone: 'America/New_York', phoneNumbers: [], contacts: [] },
      result: EXAMPLE_CLINIC,
    },
  }),
  'clinics.update': op({
    role: 'operator',
    description: 'change fields of a clinic',
    params: Strict({
      clinicId: Id('clinic id'),
      name: Type.Optional(ClinicFields.name),
      timezone: Type.Optional(Timezone()),
      phoneNumbers: Type.Optional(ClinicFields.phoneNumbers),
      answeringService: ClinicFields.answeringService,
      contacts: Type.Optional(ClinicFields.contacts),
      organisationId: ClinicFields.organisationId,
    }),
    result: ClinicSchema,
    example: {
      params: { clinicId: EXAMPLE_CLINIC.id, name: 'Main Street' },
      result: { ...EXAMPLE_CLINIC, name: 'Main Street' },
    },
  }),
  'clinics.setDefaults': op({
    role: 'operator',
    description:
      "set the settings every box of the clinic starts from (a part of the box settings: hours, calls, rollover, ...; null: none): merged under each box's own settings field by field, over the clinic's name, time zone, answering service and contacts; the clinic's approved boxes get their new settings at once",
    params: Strict({
      clinicId: Id('clinic id'),
      defaults: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'a part of the box settings' })),
    }),
    result: Strict({ clinic: ClinicSchema, boxesUpdated: Type.Integer({ minimum: 0 }) }),
    example: {
      params: {
        clinicId: EXAMPLE_CLINIC.id,
        defaults: { hours: { weekly: { mon: [{ open: '08:00', close: '17:00' }] } } },
      },
      result: {
        clinic: { ...EXAMPLE_CLINIC, boxDefaults: { hours: { weekly: { mon: [{ open: '08:00', close: '17:00' }] } } } },
        boxesUpdated: 1,
      },
    },
  }),
  'orgs.create': op({
    role: 'admin',
    description: 'create an organisation',
    params: Strict({ name: Type.String({ minLength: 1, maxLength: 120 }) }),
    result: Type.Object({ id: Type.String(), name: Type.String(), createdAt: Type.String() }),
    example: {
      params: { name: 'Acme Health' },
      result: { id: 'x', name: 'Acme Health', createdAt: '2026-11-26T10:00:00.000Z' },
    },
  }),
  'orgs.list': op({
    role: 'viewer',
    description: 'organisations, by name',
    params: Strict({ after: After('id'), limit: Limit() }),
    result: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), createdAt: Type.String() })),
    example: { params: {}, result: [] },
  }),
  'users.create': op({
    role: 'admin',
    description:
      'create an ops user (role clinic: a clinic manager, bound to the clinic given); the answer holds its password, shown once',
    params: Strict({
      name: Type.String({ pattern: '^[a-z][a-z0-9._-]{1,63}$' }),
      role: Type.Union([
        Type.Literal('viewer'),
        Type.Literal('operator'),
        Type.Literal('admin'),
        Type.Literal('clinic'),
      ]),
      clinic: Type.Optional(
        Type.String({ minLength: 1, maxLength: 120, description: 'role clinic: its clinic, by id or by name' }),
      ),
    }),
    result: Strict({
      name: Type.String(),
      role: Type.String(),
      clinicId: Type.Optional(Nullable(Type.String())),
      username: Type.String(),
      password: Type.String(),
    }),
    example: {
      params: { name: 'bob', role: 'viewer' },
      result: { name: 'bob', role: 'viewer', username: 'ops:bob', password: '...' },
    },
  }),
  'events.list': op({
    role: 'viewer',
    clinic: 'box',
    description: 'stored events, newest first',
    params: Strict({
      box: Type.Optional(BoxRef()),
      type: Type.Optional(Type.Union(EVENT_TYPES.map((t) => Type.Literal(t)))),
      since: Type.Optional(Timestamp('stored at or after')),
      before: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 64,
          description: 'cursor: the id of the last event of the page before',
        }),
      ),
      limit: Limit(),
    }),
    result: Type.Array(StoredEventSchema),
    example: { params: { box: 'CB-0001', limit: 10 }, result: [] },
  }),
  'audit.list': op({
    role: 'viewer',
    description: 'the audit log, newest first',
    params: Strict({
      target: Type.Optional(Type.String({ maxLength: 200 })),
      actor: Type.Optional(Type.String({ maxLength: 200 })),
      before: Type.Optional(
        Type.Integer({ minimum: 1, description: 'cursor: the id of the last entry of the page before' }),
      ),
      limit: Limit(),
    }),
    result: Type.Array(AuditSchema),
    example: { params: { limit: 10 }, result: [] },
  }),
  // alerts, acknowledgement and rollover (fleet/alerts)
  ...ALERT_OPS_METHODS,
  // call log, call-backs, surveys, FHIR settings (fleet/patients)
  ...PATIENT_OPS_METHODS,
  // signed releases and staged rollouts (fleet/updates)
  ...RELEASE_OPS_METHODS,
  // voicemail triage: urgent phrases and results (fleet/triage)
  ...TRIAGE_OPS_METHODS,
  // call figures, stored telemetry and CSV exports (fleet/figures)
  ...FIGURES_OPS_METHODS,
} as const;

export type OpsMethod = keyof typeof OPS_METHODS;

/** Rank of the fleet-wide roles; a clinic user ranks below all (its methods are those with a ClinicScope). */
export const ROLE_RANK: Record<OpsRole, number> = { clinic: -1, viewer: 0, operator: 1, admin: 2 };
