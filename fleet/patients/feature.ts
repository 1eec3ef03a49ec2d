/**
 * "Who is calling" and follow-up as a fleet feature:
 * `Fleet.start(config, { features: [patientsFeature()] })`. It keeps the
 * call log, the call-back list and the survey figures from stored events
 * (projector.ts, after the commit, never on ingest's path), looks new
 * callers up in their clinic's FHIR server (lookup.ts, asynchronously,
 * bounded), and adds PATIENT_OPS_METHODS to the ops API.
 */
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Fleet, FleetFeature } from '../fleet.js';
import { SqlStore } from '../store/sql-store.js';
import { CallerLookup } from './lookup.js';
import { patientOpsHandlers } from './ops.js';
import { Projector } from './projector.js';
import { PatientStore } from './store.js';

export interface PatientsFeatureOptions {
  /** The clock of the lookup cache and the lookup age rule (tests). */
  clock?: () => number;
}

export class PatientsFeature implements FleetFeature {
  readonly name = 'patients';
  patients: PatientStore | undefined;
  lookup: CallerLookup | undefined;
  projector: Projector | undefined;
  private poll: NodeJS.Timeout | undefined;

  constructor(
    private readonly fleet: Fleet,
    private readonly opts: PatientsFeatureOptions = {},
  ) {}

  async start(): Promise<void> {
    const f = this.fleet;
    const cfg = f.config.patients;
    if (!cfg.enabled) return;
    if (!(f.store instanceof SqlStore)) {
      throw new CallboxError(ErrorCode.Internal, 'the patients feature needs the SQL fleet store');
    }
    const patients = PatientStore.over(f.store, f.patient);
    await patients.migrate();
    this.patients = patients;
    this.lookup = new CallerLookup(
      patients,
      cfg,
      (job, state) =>
        f.bus.emit('patients.lookup', { clinicId: job.clinicId, deviceId: job.deviceId, callId: job.callId, state }),
      this.opts.clock,
    );
    this.projector = new Projector({
      store: f.store,
      patients,
      lookup: this.lookup,
      cfg,
      owner: f.config.alerts.instance,
      onChanged: (clinicIds) => f.bus.emit('calllog.changed', { clinicIds }),
      ...(this.opts.clock ? { clock: this.opts.clock } : {}),
    });
    const projector = this.projector;
    // After the commit (the bus event comes from the ingest's write): read on the next turn, never inline.
    f.bus.on('event.stored', this, () => {
      setImmediate(() => void projector.kick());
    });
    const ops = f.opsApi;
    if (!ops) throw new CallboxError(ErrorCode.Internal, 'the patients feature needs the fleet ops API running');
    ops.extend((actor) => patientOpsHandlers({ patients, store: f.store, cfg }, actor));
    this.poll = setInterval(() => void projector.kick(), cfg.pollS * 1000);
    this.poll.unref();
    void projector.kick();
  }

  /** Everything stored so far is in the call log and every lookup asked has its answer (tests). */
  async settled(): Promise<void> {
    await this.projector?.kick();
    await this.lookup?.idle();
  }

  async stop(): Promise<void> {
    clearInterval(this.poll);
    this.fleet.bus.removeAll(this);
    await this.projector?.stop();
    await this.lookup?.stop();
  }
}

export function patientsFeature(opts: PatientsFeatureOptions = {}): (fleet: Fleet) => PatientsFeature {
  return (fleet) => new PatientsFeature(fleet, opts);
}
