/**
 * Handlers of the alert engine's ops methods (ALERT_OPS_METHODS in
 * shared/contract/alerts-ops.ts, part of OPS_METHODS). The fleet's OpsApi
 * adds them with its own authorisation (the user behind the request topic,
 * checked for the method's role).
 */
import type { ALERT_OPS_METHODS, AlertOpsMethod } from '../../shared/contract/alerts-ops.js';
import type { ParamsOf } from '../../shared/contract/rpc.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { NewAuditEntry } from '../store/types.js';
import type { AlertEngine } from './engine.js';

export type { AlertOpsMethod } from '../../shared/contract/alerts-ops.js';

type T = typeof ALERT_OPS_METHODS;

/** Who is asking ("ops:alice"), checked for the method's role; throws NotAuthorized otherwise. */
export type Authorize = (method: AlertOpsMethod, ctx: { topic: string; id: string }) => Promise<string>;

/** Where changes are recorded: the fleet's audit log (Store.appendAudit). */
export type Audit = (entry: NewAuditEntry) => Promise<unknown>;

/**
 * Handlers for ALERT_OPS_METHODS, in shared/rpc.ts's Handlers form. Every change (acknowledge, resolve,
 * settings, silence, rollover start and stop, voicemail heard) is written to the audit log.
 */
export function alertOpsHandlers(engine: AlertEngine, authorize: Authorize, audit: Audit = async () => undefined) {
  const record = async (actor: string, action: AlertOpsMethod, target: string, after: unknown) => {
    await audit({ actor, action, target, before: null, after: after ?? null });
  };
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
    'alerts.ack': async (p: P<'alerts.ack'>, ctx: Ctx) => {
      const by = await who('alerts.ack', ctx);
      const a = await engine.acknowledge(await ref(p), by);
      await record(by, 'alerts.ack', `alert:${a.id}`, { state: a.state, shortCode: a.shortCode });
      return a;
    },
    'alerts.resolve': async (p: P<'alerts.resolve'>, ctx: Ctx) => {
      const by = await who('alerts.resolve', ctx);
      const a = await engine.resolve(await ref(p), by, p.note);
      await record(by, 'alerts.resolve', `alert:${a.id}`, { state: a.state, note: p.note ?? null });
      return a;
    },
    'alerts.settings.get': async (p: P<'alerts.settings.get'>, ctx: Ctx) => {
      await who('alerts.settings.get', ctx);
      return engine.settingsOf(p.clinicId);
    },
    'alerts.settings.set': async (p: P<'alerts.settings.set'>, ctx: Ctx) => {
      const by = await who('alerts.settings.set', ctx);
      const settings = await engine.putSettings(p.clinicId, p.settings, by);
      await record(by, 'alerts.settings.set', `clinic:${p.clinicId}`, settings);
      return settings;
    },
    'alerts.silence': async (p: P<'alerts.silence'>, ctx: Ctx) => {
      const by = await who('alerts.silence', ctx);
      const window = {
        from: p.from,
        until: p.until,
        ...(p.conditions ? { conditions: p.conditions } : {}),
        ...(p.reason ? { reason: p.reason } : {}),
      };
      const out = await engine.silence(p.clinicId, window, by);
      await record(by, 'alerts.silence', `clinic:${p.clinicId}`, window);
      return out;
    },
    'rollover.start': async (p: P<'rollover.start'>, ctx: Ctx) => {
      const by = await who('rollover.start', ctx);
      const opts = {
        reason: p.reason,
        ...(p.number ? { number: p.number } : {}),
        ...(p.backAfter ? { backAfter: p.backAfter } : {}),
        ...(p.backAt ? { backAt: p.backAt } : {}),
      };
      const r = await engine.startRollover(p.clinicId, { by, ...opts });
      await record(by, 'rollover.start', `clinic:${p.clinicId}`, opts);
      return r;
    },
    'rollover.stop': async (p: P<'rollover.stop'>, ctx: Ctx) => {
      const by = await who('rollover.stop', ctx);
      const r = await engine.stopRollover(p.clinicId, by);
      await record(by, 'rollover.stop', `clinic:${p.clinicId}`, null);
      return r;
    },
    'rollover.status': async (p: P<'rollover.status'>, ctx: Ctx) => {
      await who('rollover.status', ctx);
      return (await engine.rolloverStatus(p.clinicId)) ?? null;
    },
    'voicemail.heard': async (p: P<'voicemail.heard'>, ctx: Ctx) => {
      const by = await who('voicemail.heard', ctx);
      await engine.voicemailHeard(p.voicemailId, by);
      await record(by, 'voicemail.heard', `voicemail:${p.voicemailId}`, null);
      return { ok: true };
    },
  };
}
