/**
 * Caller lookups, off the call's path: jobs go in a bounded line and run at
 * most `fhirConcurrency` at a time; each asks the clinic's FHIR server
 * (fhir.ts) within `fhirTimeoutMs` and writes the answer on the call's row
 * (sealed). Answers (found, none, several; not errors) are cached per clinic
 * and number for `cacheTtlS`, at most `cacheMax` of them (the oldest go
 * first). Logs name the clinic, call and outcome only: never the number,
 * the token or the patient.
 */
import { describeError } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { PatientsConfig } from './config.js';
import { type FhirAnswer, FhirError, searchPatientByPhone } from './fhir.js';
import type { LookupState, PatientStore } from './store.js';

const log = getLogger('fleet:patients:lookup');

export interface LookupJob {
  clinicId: string;
  deviceId: string;
  callId: string;
  number: string;
}

export interface LookupCounters {
  asked: number;
  found: number;
  none: number;
  several: number;
  errors: number;
  skipped: number;
  cacheHits: number;
}

export type LookupDone = (job: LookupJob, state: LookupState) => void;

export class CallerLookup {
  readonly counters: LookupCounters = { asked: 0, found: 0, none: 0, several: 0, errors: 0, skipped: 0, cacheHits: 0 };
  private readonly line: LookupJob[] = [];
  private running = 0;
  private readonly cache = new Map<string, { answer: FhirAnswer; until: number }>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly store: PatientStore,
    private readonly cfg: PatientsConfig,
    private readonly onDone: LookupDone = () => undefined,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Queue a lookup; never waits for it. False if the line is full (the call is marked skipped). */
  enqueue(job: LookupJob): boolean {
    if (this.stopped) return false;
    if (this.line.length >= this.cfg.fhirQueueMax) {
      this.counters.skipped++;
      log.warn({ clinicId: job.clinicId, callId: job.callId, queued: this.line.length }, 'FHIR lookups queue full');
      this.track(this.finish(job, { state: 'skipped', detail: 'too many lookups waiting' }));
      return false;
    }
    this.line.push(job);
    this.pump();
    return true;
  }

  /** Lookups waiting and running. */
  get pending(): number {
    return this.line.length + this.running;
  }

  /** Resolves once nothing is waiting or running (tests, stop). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.line.length = 0;
    await this.idle();
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private pump(): void {
    while (this.running < this.cfg.fhirConcurrency && this.line.length > 0) {
      const job = this.line.shift() as LookupJob;
      this.running++;
      this.track(
        this.run(job).finally(() => {
          this.running--;
          this.pump();
        }),
      );
    }
  }

  private cached(key: string): FhirAnswer | undefined {
    const hit = this.cache.get(key);
    if (!hit) return undefined;
    if (hit.until <= this.clock()) {
      this.cache.delete(key);
      return undefined;
    }
    return hit.answer;
  }

  private remember(key: string, answer: FhirAnswer): void {
    if (this.cfg.cacheMax === 0 || this.cfg.cacheTtlS === 0) return;
    this.cache.delete(key);
    this.cache.set(key, { answer, until: this.clock() + this.cfg.cacheTtlS * 1000 });
    while (this.cache.size > this.cfg.cacheMax) this.cache.delete(this.cache.keys().next().value as string);
  }

  private async run(job: LookupJob): Promise<void> {
    if (this.stopped) return;
    try {
      const fhir = await this.store.getFhir(job.clinicId);
      if (!fhir) {
        await this.finish(job, { state: 'off' });
        return;
      }
      const key = `${job.clinicId}|${fhir.baseUrl}|${this.store.ix(job.number)}`;
      let answer = this.cached(key);
      if (answer) this.counters.cacheHits++;
      else {
        this.counters.asked++;
        answer = await searchPatientByPhone({
          baseUrl: fhir.baseUrl,
          token: fhir.token,
          number: job.number,
          timeoutMs: this.cfg.fhirTimeoutMs,
        });
        this.remember(key, answer);
      }
      if (answer.kind === 'found') {
        this.counters.found++;
        await this.finish(job, { state: 'found', matches: 1, patient: answer.patient });
      } else if (answer.kind === 'several') {
        this.counters.several++;
        await this.finish(job, { state: 'several', matches: answer.count, detail: `${answer.count} patients` });
      } else {
        this.counters.none++;
        await this.finish(job, { state: 'none' });
      }
    } catch (e) {
      this.counters.errors++;
      const detail = e instanceof FhirError ? e.message : `lookup failed: ${describeError(e)}`;
      log.warn({ clinicId: job.clinicId, callId: job.callId, reason: detail }, 'caller lookup failed');
      await this.finish(job, { state: 'error', detail: detail.slice(0, 300) }).catch(() => undefined);
    }
  }

  private async finish(job: LookupJob, r: Parameters<PatientStore['setLookup']>[2]): Promise<void> {
    await this.store.setLookup(job.deviceId, job.callId, r);
    log.info({ clinicId: job.clinicId, callId: job.callId, lookup: r.state }, 'caller looked up');
    try {
      this.onDone(job, r.state);
    } catch (err) {
      log.warn({ err }, 'lookup listener failed');
    }
  }
}
