/**
 * The box's composition root. Opens the store, the outbox and the last good
 * settings, starts the feature modules plugged in with use(), then runs the
 * uplink in the background: claim (if the box has no credentials), connect
 * as the device, fetch and apply configuration, answer commands, publish
 * telemetry. Everything a feature module needs goes through the Box:
 *
 *   box.use({ name, migrations?, start(box), stop?() })   a feature module (modem, calls, io, voicemail)
 *   box.events                                            EventSink: record() resolves once durable
 *   box.handle('sms.send', async (params, ctx) => ...)    answer a fleet command (idempotent by request id)
 *   box.onSettings({ name, check?, apply })               settings in force now and on every change (check may veto)
 *   box.provideModemTelemetry(() => ({ ... }))            modem fields of telemetry (default: unknown)
 *   box.provideVoicemailsPending(() => n)                 voicemails awaiting upload
 *   box.provideVoicemailsUnheard(() => n)                 voicemails nobody listened to yet (the light)
 *   box.on('state', (state, detail) => ...)               uplink state for the indicators
 *   box.store                                             the SQLite store (own tables via migrations)
 *
 * Uplink states: starting -> unprovisioned (claiming; waiting for an
 * operator) -> connecting -> online <-> offline; revoked (credentials
 * refused: set aside, back to unprovisioned); stopped.
 *
 * The uplink itself (claim, connect, refusals and revocation, commands and
 * configuration over the device session) is device/uplink/session.ts; the
 * kept answers to commands are device/uplink/command-cache.ts.
 */
