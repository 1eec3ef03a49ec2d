/**
 * Builds the call log, the number's contacts, the call-back list and the
 * survey figures from stored events, through a durable cursor (`patients` in
 * event_cursors: at least once, and every write here is idempotent, so a
 * crash between applying and moving the cursor changes nothing). It runs
 * after the events are committed and receipted, never on ingest's path; a
 * new call's FHIR lookup is handed to CallerLookup and not waited for.
 *
 * Call-back rules: a call that ended in voicemail (or voicemail_failed),
 * rolled_over, abandoned or missed goes on the list, except a withheld
 * caller's (nobody to call back) unless it left a voicemail (the message may
 * say a number). A later call from the same number that ends answered closes
 * the number's open call-backs at that clinic (done by
 * "auto:answered-call", with the answered call's id), written to the audit
 * log like a manual `callbacks.done`.
 */
import { getLogger } from '../../shared/log.js';
import type { PositionedEvent, Store } from '../store/types.js';
import type { PatientsConfig } from './config.js';
import type { CallerLookup } from './lookup.js';
import { repeatReason } from './repeat.js';
import type { LookupState, PatientStore } from './store.js';

const log = getLogger('fleet:patients');

export const PATIENTS_CURSOR = 'patients';
const BATCH = 500;
const ATTEMPTS = 5;
const CALLBACK_OUTCOMES = new Set(['voicemail', 'voicemail_failed', 'rolled_over', 'abandoned', 'missed']);
export const AUTO_CLOSER = 'auto:answered-call';

/** A caller id worth treating as a number. */
function numberOf(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return /^\+?[0-9]{3,20}$/.test(t) ? t : null;
}

interface Body {
  callId?: string;
  number?: string | null;
  withheld?: boolean;
  inHours?: boolean;
  outcome?: string;
  rings?: number;
  durationMs?: number;
  from?: string;
  status?: string;
  score?: number;
}

export interface ProjectorDeps {
  store: Store;
  patients: PatientStore;
  lookup: CallerLookup;
  cfg: PatientsConfig;
  /** Name of this fleet instance (the cursor's lease owner). */
  owner: string;
  clock?: () => number;
  /** After a pass applied events: the clinics whose call log or call-back list may have changed (the live pages). */
  onChanged?: (clinicIds: string[]) => void;
}

/** The stored events that change a clinic's call log or call-back list. */
const CALL_LOG_TYPES = new Set(['call.incoming', 'call.answered', 'call.ended', 'voicemail.recorded', 'sms.received']);

export class Projector {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly failures = new Map<string, number>();
  private readonly clinics = new Map<string, { clinicId: string | null; until: number }>();
  private readonly clock: () => number;

  constructor(private readonly d: ProjectorDeps) {
    this.clock = d.clock ?? Date.now;
  }

