/**
 * The triage of one stored voicemail, end to end: its clinic and that
 * clinic's urgent phrases, the caller (from the box's `voicemail.recorded`
 * event: a keyed hash for the stress baseline, the last four digits for the
 * alert), the audio read and decrypted, triageRecording(), the result stored
 * with the voicemail, and for one that needs attention an alert through the
 * alert engine. A voicemail whose triage cannot run (tools or model missing,
 * audio unreadable after a few tries) is stored "unavailable" and treated as
 * needing attention: never silently routine.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, ErrorCode, isCallboxError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { VoicemailAttention } from '../alerts/engine.js';
import { voicemailAudioUrl } from '../alerts/links.js';
import { lastFour } from '../alerts/sms-reply.js';
import type { PatientCipher } from '../crypto/patient-data.js';
import type { Store } from '../store/types.js';
import type { TriageConfig } from './config.js';
import { DEFAULT_PHRASES, type UrgentPhrase } from './phrases.js';
import { modelName, type SpotterConfig } from './spotter.js';
import type { TriageRecord, TriageStore } from './store.js';
import { triageRecording } from './triage.js';

/** Reading or decoding the audio is tried this often before the voicemail is marked unavailable. */
const MAX_ATTEMPTS = 3;

export interface TriageServiceDeps {
  store: Store;
  triage: TriageStore;
  patient: PatientCipher;
  config: TriageConfig;
  /** Where the voicemail feature keeps recordings (<dir>/<deviceId>/<voicemailId>.wav, sealed). */
  voicemailDir: string;
  /** The fleet's public URL (alerts.publicUrl): the listen link. */
  publicUrl: string;
  /** The alert engine's entry, when the alerts feature runs. */
  raise?: (v: VoicemailAttention) => Promise<string>;
  log: Logger;
  now?: () => number;
}

interface Caller {
  key: string | null;
  /** undefined: not reported yet; null: withheld. */
  lastFour: string | null | undefined;
  at: number | undefined;
}

export class TriageService {
  constructor(private readonly d: TriageServiceDeps) {}

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  get spotter(): SpotterConfig {
    const c = this.d.config;
    return {
      soxPath: c.soxPath,
      pocketsphinxPath: c.pocketsphinxPath,
      hmmDir: c.hmmDir,
      dictPath: c.dictPath,
      timeoutMs: c.timeoutMs,
      phoneLoopProbability: c.phoneLoopProbability,
    };
  }

  /** A clinic's phrases (its own, or the defaults). */
  async phrasesOf(clinicId: string | null): Promise<{ phrases: UrgentPhrase[]; own: boolean }> {
    const own = clinicId ? await this.d.triage.getPhrases(clinicId) : undefined;
    return own ? { phrases: own.phrases, own: true } : { phrases: DEFAULT_PHRASES.map((p) => ({ ...p })), own: false };
  }

  private async caller(rec: TriageRecord): Promise<Caller> {
    const e = await this.d.triage.recordedEvent(rec.deviceId, rec.voicemailId);
    if (!e) return { key: null, lastFour: undefined, at: undefined };
    const body = this.d.patient.openFields(e.body) as { number?: string | null };
    const at = Date.parse(e.at);
    if (!body.number) return { key: null, lastFour: null, at };
    const digits = body.number.replace(/[^0-9]/g, '');
    return { key: this.d.patient.keyedHash(digits, 'caller'), lastFour: lastFour(body.number), at };
  }

  /** Triage one pending voicemail (a job of the queue). */
  async run(voicemailId: string): Promise<void> {
    const { triage, log } = this.d;
    const rec = await triage.get(voicemailId);
    if (rec?.state !== 'pending') return;
    const attempt = await triage.countAttempt(voicemailId);
    const clinicId = rec.clinicId ?? (await this.d.store.getBoxByDeviceId(rec.deviceId))?.clinicId ?? null;
    const { phrases } = await this.phrasesOf(clinicId);
    const caller = await this.caller(rec);
    const history = caller.key
      ? await triage.callerHistory(caller.key, voicemailId, this.d.config.historyMessages)
      : [];
    const base = { clinicId, callerKey: caller.key };
    let finished: Parameters<TriageStore['finish']>[1];
    try {
      const path = join(this.d.voicemailDir, rec.deviceId, `${voicemailId}.wav`);
      const audio = this.d.patient.openBytes(await readFile(path));
      const r = await triageRecording(audio, phrases, history, {
        spotter: this.spotter,
        baselineS: this.d.config.baselineS,
        stressUrgentScore: this.d.config.stressUrgentScore,
        workDir: join(this.d.voicemailDir, '.triage'),
      });
      finished = {
        ...base,
        state: 'done',
        urgent: r.urgent,
        attention: r.urgent,
        phrases: r.phrases,
        stressScore: r.stress.score,
        reasons: r.reasons,
        voice: r.stats,
        model: r.model,
        durationMs: r.durationMs,
        triageMs: r.triageMs,
        error: null,
      };
    } catch (e) {
      const tools = isCallboxError(e, ErrorCode.AudioUnavailable);
      if (!tools && attempt < MAX_ATTEMPTS) throw e; // the queue logs it; tried again at the next start or push
      const why = describeError(e);
      log.error({ voicemailId, err: why }, 'voicemail triage unavailable: the voicemail needs attention');
      finished = {
        ...base,
        state: 'unavailable',
        urgent: null,
        attention: true,
        phrases: [],
        stressScore: null,
        reasons: [`triage unavailable: ${why}`],
        voice: null,
        model: modelName(this.spotter),
        durationMs: null,
        triageMs: null,
        error: why,
      };
    }
    if (!(await triage.finish(voicemailId, finished, new Date(this.now()).toISOString()))) return;
    log.info(
      { voicemailId, deviceId: rec.deviceId, state: finished.state, urgent: finished.urgent },
      finished.attention ? 'voicemail needs attention' : 'voicemail triaged routine',
    );
    if (finished.attention) await this.alert(voicemailId, caller);
  }

  /** Raise the alert of a voicemail that needs attention (again after a restart: once per voicemail). */
  async alert(voicemailId: string, known?: Caller): Promise<void> {
    const rec = await this.d.triage.get(voicemailId);
    if (!rec?.attention || rec.alertId) return;
    if (!rec.clinicId) {
      this.d.log.warn({ voicemailId, deviceId: rec.deviceId }, 'voicemail needs attention but its box has no clinic');
      return;
    }
    if (!this.d.raise) {
      this.d.log.warn({ voicemailId }, 'voicemail needs attention but the alert engine is not running');
      return;
    }
    const caller = known ?? (await this.caller(rec));
    const alertId = await this.d.raise({
      clinicId: rec.clinicId,
      deviceId: rec.deviceId,
      voicemailId,
      at: caller.at ?? Date.parse(rec.storedAt),
      callerLastFour: caller.lastFour,
      phrases: rec.phrases.map((p) => p.phrase),
      stressScore: rec.stressScore,
      reasons: rec.reasons,
      ...(rec.state === 'unavailable' ? { unavailable: rec.error ?? 'unknown reason' } : {}),
      listenUrl: voicemailAudioUrl(this.d.publicUrl, voicemailId),
    });
    await this.d.triage.setAlert(voicemailId, alertId);
  }
}
