/**
 * Handlers of PATIENT_OPS_METHODS (shared/contract/patients-ops.ts), added
 * to the fleet's ops API with its authorisation. An operator or admin sees
 * callers' numbers and the FHIR match; a viewer sees numbers masked to their
 * last four digits and no match. The FHIR token is never returned.
 */
import type { PATIENT_OPS_METHODS, PatientOpsMethod } from '../../shared/contract/patients-ops.js';
import type { ParamsOf } from '../../shared/contract/rpc.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { maskNumber } from '../../shared/log.js';
import type { Store } from '../store/types.js';
import type { PatientsConfig } from './config.js';
import { checkFhirBase } from './fhir.js';
import type { CallbackRow, CallRow, PatientStore } from './store.js';

type T = typeof PATIENT_OPS_METHODS;
type P<M extends PatientOpsMethod> = ParamsOf<T, M>;
type Ctx = { topic: string; id: string };
export type Authorize = (method: PatientOpsMethod, ctx: Ctx) => Promise<string>;

const DAY = 86_400_000;

export interface PatientOpsDeps {
  patients: PatientStore;
  store: Store;
  cfg: PatientsConfig;
}

export function patientOpsHandlers(d: PatientOpsDeps, authorize: Authorize) {
  const { patients, store, cfg } = d;

  /** The caller and whether they may see patient data (operator and above). */
  const who = async (m: PatientOpsMethod, ctx: Ctx): Promise<{ actor: string; full: boolean }> => {
    const actor = await authorize(m, ctx);
    const user = await store.getOpsUser(actor.replace(/^ops:/, ''));
    return { actor, full: user?.role === 'operator' || user?.role === 'admin' };
  };
  const requireClinic = async (clinicId: string) => {
    if (!(await store.getClinic(clinicId))) {
      throw new CallboxError(ErrorCode.NotFound, `no clinic ${clinicId}; list them with \`fleet clinics list\``);
    }
  };
  const caller = (n: string | null, full: boolean) => (n === null ? null : full ? n : maskNumber(n));

  const entry = async (c: CallRow, full: boolean) => {
    const lastContacts =
      c.clinicId && c.numberIx && cfg.lastContacts > 0
        ? await patients.contactsBefore(c.clinicId, c.numberIx, c.startedAt, cfg.lastContacts, c.callId)
        : [];
    const cb = await patients.getCallback(c.deviceId, c.callId);
    return {
      deviceId: c.deviceId,
      callId: c.callId,
      clinicId: c.clinicId,
      caller: caller(c.number, full),
      withheld: c.withheld,
      inHours: c.inHours,
      startedAt: c.startedAt,
      answeredAt: c.answeredAt,
      endedAt: c.endedAt,
      outcome: c.outcome,
      rings: c.rings,
      durationMs: c.durationMs,
      lookup: c.lookup,
      lookupDetail: c.lookupDetail,
      matches: c.matches,
      patient: full ? c.patient : null,
      lastContacts,
      repeat: c.repeatReason ? { reason: c.repeatReason } : null,
      callback: cb ? { state: cb.state, doneBy: cb.doneBy, doneAt: cb.doneAt } : null,
    };
  };

  const callback = async (cb: CallbackRow, full: boolean) => {
    const call = await patients.getCall(cb.deviceId, cb.callId);
    return {
      deviceId: cb.deviceId,
      callId: cb.callId,
      clinicId: cb.clinicId,
      caller: caller(cb.number, full),
      reason: cb.reason,
      createdAt: cb.createdAt,
      state: cb.state,
      doneAt: cb.doneAt,
      doneBy: cb.doneBy,
      note: full ? cb.note : null,
      closedByCall: cb.closedByCall,
      patient: full ? (call?.patient ?? null) : null,
      repeat: call?.repeatReason ? { reason: call.repeatReason } : null,
    };
  };

  const fhirView = async (clinicId: string) => {
    const f = await patients.getFhir(clinicId);
    return {
      clinicId,
      baseUrl: f?.baseUrl ?? null,
      tokenSet: !!f?.token,
      updatedBy: f?.updatedBy ?? null,
      updatedAt: f?.updatedAt ?? null,
    };
  };

  return {
    'calls.list': async (p: P<'calls.list'>, ctx: Ctx) => {
      const { full } = await who('calls.list', ctx);
      await requireClinic(p.clinicId);
      const rows = await patients.listCalls({
        clinicId: p.clinicId,
        ...(p.from ? { from: new Date(p.from).toISOString() } : {}),
        ...(p.to ? { to: new Date(p.to).toISOString() } : {}),
        limit: p.limit ?? 100,
      });
      const out = [];
      for (const r of rows) out.push(await entry(r, full));
      return out;
    },
    'calls.show': async (p: P<'calls.show'>, ctx: Ctx) => {
      const { full } = await who('calls.show', ctx);
      const c = await patients.findCall(p.callId);
      if (!c) throw new CallboxError(ErrorCode.NotFound, `no call ${p.callId} in the call log`);
      return entry(c, full);
    },
    'callbacks.list': async (p: P<'callbacks.list'>, ctx: Ctx) => {
      const { full } = await who('callbacks.list', ctx);
      await requireClinic(p.clinicId);
      const rows = await patients.listCallbacks({
        clinicId: p.clinicId,
        state: p.state ?? 'open',
        limit: p.limit ?? 100,
      });
      const out = [];
      for (const r of rows) out.push(await callback(r, full));
      return out;
    },
    'callbacks.done': async (p: P<'callbacks.done'>, ctx: Ctx) => {
      const { actor, full } = await who('callbacks.done', ctx);
      const cb = await patients.findCallback(p.callId);
      if (!cb) {
        throw new CallboxError(
          ErrorCode.NotFound,
          `call ${p.callId} is not on the call-back list; see \`fleet callbacks <clinic>\``,
        );
      }
      const after = await patients.closeCallback(cb.deviceId, cb.callId, actor, p.note ?? null, null);
      if (!after) {
        const now = await patients.getCallback(cb.deviceId, cb.callId);
        throw new CallboxError(
          ErrorCode.Conflict,
          `the call-back of call ${p.callId} is already done (by ${now?.doneBy ?? '?'} at ${now?.doneAt ?? '?'})`,
        );
      }
      // Who and when; the note stays sealed in the call-back (it may name the patient).
      await store.appendAudit({
        actor,
        action: 'callbacks.done',
        target: `call:${cb.callId}`,
        before: { state: 'open' },
        after: { state: 'done', doneAt: after.doneAt, note: after.note !== null },
      });
      return callback(after, full);
    },
    'surveys.summary': async (p: P<'surveys.summary'>, ctx: Ctx) => {
      await who('surveys.summary', ctx);
      await requireClinic(p.clinicId);
      const to = p.to ? new Date(p.to) : new Date();
      const from = p.from ? new Date(p.from) : new Date(to.getTime() - 30 * DAY);
      if (from.getTime() >= to.getTime()) {
        throw new CallboxError(
          ErrorCode.ValidationFailed,
          `from (${from.toISOString()}) must be before to (${to.toISOString()})`,
        );
      }
      const counts = await patients.surveyCounts(p.clinicId, from.toISOString(), to.toISOString());
      const distribution = { '1': 0, '2': 0, '3': 0, '4': 0, '5': 0 };
      let sent = 0;
      let failed = 0;
      let replies = 0;
      let total = 0;
      for (const c of counts) {
        if (c.kind === 'sent') sent += c.n;
        else if (c.kind === 'failed') failed += c.n;
        else if (c.kind === 'reply' && c.score !== null && c.score >= 1 && c.score <= 5) {
          replies += c.n;
          total += c.score * c.n;
          distribution[String(c.score) as keyof typeof distribution] += c.n;
        }
      }
      return {
        clinicId: p.clinicId,
        from: from.toISOString(),
        to: to.toISOString(),
        sent,
        failed,
        replies,
        responseRate: sent > 0 ? Math.round((replies / sent) * 1000) / 1000 : null,
        average: replies > 0 ? Math.round((total / replies) * 100) / 100 : null,
        distribution,
      };
    },
    'patients.settings.get': async (p: P<'patients.settings.get'>, ctx: Ctx) => {
      await who('patients.settings.get', ctx);
      await requireClinic(p.clinicId);
      return fhirView(p.clinicId);
    },
    'patients.settings.set': async (p: P<'patients.settings.set'>, ctx: Ctx) => {
      const { actor } = await who('patients.settings.set', ctx);
      await requireClinic(p.clinicId);
      const before = await fhirView(p.clinicId);
      if (p.baseUrl === null) {
        await patients.deleteFhir(p.clinicId);
      } else {
        const base = checkFhirBase(p.baseUrl);
        const token = p.token ?? (await patients.getFhir(p.clinicId))?.token;
        if (!token) {
          throw new CallboxError(
            ErrorCode.ValidationFailed,
            `token: the clinic has no FHIR token yet; give one with the base URL (fleet patients fhir set ${p.clinicId} URL --token-file FILE)`,
          );
        }
        await patients.putFhir(p.clinicId, base, token, actor);
      }
      const after = await fhirView(p.clinicId);
      await store.appendAudit({
        actor,
        action: 'patients.settings.set',
        target: `clinic:${p.clinicId}`,
        before,
        after: { ...after, tokenChanged: p.token !== undefined },
      });
      return after;
    },
  };
}
