/**
 * Handlers of TRIAGE_OPS_METHODS (shared/contract/triage-ops.ts), added to
 * the fleet's ops API by the triage feature. Changing a clinic's phrases is
 * validated whole (the dictionary too) and written to the audit log.
 */
import type { ParamsOf } from '../../shared/contract/rpc.js';
import type { TRIAGE_OPS_METHODS, TriageOpsMethod } from '../../shared/contract/triage-ops.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Fleet } from '../fleet.js';
import type { TriageFeature } from './feature.js';
import { validatePhrases } from './phrases.js';
import type { TriageRecord } from './store.js';

type T = typeof TRIAGE_OPS_METHODS;
type P<M extends TriageOpsMethod> = ParamsOf<T, M>;
type Ctx = { topic: string; id: string };
export type Authorize = (method: TriageOpsMethod, ctx: Ctx) => Promise<string>;

/** A record as ops see it (the voice figures kept for the baseline are left out). */
function shown(r: TriageRecord) {
  const { voice: _voice, callerKey: _key, ...rest } = r;
  return { ...rest, hasCallerHistory: Boolean(r.callerKey) };
}

export function triageOpsHandlers(feature: TriageFeature, fleet: Fleet, authorize: Authorize) {
  const store = feature.store;
  const phrasesAnswer = async (clinicId: string) => ({ clinicId, ...(await feature.service.phrasesOf(clinicId)) });
  const clinic = async (clinicId: string) => {
    if (!(await fleet.store.getClinic(clinicId))) {
      throw new CallboxError(ErrorCode.NotFound, `no clinic ${clinicId} (fleet clinics list)`);
    }
  };
  return {
    'voicemail.triage': async (p: P<'voicemail.triage'>, ctx: Ctx) => {
      await authorize('voicemail.triage', ctx);
      const r = await store.get(p.voicemailId);
      if (!r) throw new CallboxError(ErrorCode.NotFound, `no stored voicemail ${p.voicemailId}`);
      return shown(r);
    },
    'triage.list': async (p: P<'triage.list'>, ctx: Ctx) => {
      await authorize('triage.list', ctx);
      const box = p.box ? await fleet.registry.resolveBox(p.box) : undefined;
      if (p.box && !box?.deviceId) return [];
      const rows = await store.list({
        ...(p.clinicId ? { clinicId: p.clinicId } : {}),
        ...(box?.deviceId ? { deviceId: box.deviceId } : {}),
        ...(p.attention === undefined ? {} : { attention: p.attention }),
        ...(p.before ? { before: p.before } : {}),
        limit: p.limit ?? 100,
      });
      return rows.map(shown);
    },
    'triage.phrases.get': async (p: P<'triage.phrases.get'>, ctx: Ctx) => {
      await authorize('triage.phrases.get', ctx);
      await clinic(p.clinicId);
      return phrasesAnswer(p.clinicId);
    },
    'triage.phrases.set': async (p: P<'triage.phrases.set'>, ctx: Ctx) => {
      const by = await authorize('triage.phrases.set', ctx);
      await clinic(p.clinicId);
      const reset = p.reset === true;
      if (reset === (p.phrases !== undefined)) {
        throw new CallboxError(ErrorCode.ValidationFailed, 'give either phrases (the new list) or reset: true');
      }
      const list = reset ? null : validatePhrases(p.phrases, fleet.config.triage.dictPath, '/phrases');
      const before = await store.getPhrases(p.clinicId);
      await store.putPhrases(p.clinicId, list, by, new Date().toISOString());
      await fleet.store.appendAudit({
        actor: by,
        action: 'triage.phrases.set',
        target: `clinic:${p.clinicId}`,
        before: before?.phrases ?? null,
        after: list,
      });
      return phrasesAnswer(p.clinicId);
    },
  };
}
