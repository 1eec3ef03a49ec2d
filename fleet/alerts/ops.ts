/**
 * Handlers of the alert engine's ops methods (ALERT_OPS_METHODS in
 * shared/contract/alerts-ops.ts, part of OPS_METHODS). The fleet's OpsApi
 * adds them with its own authorisation (the user behind the request topic,
 * checked for the method's role).
 */
import type { ALERT_OPS_METHODS, AlertOpsMethod } from '../../shared/contract/alerts-ops.js';
import type { ParamsOf } from '../../shared/contract/rpc.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { AlertEngine } from './engine.js';

export type { AlertOpsMethod } from '../../shared/contract/alerts-ops.js';

type T = typeof ALERT_OPS_METHODS;

/** Who is asking ("ops:alice"), checked for the method's role; throws NotAuthorized otherwise. */
export type Authorize = (method: AlertOpsMethod, ctx: { topic: string; id: string }) => Promise<string>;

/** Handlers for ALERT_OPS_METHODS, in shared/rpc.ts's Handlers form. */
export function alertOpsHandlers(engine: AlertEngine, authorize: Authorize) {
  const who = (m: AlertOpsMethod, ctx: { topic: string; id: string }) => authorize(m, ctx);
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
        ...(p.before ? { before: p.before } : {}),
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
