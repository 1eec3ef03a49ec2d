/**
 * Ops methods of the alert and rollover engine (fleet/alerts), part of the
 * ops API: OPS_METHODS in ./ops.ts includes them, so the CLI, the dashboard
 * and any MQTT tool call them like the others. Answered by the handlers in
 * fleet/alerts/ops.ts.
 */
import type { TSchema } from '@sinclair/typebox';
import { Nullable, PhoneNumber, Strict, Timestamp, Type } from '../schema.js';
import type { MethodSpec } from './rpc.js';

/** The conditions the alert engine raises; one open alert per clinic and condition. */
export const ALERT_CONDITIONS = [
  'panic',
  'missed_calls',
  'missed_after_hours',
  'slow_answer',
  'box_offline',
  'no_signal',
  'sim_problem',
  'registration_denied',
  'voicemail_unheard',
  'outbox_backlog',
  'rollover',
  'voicemail_failed',
  'config_drift',
] as const;
const CONDITIONS = ALERT_CONDITIONS;

type Role = 'viewer' | 'operator' | 'admin';
/** How a clinic user is kept to its clinic (ClinicScope in ./ops.ts). */
type Scope = 'clinicId' | 'alert' | 'voicemail';
interface AlertOpsSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> extends MethodSpec<P, R> {
  role: Role;
  clinic?: Scope;
}
function op<P extends TSchema, R extends TSchema>(spec: AlertOpsSpec<P, R>): AlertOpsSpec<P, R> {
  return spec;
}

const AlertRef = Strict({
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'alert id' })),
  code: Type.Optional(Type.String({ pattern: '^\\d{4}$', description: 'the 4-digit short code' })),
});
const Any = Type.Unknown();
const ClinicId = Type.String({ minLength: 1, maxLength: 64, description: 'clinic id' });
const EXAMPLE_ALERT = { id: '0193b2a4-4c00-7a21-8f00-6b1d2e3f4a5b', state: 'acknowledged', shortCode: '4821' };

export const ALERT_OPS_METHODS = {
  'alerts.list': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: 'alerts, newest first',
    params: Strict({
      clinicId: Type.Optional(ClinicId),
      state: Type.Optional(
        Type.Union([
          Type.Literal('active'),
          Type.Literal('open'),
          Type.Literal('acknowledged'),
          Type.Literal('resolved'),
        ]),
      ),
      condition: Type.Optional(Type.Union(CONDITIONS.map((c) => Type.Literal(c)))),
      before: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 64,
          description: 'cursor: the id of the last alert of the page before',
        }),
      ),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'at most (default 100)' })),
    }),
    result: Type.Array(Any),
    example: { params: { state: 'active' }, result: [EXAMPLE_ALERT] },
  }),
  'alerts.show': op({
    role: 'viewer',
    clinic: 'alert',
    description: 'one alert with every delivery attempt and its history',
    params: AlertRef,
    result: Any,
    example: { params: { code: '4821' }, result: { alert: EXAMPLE_ALERT, deliveries: [], log: [] } },
  }),
  'alerts.ack': op({
    role: 'operator',
    clinic: 'alert',
    description: 'acknowledge an alert (stops its escalation until the acknowledgement times out)',
    params: AlertRef,
    result: Any,
    example: { params: { code: '4821' }, result: EXAMPLE_ALERT },
  }),
  'alerts.resolve': op({
    role: 'operator',
    clinic: 'alert',
    description: 'resolve an alert',
    params: Strict({
      id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      code: Type.Optional(Type.String({ pattern: '^\\d{4}$' })),
      note: Type.Optional(Type.String({ maxLength: 500 })),
    }),
    result: Any,
    example: {
      params: { code: '4821', note: 'front desk staffed again' },
      result: { ...EXAMPLE_ALERT, state: 'resolved' },
    },
  }),
  'alerts.settings.get': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: "a clinic's alert settings (defaults filled in)",
    params: Strict({ clinicId: ClinicId }),
    result: Any,
    example: { params: { clinicId: 'c1' }, result: { ackTimeoutMin: 60 } },
  }),
  'alerts.settings.set': op({
    role: 'admin',
    clinic: 'clinicId',
    description: "replace a clinic's alert settings (validated whole; bad input changes nothing)",
    params: Strict({ clinicId: ClinicId, settings: Any }),
    result: Any,
    example: { params: { clinicId: 'c1', settings: { ackTimeoutMin: 30 } }, result: { ackTimeoutMin: 30 } },
  }),
  'alerts.silence': op({
    role: 'operator',
    clinic: 'clinicId',
    description: "silence a clinic's alerts for a maintenance window (panic excepted unless listed)",
    params: Strict({
      clinicId: ClinicId,
      from: Timestamp(),
      until: Timestamp(),
      conditions: Type.Optional(Type.Array(Type.Union(CONDITIONS.map((c) => Type.Literal(c))))),
      reason: Type.Optional(Type.String({ maxLength: 200 })),
    }),
    result: Any,
    example: {
      params: {
        clinicId: 'c1',
        from: '2026-11-26T20:00:00.000Z',
        until: '2026-11-26T22:00:00.000Z',
        reason: 'router swap',
      },
      result: {},
    },
  }),
  'rollover.start': op({
    role: 'operator',
    clinic: 'clinicId',
    description: "switch a clinic's calls to its answering service (confirmed by its boxes)",
    params: Strict({
      clinicId: ClinicId,
      reason: Type.String({ minLength: 1, maxLength: 200 }),
      number: Type.Optional(PhoneNumber('forward to; default: the clinic answering service')),
      backAfter: Type.Optional(Type.Union([Type.Literal('manual'), Type.Literal('answered')])),
      backAt: Type.Optional(Nullable(Timestamp('roll back at'))),
    }),
    result: Any,
    example: { params: { clinicId: 'c1', reason: 'staff meeting', backAt: '2026-11-26T16:00:00.000Z' }, result: {} },
  }),
  'rollover.stop': op({
    role: 'operator',
    clinic: 'clinicId',
    description: "switch a clinic's calls back to the clinic (confirmed by its boxes)",
    params: Strict({ clinicId: ClinicId }),
    result: Any,
    example: { params: { clinicId: 'c1' }, result: {} },
  }),
  'rollover.status': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: "a clinic's rollover state",
    params: Strict({ clinicId: ClinicId }),
    result: Any,
    example: { params: { clinicId: 'c1' }, result: null },
  }),
  'voicemail.heard': op({
    role: 'operator',
    clinic: 'voicemail',
    description: 'a voicemail was listened to (no unheard-voicemail alert for it)',
    params: Strict({ voicemailId: Type.String({ minLength: 1, maxLength: 64 }) }),
    result: Any,
    example: { params: { voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6c' }, result: { ok: true } },
  }),
} as const;

export type AlertOpsMethod = keyof typeof ALERT_OPS_METHODS;
