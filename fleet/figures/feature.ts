/**
 * Call figures and stored telemetry as a fleet feature:
 * `Fleet.start(config, { features: [figuresFeature()] })`. On start it
 * migrates the figures tables (in the fleet's database), reads the stored
 * events into the rollups through the `figures` cursor (reader.ts), keeps
 * every telemetry sample (bus 'telemetry') with the newest on the box row,
 * deletes samples older than telemetry.retentionDays every
 * telemetry.pruneEveryMin, and adds FIGURES_OPS_METHODS to the ops API.
 */
import { createHmac } from 'node:crypto';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { Fleet, FleetFeature } from '../fleet.js';
import { SqlStore } from '../store/sql-store.js';
import { figuresOpsHandlers } from './ops.js';
import { FiguresReader } from './reader.js';
import { TelemetryRetention } from './retention.js';
import type { RollupDeps } from './rollup.js';
import { FiguresService } from './service.js';
import { FiguresStore, telemetryPoint } from './store.js';

const log = getLogger('fleet:figures');

/** The keyed hash of a caller number: HMAC-SHA256 over its last 9 digits (national and E.164 forms agree). */
export function numberHasher(key: Buffer): (number: string) => string {
  return (number) => createHmac('sha256', key).update(number.replace(/\D/g, '').slice(-9)).digest('base64url');
}

export interface FiguresFeatureOptions {
  /** The clock of telemetry receipt times (tests). */
  now?: () => number;
}

export class FiguresFeature implements FleetFeature {
  readonly name = 'figures';
  figures: FiguresStore | undefined;
  reader: FiguresReader | undefined;
  service: FiguresService | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  retention: TelemetryRetention | undefined;
  private telemetryWrites = Promise.resolve();

  constructor(
    private readonly fleet: Fleet,
    private readonly opts: FiguresFeatureOptions = {},
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  async start(): Promise<void> {
    const f = this.fleet;
    if (!(f.store instanceof SqlStore)) {
      throw new TypeError("the figures need the fleet's SQL store (SQLite or PostgreSQL) to share its connection");
    }
    const figures = FiguresStore.over(f.store);
    await figures.migrate();
    this.figures = figures;
    const cfg = f.config.figures;
    const key = cfg.hashKey ? Buffer.from(cfg.hashKey, 'utf8') : f.patient.deriveKey('figures-number-hash');
    const deps: RollupDeps = { hashNumber: numberHasher(key), seal: (n) => f.patient.sealText(n) };
    this.reader = new FiguresReader(f.store, figures, deps, {
      owner: f.config.alerts.instance,
      batch: cfg.eventBatch,
      leaseS: f.config.alerts.leaseS,
      log,
    });
    this.service = new FiguresService(f.store, f.registry, figures, f.patient);
    const ops = f.opsApi;
    if (!ops) throw new CallboxError(ErrorCode.Internal, 'the figures feature needs the fleet ops API running');
    const reader = this.reader;
    const service = this.service;
    ops.extend((actor) => figuresOpsHandlers(service, reader, f.store, actor));
    f.bus.on('event.stored', this, () => void reader.kick());
    f.bus.on('telemetry', this, ({ deviceId, telemetry }) => {
      const p = telemetryPoint(telemetry, new Date(this.now()).toISOString());
      this.telemetryWrites = this.telemetryWrites
        .then(() => figures.putTelemetry(deviceId, p))
        .catch((err) => log.warn({ err, deviceId }, 'storing telemetry failed'));
    });
    this.pollTimer = setInterval(() => void reader.kick(), cfg.pollMs);
    this.pollTimer.unref?.();
    this.retention = new TelemetryRetention(figures, {
      retentionDays: f.config.telemetry.retentionDays,
      everyMs: f.config.telemetry.pruneEveryMin * 60_000,
      log,
    });
    await this.retention.start();
    void reader.kick();
  }

  /** Wait until the stored events and telemetry seen so far are applied (tests, benchmarks). */
  async settle(): Promise<void> {
    await this.telemetryWrites;
    await this.reader?.kick();
  }

  async stop(): Promise<void> {
    clearInterval(this.pollTimer);
    await this.retention?.stop();
    this.fleet.bus.removeAll(this);
    await this.telemetryWrites;
    await this.reader?.stop();
  }
}

export function figuresFeature(opts: FiguresFeatureOptions = {}): (fleet: Fleet) => FiguresFeature {
  return (fleet) => new FiguresFeature(fleet, opts);
}