  /** Read what was stored after the cursor (now, or right after the pass running). Never rejects. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass().catch((err) => {
          log.error({ err }, 'reading stored events for the call log failed; trying again');
          this.retryLater();
        });
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.running;
    await this.d.store.releaseCursor(PATIENTS_CURSOR, this.d.owner).catch(() => undefined);
  }

  private retryLater(): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.kick(), 1000);
    this.retry.unref();
  }

  private iso(ms: number): string {
    return new Date(ms).toISOString();
  }

  private async pass(): Promise<void> {
    const { store, owner } = this.d;
    while (!this.stopped) {
      const t = this.clock();
      const cursor = await store.claimCursor(PATIENTS_CURSOR, owner, this.iso(t), this.iso(t + 60_000));
      if (!cursor) return; // another fleet instance keeps the call log
      const batch = await store.readEventsAfter(cursor.pos, BATCH);
      if (batch.length === 0) return;
      let to = cursor.pos;
      let failed = false;
      const changed = new Set<string>();
      for (const e of batch) {
        if (this.stopped) break;
        try {
          await this.apply(e);
          this.failures.delete(e.id);
          if (CALL_LOG_TYPES.has(e.type)) {
            const clinicId = await this.clinicOf(e.deviceId);
            if (clinicId) changed.add(clinicId);
          }
        } catch (err) {
          const n = (this.failures.get(e.id) ?? 0) + 1;
          this.failures.set(e.id, n);
          if (n < ATTEMPTS) {
            log.warn({ err, eventId: e.id, type: e.type, attempt: n }, 'event not applied to the call log yet');
            failed = true;
            break;
          }
          log.error({ err, eventId: e.id, type: e.type }, 'event passed over by the call log after repeated failures');
          this.failures.delete(e.id);
        }
        to = e.pos;
      }
      if (to > cursor.pos) {
        const t2 = this.clock();
        await store.advanceCursor(PATIENTS_CURSOR, {
          owner,
          from: cursor.pos,
          to,
          now: this.iso(t2),
          until: this.iso(t2 + 60_000),
        });
      }
      if (changed.size > 0) this.d.onChanged?.([...changed]);
      if (failed) {
        this.retryLater();
        return;
      }
      if (batch.length < BATCH) return;
    }
  }

  private async clinicOf(deviceId: string): Promise<string | null> {
    const hit = this.clinics.get(deviceId);
    if (hit && hit.until > this.clock()) return hit.clinicId;
    const box = await this.d.store.getBoxByDeviceId(deviceId);
    const clinicId = box?.clinicId ?? null;
    this.clinics.set(deviceId, { clinicId, until: this.clock() + 30_000 });
    return clinicId;
  }

  async apply(e: PositionedEvent): Promise<void> {
    const b = e.body as Body;
    switch (e.type) {
      case 'call.incoming':
        return this.incoming(e, b);
      case 'call.answered':
        if (b.callId) await this.d.patients.answerCall(e.deviceId, b.callId, e.at);
        return;
      case 'call.ended':
        return this.ended(e, b);
      case 'voicemail.recorded':
        return this.contact(e, numberOf(b.number), 'voicemail', b.callId ?? null, null);
      case 'sms.received':
        return this.contact(e, numberOf(b.from), 'sms', null, null);
      case 'survey.sent':
      case 'survey.reply': {
        const clinicId = await this.clinicOf(e.deviceId);
        await this.d.patients.addSurvey({
          eventId: e.id,
          clinicId,
          deviceId: e.deviceId,
          callId: b.callId ?? '',
          kind: e.type === 'survey.reply' ? 'reply' : b.status === 'sent' ? 'sent' : 'failed',
          score: e.type === 'survey.reply' ? (b.score ?? null) : null,
          at: e.at,
        });
        if (e.type === 'survey.reply') await this.contact(e, numberOf(b.number), 'sms', b.callId ?? null, 'survey');
        return;
      }
      default:
        return;
    }
  }

  private async contact(
    e: PositionedEvent,
    number: string | null,
    kind: 'call' | 'voicemail' | 'sms',
    callId: string | null,
    detail: string | null,
  ): Promise<void> {
    const clinicId = await this.clinicOf(e.deviceId);
    if (!clinicId || !number) return;
    await this.d.patients.addContact({ eventId: e.id, clinicId, number, kind, at: e.at, callId, detail });
  }

  private async incoming(e: PositionedEvent, b: Body): Promise<void> {
    if (!b.callId) return;
    const { patients, cfg } = this.d;
    const clinicId = await this.clinicOf(e.deviceId);
    const number = b.withheld ? null : numberOf(b.number);
    const fresh = this.clock() - Date.parse(e.at) < cfg.lookupMaxAgeH * 3_600_000;
    let lookup: LookupState;
    if (!number) lookup = 'withheld';
    else if (!clinicId || !(await patients.getFhir(clinicId))) lookup = 'off';
    else lookup = fresh ? 'pending' : 'skipped';
    const created = await patients.startCall({
      deviceId: e.deviceId,
      callId: b.callId,
      clinicId,
      number,
      withheld: !!b.withheld,
      inHours: !!b.inHours,
      at: e.at,
      lookup,
    });
    if (clinicId && number) {
      await patients.addContact({
        eventId: e.id,
        clinicId,
        number,
        kind: 'call',
        at: e.at,
        callId: b.callId,
        detail: null,
      });
      const earlier = await patients.contactsBefore(clinicId, patients.ix(number), e.at, 200, b.callId);
      const reason = repeatReason(e.at, earlier, cfg);
      await patients.setRepeat(e.deviceId, b.callId, reason);
      if (reason) log.info({ clinicId, callId: b.callId, reason }, 'repeat concern flagged');
    }
    // Asked once; after a crash a call still pending is asked again.
    const row = created ? undefined : await patients.getCall(e.deviceId, b.callId);
    if (clinicId && number && lookup === 'pending' && (created || row?.lookup === 'pending')) {
      this.d.lookup.enqueue({ clinicId, deviceId: e.deviceId, callId: b.callId, number });
    }
  }

  private async ended(e: PositionedEvent, b: Body): Promise<void> {
    if (!b.callId || !b.outcome) return;
    const { patients, store } = this.d;
    const clinicId = await this.clinicOf(e.deviceId);
    const number = b.withheld ? null : numberOf(b.number);
    await patients.endCall({
      deviceId: e.deviceId,
      callId: b.callId,
      clinicId,
      number,
      withheld: !!b.withheld,
      inHours: !!b.inHours,
      at: e.at,
      outcome: b.outcome,
      rings: b.rings ?? 0,
      durationMs: b.durationMs ?? 0,
    });
    if (clinicId && number) await patients.setContactDetail(clinicId, b.callId, b.outcome);
    const voicemail = b.outcome === 'voicemail' || b.outcome === 'voicemail_failed';
    if (CALLBACK_OUTCOMES.has(b.outcome) && (number || voicemail)) {
      const opened = await patients.openCallback({
        deviceId: e.deviceId,
        callId: b.callId,
        clinicId,
        number,
        reason: b.outcome,
        at: e.at,
      });
      if (opened) log.info({ clinicId, callId: b.callId, reason: b.outcome }, 'call-back listed');
    }
    if (b.outcome === 'answered' && clinicId && number) {
      for (const cb of await patients.openCallbacksOf(clinicId, patients.ix(number), e.at)) {
        if (cb.callId === b.callId) continue;
        const after = await patients.closeCallback(cb.deviceId, cb.callId, AUTO_CLOSER, null, b.callId, e.at);
        if (!after) continue;
        await store.appendAudit({
          actor: AUTO_CLOSER,
          action: 'callbacks.done',
          target: `call:${cb.callId}`,
          before: { state: 'open' },
          after: { state: 'done', doneAt: after.doneAt, closedByCall: b.callId },
        });
        log.info({ clinicId, callId: cb.callId, by: b.callId }, 'call-back closed by a later answered call');
      }
    }
  }
}