import { EventEmitter } from 'node:events';
import { mkdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { background } from '../shared/background.js';
import type { ConfigReported, Telemetry } from '../shared/contract/messages.js';
import type { DEVICE_COMMANDS, DeviceCommand } from '../shared/contract/rpc.js';
import type { DeviceSettings } from '../shared/contract/settings.js';
import type { DeviceTopics } from '../shared/contract/topics.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { newBootId } from '../shared/ids.js';
import { getLogger, type Logger } from '../shared/log.js';
import type { Handlers } from '../shared/rpc.js';
import { SystemdNotifier } from '../shared/systemd-notify.js';
import { SOFTWARE_VERSION } from '../shared/version.js';
import type { DeviceConfig } from './config.js';
import type { EventSink } from './events.js';
import { type Migration, Store } from './store/store.js';
import { CommandCache, type CommandHandler } from './uplink/command-cache.js';
import { CredentialsFile } from './uplink/credentials.js';
import { UPLINK_MIGRATIONS } from './uplink/migrations.js';
import { Outbox } from './uplink/outbox.js';
import { UplinkSession, type UplinkState } from './uplink/session.js';
import { Settings, type SettingsListener } from './uplink/settings.js';

export type { CommandHandler } from './uplink/command-cache.js';
export type { UplinkState } from './uplink/session.js';
export type ModemTelemetry = Telemetry['modem'];

/** A feature module: side-effect-free constructor, async start/stop, its own tables. */
export interface BoxModule {
  name: string;
  migrations?: readonly Migration[];
  start(box: Box): Promise<void> | void;
  stop?(): Promise<void> | void;
  /** Asked at every systemd watchdog tick: false stops the pings, and systemd restarts the box. */
  healthy?(): boolean | Promise<boolean>;
}

export interface BoxOptions {
  config: DeviceConfig;
  softwareVersion?: string;
  notifier?: SystemdNotifier;
  /** Random source for reconnect jitter. */
  random?: () => number;
  /** What "reboot" does (main.ts: stop and exit so systemd restarts the box). */
  onReboot?: () => void;
  /** A device-credential refusal must repeat this many times in a row before the box treats it as revoked. */
  revokeAfterRefusals?: number;
  log?: Logger;
}

export interface BoxEvents {
  state: [UplinkState, string | undefined];
  settings: [DeviceSettings];
  /** A configuration report was produced (applied or refused). */
  reported: [ConfigReported];
}

const UNKNOWN_MODEM: ModemTelemetry = {
  state: 'unknown',
  signalDbm: null,
  registration: 'unknown',
  operator: null,
  model: null,
  firmware: null,
  simPresent: false,
};

export class Box extends EventEmitter<BoxEvents> {
  readonly bootId = newBootId();
  readonly config: DeviceConfig;
  private readonly log: Logger;
  private readonly modules: BoxModule[] = [];
  private readonly started: BoxModule[] = [];
  private readonly handlers: Handlers<typeof DEVICE_COMMANDS> = {};
  private readonly notifier: SystemdNotifier;
  private readonly credentials: CredentialsFile;
  private readonly settingsStore: Settings;
  private readonly commands: CommandCache;
  private storeRef: Store | undefined;
  private outboxRef: Outbox | undefined;
  private uplink: UplinkSession | undefined;
  private stateValue: UplinkState = 'starting';
  private softwareVersion: string;
  private modemTelemetry: () => ModemTelemetry | Promise<ModemTelemetry> = () => UNKNOWN_MODEM;
  private voicemailsPending: () => number | Promise<number> = () => 0;
  private voicemailsUnheard: (() => number) | null = null;
  private telemetryTimer: NodeJS.Timeout | undefined;
  private telemetryEveryS = 0;
  private offTelemetrySettings: (() => void) | undefined;
  private stopping = false;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: BoxOptions) {
    super();
    this.config = opts.config;
    this.log = opts.log ?? getLogger('device:box');
    this.notifier = opts.notifier ?? new SystemdNotifier({ log: getLogger('device:systemd') });
    this.credentials = new CredentialsFile(opts.config.box.dataDir);
    this.settingsStore = new Settings(opts.config.box.dataDir);
    this.commands = new CommandCache(() => this.store, this.log);
    this.softwareVersion = opts.softwareVersion ?? '0.0.0';
    this.handle('diagnostics.collect', () => this.diagnostics());
    this.handle('reboot', (p) => {
      const delayS = p.delayS ?? 0;
      const at = new Date(Date.now() + delayS * 1000);
      this.log.warn({ delayS }, 'reboot requested by the fleet');
      const reboot = this.opts.onReboot ?? (() => background(this.stop(), this.log, 'stopping for a reboot'));
      setTimeout(reboot, delayS * 1000).unref();
      return { scheduledAt: at.toISOString() };
    });
  }

  // ---- what modules use ------------------------------------------------------------

  /** Plug in a feature module (before start). */
  use(module: BoxModule): this {
    if (this.storeRef) throw new CallboxError(ErrorCode.Internal, `module ${module.name} added after start`);
    this.modules.push(module);
    return this;
  }

  get events(): EventSink {
    if (!this.outboxRef) throw new CallboxError(ErrorCode.Internal, 'box.events used before start');
    return this.outboxRef;
  }

  get outbox(): Outbox {
    if (!this.outboxRef) throw new CallboxError(ErrorCode.Internal, 'box.outbox used before start');
    return this.outboxRef;
  }

  get store(): Store {
    if (!this.storeRef) throw new CallboxError(ErrorCode.Internal, 'box.store used before start');
    return this.storeRef;
  }

  get settings(): DeviceSettings {
    return this.settingsStore.current;
  }

  get settingsVersion(): number | null {
    return this.settingsStore.version;
  }

  get state(): UplinkState {
    return this.stateValue;
  }

  /**
   * The device session's MQTT client and topics while the box runs as a device
   * (for the voicemail uploader); undefined while unprovisioned or stopped.
   */
  get session(): { client: MqttClient; topics: DeviceTopics } | undefined {
    return this.uplink?.current;
  }

  get deviceId(): string | undefined {
    const topics = this.uplink?.topics;
    return topics ? topics.root.split('/')[2] : undefined;
  }

  /** Answer a fleet command; returns the removal. Answers are kept by request id (a repeat is not run again). */
  handle<M extends DeviceCommand>(method: M, handler: CommandHandler<M>): () => void {
    const table = this.handlers as Record<string, unknown>;
    table[method] = this.commands.idempotent(method, handler as unknown as CommandHandler<DeviceCommand>);
    return () => {
      delete table[method];
    };
  }

  /** Listen to the settings: called now with those in force, then on every change (check may veto). */
  onSettings(listener: SettingsListener): Promise<() => void> {
    return this.settingsStore.addListener(listener);
  }

  /** The commands the box answers now (its own and the modules'); a stopped box answers only its own. */
  get commandMethods(): string[] {
    return Object.keys(this.handlers);
  }

  /** Settings listeners registered now (the modules' and the box's telemetry); a stopped box has none. */
  get settingsListenerCount(): number {
    return this.settingsStore.listenerCount;
  }

  provideModemTelemetry(fn: () => ModemTelemetry | Promise<ModemTelemetry>): void {
    this.modemTelemetry = fn;
  }

  provideVoicemailsPending(fn: () => number | Promise<number>): void {
    this.voicemailsPending = fn;
  }

  /** Voicemails recorded and not yet heard at the fleet (telemetry voicemailsUnheard). */
  provideVoicemailsUnheard(fn: () => number): void {
    this.voicemailsUnheard = fn;
  }

  // ---- lifecycle ---------------------------------------------------------------------

  async start(): Promise<void> {
    const { dataDir } = this.config.box;
    if (!this.opts.softwareVersion) this.softwareVersion = SOFTWARE_VERSION;
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const migrations: Record<string, readonly Migration[]> = { uplink: UPLINK_MIGRATIONS };
    for (const m of this.modules) if (m.migrations) migrations[m.name] = m.migrations;
    this.storeRef = await Store.open({ file: join(dataDir, 'box.db'), migrations });
    const c = this.config.outbox;
    this.outboxRef = new Outbox(this.storeRef, {
      bootId: this.bootId,
      maxEvents: c.maxEvents,
      publishBatch: c.publishBatch,
      batchMaxBytes: c.batchMaxBytes,
      batchesInFlight: c.batchesInFlight,
      receiptTimeoutMs: c.receiptTimeoutMs,
      receiptTimeoutMaxMs: c.receiptTimeoutMaxMs,
      minFreeBytes: c.minFreeMb * 2 ** 20,
      flushDelayMs: c.flushDelayMs,
      dataDir,
    });
    await this.outboxRef.open();
    if (this.storeRef.quarantined) {
      await this.outboxRef.record('store.quarantined', {
        movedTo: this.storeRef.quarantined.movedTo,
        reason: this.storeRef.quarantined.reason.slice(0, 2000),
      });
    }
    await this.commands.prune();
    await this.settingsStore.load();
    this.offTelemetrySettings = await this.settingsStore.addListener({
      name: 'telemetry',
      apply: (next) => this.scheduleTelemetry(next.telemetry.intervalS),
    });
    for (const m of this.modules) {
      await m.start(this);
      this.started.push(m);
      this.log.info({ module: m.name }, 'module started');
    }
    this.uplink = new UplinkSession({
      config: this.config,
      bootId: this.bootId,
      softwareVersion: () => this.softwareVersion,
      credentials: this.credentials,
      outbox: this.outboxRef,
      handlers: this.handlers,
      commands: this.commands,
      settings: this.settingsStore,
      onState: (s, detail) => this.setState(s, detail),
      onReport: (report) => {
        this.emit('reported', report);
        if (report.state === 'applied') this.emit('settings', this.settingsStore.current);
      },
      onConfigured: () => this.sendTelemetry(),
      ...(this.opts.random ? { random: this.opts.random } : {}),
      ...(this.opts.revokeAfterRefusals !== undefined ? { revokeAfterRefusals: this.opts.revokeAfterRefusals } : {}),
      log: this.log,
    });
    this.uplink.start();
    await this.notifier.ready(`boot ${this.bootId}`);
    this.notifier.startWatchdog(() => this.healthy());
    this.log.info({ bootId: this.bootId, version: this.softwareVersion }, 'box started');
  }

  /** Clean shutdown: modules, outbox (pending commits), link (retained offline), store. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.notifier.stopping();
    clearTimeout(this.telemetryTimer);
    this.telemetryTimer = undefined;
    this.offTelemetrySettings?.();
    // Claims, waits and retries end now; the device link stays up while the modules stop.
    this.uplink?.abort();
    for (const m of this.started.splice(0).reverse()) {
      try {
        await m.stop?.();
      } catch (e) {
        this.log.error({ err: e, module: m.name }, 'module failed to stop');
      }
    }
    await this.outboxRef?.close();
    await this.uplink?.stop();
    await this.storeRef?.close();
    this.setState('stopped');
    this.log.info('box stopped');
  }

  private setState(s: UplinkState, detail?: string): void {
    if (s === this.stateValue) return;
    this.stateValue = s;
    this.emit('state', s, detail);
  }

  /** Store answers and every module is healthy (the watchdog's test; device/update confirms a release with it). */
  async healthy(): Promise<boolean> {
    const store = this.storeRef;
    if (!store) return false;
    const ok = await Promise.race([
      store.get('SELECT 1').then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref()),
    ]);
    if (!ok) return false;
    for (const m of this.started) {
      if (m.healthy && !(await m.healthy())) {
        this.log.warn({ module: m.name }, 'module unhealthy: watchdog not fed');
        return false;
      }
    }
    return true;
  }

  // ---- telemetry and diagnostics -------------------------------------------------------

  private scheduleTelemetry(intervalS: number): void {
    if (intervalS === this.telemetryEveryS && this.telemetryTimer) return;
    this.telemetryEveryS = intervalS;
    clearTimeout(this.telemetryTimer);
    const tick = () => {
      void this.sendTelemetry();
      this.telemetryTimer = setTimeout(tick, this.telemetryEveryS * 1000);
    };
    this.telemetryTimer = setTimeout(tick, intervalS * 1000);
  }

  /** The telemetry message as it would be sent now. */
  async telemetryNow(): Promise<Telemetry> {
    let free = 0;
    try {
      const s = await statfs(this.config.box.dataDir);
      free = s.bavail * s.bsize;
    } catch {
      /* unknown: 0 */
    }
    let modem = UNKNOWN_MODEM;
    try {
      modem = await this.modemTelemetry();
    } catch (e) {
      this.log.debug({ err: e }, 'modem telemetry unavailable');
    }
    let voicemails = 0;
    try {
      voicemails = await this.voicemailsPending();
    } catch {
      /* unknown: 0 */
    }
    return {
      v: 1,
      at: new Date().toISOString(),
      bootId: this.bootId,
      uptimeS: Math.floor((Date.now() - this.startedAt) / 1000),
      softwareVersion: this.softwareVersion.slice(0, 40),
      modem,
      freeDiskBytes: Math.max(0, Math.floor(free)),
      outboxDepth: Math.max(0, this.outboxRef?.depth ?? 0),
      voicemailsPending: Math.max(0, Math.floor(voicemails)),
      ...(this.voicemailsUnheard ? { voicemailsUnheard: Math.max(0, Math.floor(this.voicemailsUnheard())) } : {}),
      configVersion: this.settingsStore.version,
    };
  }

  private async sendTelemetry(): Promise<void> {
    const link = this.uplink?.link;
    const topics = this.uplink?.topics;
    if (!link?.online || !topics) return;
    try {
      const t = await this.telemetryNow();
      await link.publish(topics.telemetry, JSON.stringify(t), { qos: 0 });
    } catch (e) {
      this.log.debug({ err: e }, 'telemetry not sent');
    }
  }

  async diagnostics(): Promise<Record<string, unknown>> {
    const t = await this.telemetryNow();
    return {
      state: this.stateValue,
      deviceId: this.deviceId ?? null,
      serial: this.config.box.serial,
      bootId: this.bootId,
      softwareVersion: this.softwareVersion,
      node: process.version,
      uptimeS: t.uptimeS,
      modem: t.modem,
      outboxDepth: t.outboxDepth,
      outboxSeq: this.outboxRef?.seq ?? null,
      freeDiskBytes: t.freeDiskBytes,
      configVersion: t.configVersion,
      modules: this.started.map((m) => m.name),
      rssBytes: process.memoryUsage().rss,
    };
  }
}
