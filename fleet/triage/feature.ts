/**
 * Voicemail triage as a fleet feature. Wire it before the voicemail feature
 * and give that feature its `stored` hook (fleet/main.ts):
 *
 *   const triage = triageFeature();
 *   Fleet.start(config, { features: [alertsFeature(), triage, voicemailFeature(triage.stored), ...] });
 *
 * `stored` runs when a voicemail's checksum is confirmed, before the box is
 * told: it writes the pending row (durable: a restart finds it again) and
 * queues the job, never waiting for the triage itself. Jobs run on a queue
 * of `triage.concurrency`. At start, pending rows are queued again, and
 * results that need attention but have no alert yet are alerted. Ops methods:
 * voicemail.triage, triage.list, triage.phrases.get|set.
 */
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { AlertsFeature } from '../alerts/feature.js';
import type { Fleet, FleetFeature } from '../fleet.js';
import type { StoredVoicemail } from '../voicemail/receiver.js';
import { triageOpsHandlers } from './ops.js';
import { WorkQueue } from './queue.js';
import { TriageService } from './service.js';
import { TriageStore } from './store.js';

const log = getLogger('fleet:triage');

export class TriageFeature implements FleetFeature {
  readonly name = 'triage';
  readonly store: TriageStore;
  readonly service: TriageService;
  private readonly queue: WorkQueue;
  private started = false;

  constructor(private readonly fleet: Fleet) {
    this.store = TriageStore.over(fleet.store);
    this.service = new TriageService({
      store: fleet.store,
      triage: this.store,
      patient: fleet.patient,
      config: fleet.config.triage,
      voicemailDir: fleet.config.voicemail.dir,
      publicUrl: fleet.config.alerts.publicUrl,
      raise: (v) => {
        const engine = fleet.feature<AlertsFeature>('alerts')?.alerts?.engine;
        if (!engine) throw new CallboxError(ErrorCode.Internal, 'the alerts feature is not running');
        return engine.voicemailNeedsAttention(v);
      },
      log,
    });
    this.queue = new WorkQueue(fleet.config.triage.concurrency, (id) => this.service.run(id), log);
  }

  async start(): Promise<void> {
    const ops = this.fleet.opsApi;
    if (!ops) throw new CallboxError(ErrorCode.Internal, 'the triage feature needs the fleet ops API running');
    ops.extend((actor) => triageOpsHandlers(this, this.fleet, actor));
    this.started = true;
    if (!this.fleet.config.triage.enabled) {
      log.warn('voicemail triage is off (triage.enabled): voicemails wait unsorted');
      return;
    }
    for (const r of await this.store.listUnalerted()) {
      await this.service.alert(r.voicemailId).catch((err) => log.error({ err }, 'alerting a voicemail failed'));
    }
    const pending = await this.store.listPending();
    for (const r of pending) this.queue.push(r.voicemailId);
    log.info(
      { pending: pending.length, concurrency: this.fleet.config.triage.concurrency },
      'voicemail triage started',
    );
  }

  /** The voicemail feature's hook: a voicemail stored with its checksum confirmed. */
  async onStored(v: StoredVoicemail): Promise<void> {
    const box = await this.fleet.store.getBoxByDeviceId(v.deviceId);
    await this.store.addPending({
      voicemailId: v.voicemailId,
      deviceId: v.deviceId,
      clinicId: box?.clinicId ?? null,
      sha256: v.sha256,
      bytes: v.bytes,
      at: new Date().toISOString(),
    });
    if (this.started && this.fleet.config.triage.enabled) this.queue.push(v.voicemailId);
  }

  /** Triage this pending voicemail now (queued; tests and ops). */
  push(voicemailId: string): boolean {
    return this.queue.push(voicemailId);
  }

  /** Resolves when no triage waits or runs. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  async stop(): Promise<void> {
    this.started = false;
    await this.queue.stop();
  }
}

/** The feature factory, with the hook to give the voicemail feature (`voicemailFeature(triage.stored)`). */
export function triageFeature(): ((fleet: Fleet) => TriageFeature) & {
  stored: (v: StoredVoicemail) => Promise<void>;
} {
  let feature: TriageFeature | undefined;
  const make = (fleet: Fleet) => {
    feature = new TriageFeature(fleet);
    return feature;
  };
  return Object.assign(make, {
    stored: async (v: StoredVoicemail) => {
      if (!feature) {
        log.error({ voicemailId: v.voicemailId }, 'a voicemail was stored before the triage feature was made');
        return;
      }
      await feature.onStored(v);
    },
  });
}
