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
 *   box.on('state', (state, detail) => ...)               uplink state for the indicators
 *   box.store                                             the SQLite store (own tables via migrations)
 *
 * Uplink states: starting -> unprovisioned (claiming; waiting for an
 * operator) -> connecting -> online <-> offline; revoked (credentials
 * refused: set aside, back to unprovisioned); stopped.
 */
import { EventEmitter } from 'node:events';
import { mkdir, readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { background } from '../shared/background.js';
import type { ConfigReported, Telemetry } from '../shared/contract/messages.js';
import {
  DEVICE_COMMANDS,
  type DeviceCommand,
  FLEET_REQUESTS,
  type ParamsOf,
  type ResultOf,
} from '../shared/contract/rpc.js';
import type { DeviceSettings } from '../shared/contract/settings.js';
import { type DeviceTopics, deviceTopics } from '../shared/contract/topics.js';
import { CallboxError, describeError, ErrorCode } from '../shared/errors.js';
import { newBootId } from '../shared/ids.js';
import { getLogger, type Logger } from '../shared/log.js';
import { type Handlers, type RequestContext, RpcRequester, RpcResponder } from '../shared/rpc.js';
import { SystemdNotifier } from '../shared/systemd-notify.js';
import { SOFTWARE_VERSION } from '../shared/version.js';
import type { DeviceConfig } from './config.js';
import type { EventSink } from './events.js';
import { type Migration, Store } from './store/store.js';
import { type Credentials, CredentialsFile } from './uplink/credentials.js';
import { backoffDelay, Link } from './uplink/link.js';
import { UPLINK_MIGRATIONS } from './uplink/migrations.js';
import { Outbox } from './uplink/outbox.js';
import { claimUntilApproved } from './uplink/provisioning.js';
import { retryWithBackoff } from './uplink/retry.js';
import { Settings, type SettingsListener } from './uplink/settings.js';
import { wireOutbox } from './uplink/wire.js';

export type UplinkState = 'starting' | 'unprovisioned' | 'connecting' | 'online' | 'offline' | 'revoked' | 'stopped';
export type ModemTelemetry = Telemetry['modem'];
export type CommandHandler<M extends DeviceCommand> = (
  params: ParamsOf<typeof DEVICE_COMMANDS, M>,
  ctx: RequestContext,
) => Promise<ResultOf<typeof DEVICE_COMMANDS, M>> | ResultOf<typeof DEVICE_COMMANDS, M>;

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

/** Answers to commands are kept this long (a redelivered request id is answered, not executed again). */
const COMMAND_RESULT_TTL_MS = 7 * 24 * 3600 * 1000;

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
  private storeRef: Store | undefined;
  private outboxRef: Outbox | undefined;
  private link: Link | undefined;
  private topics: DeviceTopics | undefined;
  private stateValue: UplinkState = 'starting';
  private softwareVersion: string;
  private modemTelemetry: () => ModemTelemetry | Promise<ModemTelemetry> = () => UNKNOWN_MODEM;
  private voicemailsPending: () => number | Promise<number> = () => 0;
  private telemetryTimer: NodeJS.Timeout | undefined;
  private telemetryEveryS = 0;
  private lastReport: ConfigReported | undefined;
  private readonly abort = new AbortController();
  private uplinkDone: Promise<void> = Promise.resolve();
  private wakeSession: (() => void) | undefined;
  private stopping = false;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: BoxOptions) {
    super();
    this.config = opts.config;
    this.log = opts.log ?? getLogger('device:box');
    this.notifier = opts.notifier ?? new SystemdNotifier({ log: getLogger('device:systemd') });
    this.credentials = new CredentialsFile(opts.config.box.dataDir);
    this.settingsStore = new Settings(opts.config.box.dataDir);
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
    return this.link && this.topics ? { client: this.link.client, topics: this.topics } : undefined;
  }

  get deviceId(): string | undefined {
    return this.topics ? this.topics.root.split('/')[2] : undefined;
  }

  /** Answer a fleet command; returns the removal. Answers are kept by request id (a repeat is not run again). */
  handle<M extends DeviceCommand>(method: M, handler: CommandHandler<M>): () => void {
    const table = this.handlers as Record<string, unknown>;
    table[method] = this.idempotent(method, handler as unknown as CommandHandler<DeviceCommand>);
    return () => {
      delete table[method];
    };
  }

  /** Listen to the settings: called now with those in force, then on every change (check may veto). */
  onSettings(listener: SettingsListener): Promise<() => void> {
    return this.settingsStore.addListener(listener);
  }

  provideModemTelemetry(fn: () => ModemTelemetry | Promise<ModemTelemetry>): void {
    this.modemTelemetry = fn;
  }

  provideVoicemailsPending(fn: () => number | Promise<number>): void {
    this.voicemailsPending = fn;
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
    await this.storeRef.run('DELETE FROM command_results WHERE at < ?', [Date.now() - COMMAND_RESULT_TTL_MS]);
    await this.settingsStore.load();
    await this.settingsStore.addListener({
      name: 'telemetry',
      apply: (next) => this.scheduleTelemetry(next.telemetry.intervalS),
    });
    for (const m of this.modules) {
      await m.start(this);
      this.started.push(m);
      this.log.info({ module: m.name }, 'module started');
    }
    this.uplinkDone = this.runUplink().catch((e) => {
      if (!this.stopping) this.log.error({ err: e }, 'uplink stopped');
    });
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
    this.abort.abort();
    for (const m of this.started.splice(0).reverse()) {
      try {
        await m.stop?.();
      } catch (e) {
        this.log.error({ err: e, module: m.name }, 'module failed to stop');
      }
    }
    await this.outboxRef?.close();
    this.wakeSession?.();
    await this.uplinkDone;
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

  // ---- uplink ------------------------------------------------------------------------

  private async caPem(): Promise<string | null> {
    const f = this.config.mqtt.caFile;
    if (!f) return null;
    try {
      return await readFile(f, 'utf8');
    } catch (e) {
      throw new CallboxError(ErrorCode.ConfigInvalid, `mqtt.caFile ${f} cannot be read: ${describeError(e)}`);
    }
  }

  private async runUplink(): Promise<void> {
    const m = this.config.mqtt;
    let refusals = 0;
    while (!this.abort.signal.aborted) {
      let creds = await this.credentials.load((reason, movedTo) =>
        this.log.error({ reason, movedTo }, 'stored credentials are damaged: set aside, claiming again'),
      );
      if (!creds) {
        this.setState('unprovisioned', 'waiting for provisioning');
        this.log.warn({ serial: this.config.box.serial }, 'no credentials: waiting for provisioning (claim)');
        creds = await claimUntilApproved({
          url: m.url,
          caPem: await this.caPem(),
          serial: this.config.box.serial,
          claimSecret: this.config.box.claimSecret,
          model: this.config.box.model,
          softwareVersion: this.softwareVersion,
          bootId: this.bootId,
          keepaliveS: m.keepaliveS,
          connectTimeoutMs: m.connectTimeoutMs,
          reconnectMinMs: m.reconnectMinMs,
          reconnectMaxMs: m.reconnectMaxMs,
          requestTimeoutMs: m.requestTimeoutMs,
          retryMs: m.claimRetryS * 1000,
          signal: this.abort.signal,
          onState: (s, detail) => this.setState('unprovisioned', detail ?? s),
        });
        await this.credentials.save(creds);
        refusals = 0;
      }
      const outcome = await this.deviceSession(creds);
      if (outcome === 'stopped') return;
      if (outcome === 'connected-then-refused') refusals = 1;
      else refusals++;
      if (refusals >= (this.opts.revokeAfterRefusals ?? 3)) {
        const movedTo = await this.credentials.revoke();
        this.log.error(
          { deviceId: creds.deviceId, movedTo },
          'the fleet refused this box’s credentials: treating them as revoked, back to waiting for provisioning',
        );
        this.setState('revoked', 'credentials revoked: waiting for provisioning');
        refusals = 0;
      } else {
        await new Promise<void>((r) => {
          const t = setTimeout(r, backoffDelay(refusals, m.reconnectMinMs, m.reconnectMaxMs, this.opts.random));
          this.abort.signal.addEventListener('abort', () => {
            clearTimeout(t);
            r();
          });
        });
      }
    }
  }

  /** One run of the device link; ends when stopped or when the broker refuses the credentials. */
  private async deviceSession(creds: Credentials): Promise<'stopped' | 'refused' | 'connected-then-refused'> {
    const m = this.config.mqtt;
    const topics = deviceTopics(creds.deviceId);
    this.topics = topics;
    const link = new Link({
      url: creds.brokerUrl ?? m.url,
      caPem: creds.caPem ?? (await this.caPem()),
      identity: { kind: 'device', id: creds.deviceId, username: creds.username, password: creds.password },
      keepaliveS: m.keepaliveS,
      connectTimeoutMs: m.connectTimeoutMs,
      reconnectMinMs: m.reconnectMinMs,
      reconnectMaxMs: m.reconnectMaxMs,
      bootId: this.bootId,
      softwareVersion: this.softwareVersion,
      ...(this.opts.random ? { random: this.opts.random } : {}),
    });
    this.link = link;
    const unwire = wireOutbox(link, this.outbox, creds.deviceId);
    let everOnline = false;
    let refused = false;
    link.on('state', (s, detail) => {
      // "online" is set once the subscriptions are in place (commands can reach the box).
      if (s === 'offline' || s === 'connecting') this.setState(s, detail);
    });
    const client = () => link.client;
    link.start();
    const responder = new RpcResponder(client(), DEVICE_COMMANDS, this.handlers, {
      requestFilter: topics.cmdReq,
      log: this.log,
      side: 'this box',
      // A command that ran and is redelivered after its expiry gets its kept answer, not "expired".
      answeredBefore: async (id) => !!(await this.store.get('SELECT 1 AS ran FROM command_results WHERE id = ?', [id])),
    });
    const requester = new RpcRequester(client(), FLEET_REQUESTS, {
      responseFilter: topics.fleetRes,
      defaultTimeoutMs: m.requestTimeoutMs,
      log: this.log,
    });
    client().on('message', (topic, payload) => {
      // A failure leaves the box on its old settings; the fleet's config_drift alert sees that.
      if (topic === topics.configDesired && payload.length > 0)
        background(this.offerConfig(payload, link), this.log, 'applying the desired configuration');
    });
    // Listeners and subscriptions are in place before the connection is: with a persistent
    // session the broker delivers what it queued (commands, configuration) right after CONNACK.
    // mqtt.js sends the subscriptions once connected; later reconnects keep the session's.
    const subscribed = Promise.all([
      client().subscribeAsync(topics.configDesired, { qos: 1 }),
      responder.start(),
      requester.start(),
    ]);
    subscribed.catch((e) => this.log.warn({ err: e }, 'subscriptions failed'));
    let onlineRun = 0;
    const onOnline = async () => {
      everOnline = true;
      const run = ++onlineRun;
      try {
        // Subscribed first, then fetch the whole desired configuration: a change made while
        // the box was away arrives one way or the other, never neither.
        await subscribed;
      } catch (e) {
        this.log.warn({ err: e }, 'subscriptions after connect failed');
      }
      if (link.online) this.setState('online');
      if (this.lastReport) await this.publishReport(this.lastReport, link);
      // Asked again with backoff until the fleet answers (a fleet restarting loses the request),
      // for as long as this connection lasts; the next connect starts again.
      await retryWithBackoff(
        async () => {
          const desired = await requester.request(topics.fleetReq, 'config.get', {});
          if (desired) await this.offerConfig(JSON.stringify(desired), link);
        },
        {
          minMs: m.reconnectMinMs,
          maxMs: m.reconnectMaxMs,
          ...(this.opts.random ? { random: this.opts.random } : {}),
          active: () => run === onlineRun && link.online && this.link === link,
          signal: this.abort.signal,
          onFailure: (err, attempt, waitMs) =>
            this.log.warn({ err, attempt: attempt + 1, retryInMs: waitMs }, 'configuration fetch failed; asking again'),
        },
      );
      await this.sendTelemetry();
    };
    link.on('online', () => {
      onOnline().catch((e) => this.log.error({ err: e }, 'connect handling failed'));
    });
    const result = await new Promise<'stopped' | 'refused'>((resolve) => {
      this.wakeSession = () => resolve('stopped');
      if (this.abort.signal.aborted) resolve('stopped');
      link.on('unauthorized', () => {
        refused = true;
        resolve('refused');
      });
    });
    this.wakeSession = undefined;
    requester.stop();
    unwire();
    // The responder is not stopped (that would unsubscribe): the persistent session keeps the
    // subscriptions, so the broker queues commands and configuration while the box restarts.
    if (result === 'stopped') await link.stop('shutdown');
    else await link.kill();
    this.link = undefined;
    if (refused) {
      this.log.warn({ deviceId: creds.deviceId }, 'the broker refused the device credentials');
      return everOnline ? 'connected-then-refused' : 'refused';
    }
    return 'stopped';
  }

  private async offerConfig(payload: Buffer | string, link: Link): Promise<void> {
    const report = await this.settingsStore.offer(payload);
    if (!report) return;
    this.lastReport = report;
    this.emit('reported', report);
    if (report.state === 'applied') this.emit('settings', this.settingsStore.current);
    await this.publishReport(report, link);
  }

  private async publishReport(report: ConfigReported, link: Link): Promise<void> {
    if (!this.topics || !link.online) return;
    await link
      .publish(this.topics.configReported, JSON.stringify(report), { qos: 1, retain: true })
      .catch((e) => this.log.warn({ err: e }, 'configuration report not published; sent again at the next connect'));
  }

  // ---- commands ----------------------------------------------------------------------

  private idempotent(method: string, handler: CommandHandler<DeviceCommand>): CommandHandler<DeviceCommand> {
    return async (params, ctx) => {
      const prior = await this.store.get<{ ok: number; response: string }>(
        'SELECT ok, response FROM command_results WHERE id = ?',
        [ctx.id],
      );
      if (prior) {
        const r = JSON.parse(prior.response) as { code?: number; message?: string; details?: Record<string, unknown> };
        if (prior.ok) return r as never;
        throw new CallboxError(r.code as ErrorCode, r.message ?? 'failed', r.details);
      }
      let ok = true;
      let response: unknown;
      try {
        response = await handler(params as never, ctx);
      } catch (e) {
        ok = false;
        response =
          e instanceof CallboxError
            ? e.toJSON()
            : { code: ErrorCode.Internal, name: 'Internal', message: describeError(e) };
        throw e;
      } finally {
        await this.store
          .run('INSERT OR REPLACE INTO command_results (id, method, ok, response, at) VALUES (?, ?, ?, ?, ?)', [
            ctx.id,
            method,
            ok ? 1 : 0,
            JSON.stringify(response ?? null),
            Date.now(),
          ])
          .catch((err) => this.log.warn({ err }, 'command answer not kept'));
      }
      return response as never;
    };
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
      configVersion: this.settingsStore.version,
    };
  }

  private async sendTelemetry(): Promise<void> {
    const link = this.link;
    if (!link?.online || !this.topics) return;
    try {
      const t = await this.telemetryNow();
      await link.publish(this.topics.telemetry, JSON.stringify(t), { qos: 0 });
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
