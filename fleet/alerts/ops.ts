/**
 * The alert engine's ops methods, in the same form as the fleet's
 * OPS_METHODS (shared/contract/ops.ts): params and result schemas, the least
 * role, a description and an example. The fleet's OpsApi answers them by
 * merging this table and alertOpsHandlers() into its own responder (one
 * responder per request topic: two would both answer).
 */
import type { TSchema } from '@sinclair/typebox';
import type { MethodSpec, ParamsOf } from '../../shared/contract/rpc.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { Nullable, PhoneNumber, Strict, Timestamp, Type } from '../../shared/schema.js';
import { CONDITIONS } from './config.js';
import type { AlertEngine } from './engine.js';

type Role = 'viewer' | 'operator' | 'admin';
interface AlertOpsSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> extends MethodSpec<P, R> {
  role: Role;
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
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    }),
    result: Type.Array(Any),
    example: { params: { state: 'active' }, result: [EXAMPLE_ALERT] },
  }),
  'alerts.show': op({
    role: 'viewer',
    description: 'one alert with every delivery attempt and its history',
    params: AlertRef,
    result: Any,
    example: { params: { code: '4821' }, result: { alert: EXAMPLE_ALERT, deliveries: [], log: [] } },
  }),
  'alerts.ack': op({
    role: 'operator',
    description: 'acknowledge an alert (stops its escalation until the acknowledgement times out)',
    params: AlertRef,
    result: Any,
    example: { params: { code: '4821' }, result: EXAMPLE_ALERT },
  }),
  'alerts.resolve': op({
    role: 'operator',
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
    description: "a clinic's alert settings (defaults filled in)",
    params: Strict({ clinicId: ClinicId }),
    result: Any,
    example: { params: { clinicId: 'c1' }, result: { ackTimeoutMin: 60 } },
  }),
  'alerts.settings.set': op({
    role: 'admin',
    description: "replace a clinic's alert settings (validated whole; bad input changes nothing)",
    params: Strict({ clinicId: ClinicId, settings: Any }),
    result: Any,
    example: { params: { clinicId: 'c1', settings: { ackTimeoutMin: 30 } }, result: { ackTimeoutMin: 30 } },
  }),
  'alerts.silence': op({
    role: 'operator',
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
    description: "switch a clinic's calls back to the clinic (confirmed by its boxes)",
    params: Strict({ clinicId: ClinicId }),
    result: Any,
    example: { params: { clinicId: 'c1' }, result: {} },
  }),
  'rollover.status': op({
    role: 'viewer',
    description: "a clinic's rollover state",
    params: Strict({ clinicId: ClinicId }),
    result: Any,
    example: { params: { clinicId: 'c1' }, result: null },
  }),
  'voicemail.heard': op({
    role: 'operator',
    description: 'a voicemail was listened to (no unheard-voicemail alert for it)',
    params: Strict({ voicemailId: Type.String({ minLength: 1, maxLength: 64 }) }),
    result: Any,
    example: { params: { voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6c' }, result: { ok: true } },
  }),
} as const;

export type AlertOpsMethod = keyof typeof ALERT_OPS_METHODS;
type T = typeof ALERT_OPS_METHODS;

/** Who is asking ("ops:alice"), checked for the method's role; throws NotAuthorized otherwise. */
export type Authorize = (method: AlertOpsMethod, role: Role, ctx: { topic: string; id: string }) => Promise<string>;

/** Handlers for ALERT_OPS_METHODS, in shared/rpc.ts's Handlers form. */
export function alertOpsHandlers(engine: AlertEngine, authorize: Authorize) {
  const who = (m: AlertOpsMethod, ctx: { topic: string; id: string }) => authorize(m, ALERT_OPS_METHODS[m].role, ctx);
  const ref = async (p: { id?: string | undefined; code?: string | undefined }) => {
    if (p.id) return p.id;
    if (p.code) return (await engine.byCode(p.code)).id;
    throw new CallboxError(ErrorCode.ValidationFailed, 'name the alert by id or by code');
  };
  type P<M extends AlertOpsMethod> = ParamsOf<T, M>;
  type Ctx = { topic: string; id: string };
  return {
    'alerts.list': async (p: P<'alerts.list'>, ctx: Ctx) => {
      await who('alerts.list', ctx);
      return engine.list({
        ...(p.clinicId ? { clinicId: p.clinicId } : {}),
        ...(p.state ? { state: p.state } : {}),
        ...(p.condition ? { condition: p.condition } : {}),
        ...(p.limit ? { limit: p.limit } : {}),
      });
    },
    'alerts.show': async (p: P<'alerts.show'>, ctx: Ctx) => {
      await who('alerts.show', ctx);
      return engine.get(await ref(p));
    },
    'alerts.ack': async (p: P<'alerts.ack'>, ctx: Ctx) =>
      engine.acknowledge(await ref(p), await who('alerts.ack', ctx)),
    'alerts.resolve': async (p: P<'alerts.resolve'>, ctx: Ctx) =>
      engine.resolve(await ref(p), await who('alerts.resolve', ctx), p.note),
    'alerts.settings.get': async (p: P<'alerts.settings.get'>, ctx: Ctx) => {
      await who('alerts.settings.get', ctx);
      return engine.settingsOf(p.clinicId);
    },
    'alerts.settings.set': async (p: P<'alerts.settings.set'>, ctx: Ctx) =>
      engine.putSettings(p.clinicId, p.settings, await who('alerts.settings.set', ctx)),
    'alerts.silence': async (p: P<'alerts.silence'>, ctx: Ctx) => {
      const by = await who('alerts.silence', ctx);
      return engine.silence(
        p.clinicId,
        {
          from: p.from,
          until: p.until,
          ...(p.conditions ? { conditions: p.conditions } : {}),
          ...(p.reason ? { reason: p.reason } : {}),
        },
        by,
      );
    },
    'rollover.start': async (p: P<'rollover.start'>, ctx: Ctx) =>
      engine.startRollover(p.clinicId, {
        by: await who('rollover.start', ctx),
        reason: p.reason,
        ...(p.number ? { number: p.number } : {}),
        ...(p.backAfter ? { backAfter: p.backAfter } : {}),
        ...(p.backAt ? { backAt: p.backAt } : {}),
      }),
    'rollover.stop': async (p: P<'rollover.stop'>, ctx: Ctx) =>
      engine.stopRollover(p.clinicId, await who('rollover.stop', ctx)),
    'rollover.status': async (p: P<'rollover.status'>, ctx: Ctx) => {
      await who('rollover.status', ctx);
      return (await engine.rolloverStatus(p.clinicId)) ?? null;
    },
    'voicemail.heard': async (p: P<'voicemail.heard'>, ctx: Ctx) => {
      await engine.voicemailHeard(p.voicemailId, await who('voicemail.heard', ctx));
      return { ok: true };
    },
  };
}
