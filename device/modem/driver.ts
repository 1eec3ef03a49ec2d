/**
 * The GSM modem driver: implements Modem (types.ts) over an AtChannel and a
 * ByteStream (transport.ts).
 *
 *   const modem = createModem(config.modem);      // or createModem(cfg, { openStream })
 *   modem.on('ring', ({ number, withheld }) => ...);
 *   modem.on('callEnded', ({ index, reason }) => ...);
 *   await modem.start();                           // resolves ready, or in a reported non-ready state
 *
 * The driver owns the AT channel, initialisation, liveness and the URC
 * dispatch. What it does with calls and SMS lives in parts it composes and
 * lends a ModemHost (host.ts): call-tracker.ts (RING/+CLIP/end lines as
 * triggers, AT+CLCC as the truth, reconciled list by list) and
 * sms-service.ts (send, +CMTI, the stored-message scan, long messages).
 * The Modem API (types.ts) stays on the driver and delegates to them.
 *
 * Health: a liveness probe (AT after `livenessMs` of silence while ready
 * and idle; no answer -> the port is stalled: closed and reopened); a soft
 * reset (ATZ + re-initialisation) only after `maxConsecutiveTimeouts`
 * timeouts in a row; a vanished port (the transport reports end of file,
 * EIO, a vanished node at once) -> state 'disconnected', every pending
 * command fails with ModemDisconnected, and the port is reopened with
 * backoff (reopenMinMs doubling to reopenMaxMs), or the moment its device
 * node reappears after having been absent (a replugged modem is not kept
 * waiting for the next backoff step).
 * SIM missing / PIN needed are states; registration and signal are
 * reported through 'network'. Nothing here throws out of an event handler.
 */
import { EventEmitter } from 'node:events';
import { background } from '../../shared/background.js';
import { backoffDelay } from '../../shared/backoff.js';
import { CallboxError, describeError, ErrorCode, isCallboxError } from '../../shared/errors.js';
import { getLogger, type Logger } from '../../shared/log.js';
import {
  formatCpinEntry,
  INIT_COMMANDS,
  parseCpin,
  parseIdentity,
  type SimStatus,
  simStateFromError,
} from './at/basic.js';
import { AtChannel, type CommandResult, Priority } from './at/channel.js';
import { type CcfcMode, formatCcfc, parseCcfcList } from './at/forwarding.js';
import { COPS_SET_LONG_FORMAT, parseCops, parseCsq, parseRegistration } from './at/network.js';
import { matchUrc, type Urc } from './at/urc.js';
import { formatCusd } from './at/ussd.js';
import { formatVts } from './at/vts.js';
import { CallTracker } from './call-tracker.js';
import type { ModemConfig } from './config.js';
import { type CommandRequest, guard, Lock, type ModemHost } from './host.js';
import { detectProfile, PROFILES, type VendorProfile } from './profiles.js';
import { SmsService } from './sms-service.js';
import { type ByteStream, type ByteStreamFactory, devicePresent, isAbsentError, openByteStream } from './transport.js';
import { type SpeakOptions, type SpeakResult, TtsService } from './tts-service.js';
import type {
  CallInfo,
  ForwardingReason,
  ForwardingStatus,
  Modem,
  ModemEventMap,
  ModemIdentity,
  ModemState,
  NetworkStatus,
  SmsReceived,
} from './types.js';

export interface ModemOptions {
  /** The byte-stream seam; default opens serialport or tcp://. */
  openStream?: ByteStreamFactory;
  /** Whether the port's device node exists (default: stat of the path; always true for tcp://). */
  devicePresent?: (path: string) => Promise<boolean>;
  logger?: Logger;
}

/**
 * While the port is gone, its path is looked at this often (one stat(2): no
 * measurable CPU), so a replugged modem is reopened within this of its node
 * appearing. Polling, not inotify: /dev/serial/by-id itself disappears with
 * the last USB serial device, and a watch on a missing directory sees nothing.
 */
const PRESENCE_POLL_MS = 100;
/** A SIM that is missing or wants a PIN is looked at again this often. */
const SIM_RECHECK_MS = 30_000;

export interface ModemStats {
  commands: number;
  timeouts: number;
  consecutiveTimeouts: number;
  urcs: number;
  discarded: number;
  discardedBytes: number;
  strayFinals: number;
  resyncs: number;
  hookErrors: number;
  resets: number;
  reopens: number;
}

export class GsmModem extends EventEmitter<ModemEventMap> implements Modem {
  state: ModemState = 'closed';
  identity: ModemIdentity = {
    manufacturer: null,
    model: null,
    firmware: null,
    imei: null,
    imsi: null,
    profile: 'generic',
  };
  network: NetworkStatus = {
    registration: 'unknown',
    lac: null,
    cellId: null,
    signalDbm: null,
    operator: null,
    operatorCode: null,
  };
  sim: SimStatus | null = null;

  private readonly log: Logger;
  private readonly atLog: Logger;
  private readonly channel: AtChannel;
  private readonly openStream: ByteStreamFactory;
  private readonly devicePresent: (path: string) => Promise<boolean>;
  private presenceTimer: ReturnType<typeof setInterval> | null = null;
  private probing = false;
  /** The port's node was found missing since the last successful open (its return is a replug). */
  private nodeSeenAbsent = false;
  private lastSimCheck = 0;
  private profile: VendorProfile = PROFILES.generic;
  private stream: ByteStream | null = null;
  private stopped = true;
  private initializing: Promise<void> | null = null;
  private reopenTimer: ReturnType<typeof setTimeout> | null = null;
  private reopenAttempt = 0;
  private healthTimer: ReturnType<typeof setInterval> | null = null;
  private netTimer: ReturnType<typeof setInterval> | null = null;
  private readonly ussdLock = new Lock();
  private readonly callTracker: CallTracker;
  private readonly smsService: SmsService;
  private readonly ttsService: TtsService;
  private ussdWaiter: ((r: { status: number; text: string | null }) => void) | null = null;
  private resets = 0;
  private reopens = 0;

  constructor(
    readonly config: ModemConfig,
    opts: ModemOptions = {},
  ) {
    super();
    this.log = opts.logger ?? getLogger('device:modem');
    this.atLog = opts.logger ?? getLogger('device:modem:at');
    this.openStream = opts.openStream ?? openByteStream;
    this.devicePresent = opts.devicePresent ?? devicePresent;
    const traceOn = this.atLog.isLevelEnabled('debug');
    this.channel = new AtChannel(
      {
        onUrc: (line) => this.onUrcLine(line),
        onDiscard: (text, reason) => {
          this.atLog.debug({ reason, text }, 'discarded');
          this.emit('discarded', text);
        },
        onTimeout: (command, consecutive) => this.onTimeout(command, consecutive),
        ...(traceOn ? { trace: (dir: 'tx' | 'rx', text: string) => this.atLog.debug({ dir, text }, dir) } : {}),
      },
      { quietMs: config.resyncQuietMs, timeoutMs: config.commandTimeoutMs },
      { log: this.atLog },
    );
    const host: ModemHost = {
      config,
      log: this.log,
      profile: () => this.profile,
      stopped: () => this.stopped,
      cmd: (spec, priority) => this.cmd(spec, priority),
      emit: (event, ...args) => {
        (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
      },
    };
    this.callTracker = new CallTracker(host);
    this.smsService = new SmsService(host);
    this.ttsService = new TtsService(host);
  }

  /** The latest AT+CLCC list (call-tracker.ts). */
  get calls(): CallInfo[] {
    return this.callTracker.calls;
  }

  get stats(): ModemStats {
    const c = this.channel.stats;
    return {
      ...c,
      discardedBytes: this.channel.framer.stats.discardedBytes,
      resets: this.resets,
      reopens: this.reopens,
    };
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    this.channel.detach(new CallboxError(ErrorCode.ShuttingDown, 'modem driver stopped'));
    const s = this.stream;
    this.stream = null;
    if (s) await s.close().catch(() => {});
    this.setState('closed');
  }

  private clearTimers(): void {
    this.smsService.stop();
    this.callTracker.stop();
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    if (this.healthTimer) clearInterval(this.healthTimer);
    if (this.netTimer) clearInterval(this.netTimer);
    this.reopenTimer = null;
    this.healthTimer = this.netTimer = null;
    this.stopPresenceWatch();
  }

  /** Why the port last failed, logged once (at warn) while the reopening retries fail the same way. */
  private lastFailure: string | undefined;

  private setState(state: ModemState, detail?: string): void {
    if (this.state === state) return;
    this.state = state;
    const msg = `modem ${state}${detail ? `: ${detail}` : ''}`;
    if (state === 'disconnected') {
      if (detail !== this.lastFailure) this.log.warn({ state, detail }, msg);
      else this.log.debug({ state, detail }, msg);
      this.lastFailure = detail;
    } else if (state === 'opening' && this.lastFailure !== undefined) {
      this.log.debug({ state, detail }, msg); // another try after a failure already logged
    } else {
      this.log.info({ state, detail }, msg);
      if (state !== 'opening') this.lastFailure = undefined;
    }
    this.emit('state', state, detail);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setState('opening');
    let stream: ByteStream;
    try {
      stream = await this.openStream({
        path: this.config.path,
        baudRate: this.config.baudRate,
        rtscts: this.config.rtscts,
      });
    } catch (e) {
      if (isAbsentError(e)) this.nodeSeenAbsent = true;
      this.setState('disconnected', `cannot open ${this.config.path}: ${describeError(e)}`);
      this.scheduleReopen();
      return;
    }
    if (this.stopped) {
      await stream.close().catch(() => {});
      return;
    }
    this.stream = stream;
    this.nodeSeenAbsent = false;
    stream.on('data', (d) => this.channel.feed(d));
    stream.once('close', (err) => this.onStreamClose(stream, err));
    this.channel.attach((data) => stream.write(data));
    this.smsService.forgetMode();
    this.ttsService.forget();
    await this.initialize();
  }

  private onStreamClose(stream: ByteStream, err: Error | null): void {
    if (this.stream !== stream) return;
    this.stream = null;
    if (this.stopped) return;
    const why = err ? describeError(err) : 'port closed';
    this.channel.detach(
      new CallboxError(ErrorCode.ModemDisconnected, `modem port ${this.config.path} is gone (${why})`),
    );
    this.stopHealth();
    this.callTracker.endAll('disconnected');
    this.setState('disconnected', why);
    // A node already gone (or going with the port) makes its return a replug, however soon it comes.
    if (isAbsentError(err)) this.nodeSeenAbsent = true;
    else if (!this.config.path.startsWith('tcp://')) {
      this.devicePresent(this.config.path)
        .then((present) => {
          if (!present) this.nodeSeenAbsent = true;
        })
        .catch(() => {});
    }
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this.stopped || this.reopenTimer) return;
    const delay = backoffDelay(this.reopenAttempt, { initial: this.config.reopenMinMs, max: this.config.reopenMaxMs });
    this.reopenAttempt = Math.min(this.reopenAttempt + 1, 30);
    this.reopenTimer = setTimeout(() => this.reopenNow(), delay);
    this.startPresenceWatch();
  }

  private reopenNow(): void {
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    this.stopPresenceWatch();
    if (this.stopped) return;
    this.reopens++;
    background(this.connect(), this.log, 'reopening the modem port');
  }

  /**
   * While waiting to reopen: once the node has been seen absent, its return
   * (a replug) reopens at once and starts the backoff afresh.
   */
  private startPresenceWatch(): void {
    if (this.presenceTimer || this.config.path.startsWith('tcp://')) return;
    let looking = false;
    this.presenceTimer = setInterval(() => {
      if (looking) return;
      looking = true;
      this.devicePresent(this.config.path)
        .then((present) => {
          if (!this.presenceTimer) return;
          if (!present) this.nodeSeenAbsent = true;
          else if (this.nodeSeenAbsent) {
            this.log.info({ path: this.config.path }, 'modem port is back');
            this.reopenAttempt = 0;
            this.reopenNow();
          }
        })
        .catch(() => {})
        .finally(() => {
          looking = false;
        });
    }, PRESENCE_POLL_MS);
  }

  private stopPresenceWatch(): void {
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.presenceTimer = null;
  }

  /** Give up on the open port (unresponsive after a reset): close it and reopen with backoff. */
  private async dropAndReopen(why: string): Promise<void> {
    const s = this.stream;
    this.stream = null;
    this.channel.detach(new CallboxError(ErrorCode.ModemDisconnected, `modem does not respond (${why})`));
    this.stopHealth();
    this.callTracker.endAll('modem_unresponsive');
    this.setState('disconnected', why);
    if (s) await s.close().catch(() => {});
    this.scheduleReopen();
  }

  private initialize(): Promise<void> {
    this.initializing ??= this.doInitialize().finally(() => {
      this.initializing = null;
    });
    return this.initializing;
  }

  private async doInitialize(): Promise<void> {
    this.setState('initializing');
    const t = this.config.commandTimeoutMs;
    // The modem may still be booting: a few plain ATs first.
    let alive = false;
    for (let i = 0; i < 3 && !alive; i++) {
      try {
        await this.cmd({ command: 'AT', timeoutMs: Math.min(t, 2000) }, Priority.CallControl);
        alive = true;
      } catch (e) {
        if (!isCallboxError(e, ErrorCode.ModemTimeout)) break;
      }
    }
    if (!alive) {
      if (this.stream) await this.dropAndReopen('no answer to AT');
      return;
    }
    try {
      for (const c of INIT_COMMANDS) await this.tryCmd(c);
      this.identity.manufacturer = await this.identityOf('AT+CGMI', '+CGMI:');
      this.identity.model = await this.identityOf('AT+CGMM', '+CGMM:');
      this.identity.firmware = await this.identityOf('AT+CGMR', '+CGMR:');
      this.identity.imei = await this.identityOf('AT+CGSN', '+CGSN:');
      const name =
        this.config.profile === 'auto'
          ? detectProfile(this.identity.manufacturer, this.identity.model)
          : this.config.profile;
      this.profile = PROFILES[name];
      this.identity.profile = name;
      for (const c of this.profile.init) await this.tryCmd(c);
      const sim = await this.checkSim();
      if (sim.state !== 'ready') return;
      this.identity.imsi = await this.identityOf('AT+CIMI', '+CIMI:');
      // 27.007 7.3: +COPS answers name the operator (long alphanumeric), not its MCC/MNC.
      await this.tryCmd(COPS_SET_LONG_FORMAT);
      await this.smsService.configure((c) => this.tryCmd(c));
      await this.refreshNetwork().catch((e) => this.log.warn({ err: describeError(e) }, 'network query failed'));
      await this.callTracker.listCalls().catch(() => {});
      this.reopenAttempt = 0;
      this.setState('ready');
      this.startHealth();
      // Messages that arrived while nobody listened (box off, port away, modem reset) are on the SIM.
      background(this.scanStoredSms(), this.log, 'listing the SMS stored on the SIM');
    } catch (e) {
      if (isCallboxError(e, ErrorCode.ModemDisconnected) || isCallboxError(e, ErrorCode.ShuttingDown)) return;
      this.log.warn({ err: describeError(e) }, 'modem initialisation failed');
      if (this.stream) await this.dropAndReopen(`initialisation failed: ${describeError(e)}`);
    }
  }

  private async checkSim(): Promise<SimStatus> {
    let status: SimStatus;
    try {
      const r = await this.cmd({ command: 'AT+CPIN?', prefixes: ['+CPIN:'] });
      status = r.lines[0] ? parseCpin(r.lines[0]) : { state: 'other', detail: 'no +CPIN line' };
    } catch (e) {
      const fromErr =
        isCallboxError(e, ErrorCode.ModemCommandFailed) && e.details?.final === 'cme'
          ? simStateFromError({
              kind: 'cme',
              line: '',
              code: (e.details.code as number | null) ?? null,
              text: (e.details.text as string | null) ?? null,
            })
          : null;
      if (!fromErr) throw e;
      status = fromErr;
    }
    if (status.state === 'pin' && this.config.pin && this.sim?.state !== 'pin') {
      // Enter the PIN once per start; a wrong PIN must not be retried into a PUK lock.
      this.sim = status;
      await this.cmd({ command: formatCpinEntry(this.config.pin) }).catch((e) =>
        this.log.error({ err: describeError(e) }, 'SIM PIN was refused'),
      );
      return this.checkSim();
    }
    this.sim = status;
    if (status.state === 'missing' || status.state === 'other') this.setState('sim_missing', status.detail);
    else if (status.state === 'pin' || status.state === 'puk') this.setState('sim_pin', status.detail);
    if (status.state !== 'ready') this.startHealth();
    return status;
  }

  private async softReset(): Promise<void> {
    if (this.state === 'resetting' || this.stopped) return;
    this.resets++;
    this.setState('resetting', `${this.config.maxConsecutiveTimeouts} commands in a row timed out`);
    this.stopHealth();
    this.channel.flush(new CallboxError(ErrorCode.ModemNotReady, 'modem is being reset after repeated timeouts'));
    this.channel.stats.consecutiveTimeouts = 0;
    try {
      await this.cmd({ command: 'ATZ' }, Priority.CallControl);
    } catch (e) {
      if (this.stream) await this.dropAndReopen(`reset failed: ${describeError(e)}`);
      return;
    }
    await this.initialize();
  }

  private onTimeout(command: string, consecutive: number): void {
    this.log.warn({ command, consecutive }, `${command} timed out (${consecutive} in a row)`);
    if (consecutive >= this.config.maxConsecutiveTimeouts && this.state !== 'initializing')
      background(this.softReset(), this.log, 'soft reset of the modem');
  }

  private startHealth(): void {
    this.stopHealth();
    const silenceMs = this.config.livenessMs;
    this.lastSimCheck = Date.now();
    this.healthTimer = setInterval(
      () => {
        if (this.state === 'sim_missing' || this.state === 'sim_pin') {
          if (Date.now() - this.lastSimCheck < SIM_RECHECK_MS) return;
          this.lastSimCheck = Date.now();
          background(this.initialize(), this.log, 'modem initialisation (SIM check)');
          return;
        }
        if (this.state !== 'ready' || this.probing || this.channel.busy) return;
        if (Date.now() - this.channel.lastActivity >= silenceMs)
          background(this.probe(), this.log, 'modem liveness probe');
      },
      Math.max(100, Math.floor(silenceMs / 2)),
    );
    this.netTimer = setInterval(() => {
      if (this.state === 'ready') this.refreshNetwork(Priority.Poll).catch(() => {});
    }, this.config.networkPollS * 1000);
  }

  /**
   * The liveness probe: a silent modem is asked AT. No answer within
   * livenessMs means the port is stalled or gone without the transport
   * noticing (a hung USB serial driver, a ser2net link whose peer vanished
   * without a FIN): the port is closed and reopened. Only a silent, idle
   * line is probed, so a busy modem that is merely slow never trips it.
   */
  private async probe(): Promise<void> {
    const stream = this.stream;
    this.probing = true;
    try {
      await this.cmd({ command: 'AT', timeoutMs: this.config.livenessMs }, Priority.Poll);
    } catch (e) {
      if (isCallboxError(e, ErrorCode.ModemTimeout) && this.stream === stream && stream && this.state === 'ready') {
        this.log.warn({ silentMs: Date.now() - this.channel.lastActivity }, 'modem does not answer the liveness probe');
        await this.dropAndReopen(`no answer to the liveness probe within ${this.config.livenessMs} ms`);
      }
    } finally {
      this.probing = false;
    }
  }

  private stopHealth(): void {
    if (this.healthTimer) clearInterval(this.healthTimer);
    if (this.netTimer) clearInterval(this.netTimer);
    this.healthTimer = this.netTimer = null;
  }

  // ---------------------------------------------------------------- command plumbing

  private cmd(spec: CommandRequest, priority = Priority.Normal): Promise<CommandResult> {
    return this.channel.run({ timeoutMs: this.config.commandTimeoutMs, priority, ...spec });
  }

  /** A set-up command whose failure (ERROR) is logged, not fatal; timeouts and disconnects still throw. */
  private async tryCmd(command: string): Promise<void> {
    try {
      await this.cmd({ command });
    } catch (e) {
      if (!isCallboxError(e, ErrorCode.ModemCommandFailed)) throw e;
      this.log.debug({ command, err: describeError(e) }, 'set-up command refused');
    }
  }

  private async identityOf(command: string, prefix: string): Promise<string | null> {
    try {
      const r = await this.cmd({ command, prefixes: [prefix], anyLine: true });
      return parseIdentity(r.lines, prefix);
    } catch (e) {
      if (!isCallboxError(e, ErrorCode.ModemCommandFailed)) throw e;
      return null;
    }
  }

  // ---------------------------------------------------------------- URCs

  private onUrcLine(line: string): boolean {
    const urc = matchUrc(line, { ussdPacked: this.profile.ussdPacked });
    if (!urc) return false;
    this.atLog.debug({ urc: urc.type, line }, 'urc');
    this.handleUrc(urc);
    return true;
  }

  private handleUrc(urc: Urc): void {
    switch (urc.type) {
      case 'ring':
      case 'clip':
      case 'call':
      case 'callEnd':
      case 'waiting':
        this.callTracker.handleUrc(urc);
        break;
      case 'sms':
        background(this.smsService.onNewSms(urc.index), this.log, 'reading a new SMS');
        break;
      case 'registration':
        if (urc.info.kind === 'CREG' || this.network.registration === 'unknown') {
          this.updateNetwork({
            registration: urc.info.registration,
            lac: urc.info.lac ?? this.network.lac,
            cellId: urc.info.cellId ?? this.network.cellId,
          });
        }
        break;
      case 'ussd':
        if (this.ussdWaiter) this.ussdWaiter({ status: urc.result.status, text: urc.result.text });
        this.emit('ussd', { status: urc.result.status, text: urc.result.text });
        break;
      case 'signal':
        this.updateNetwork({ signalDbm: urc.dbm });
        break;
      case 'boot':
        this.onBoot(urc.line);
        break;
      case 'tts':
        this.ttsService.onDone(urc.status);
        break;
      case 'sim':
        if (urc.status.state === 'missing' && this.state === 'ready') this.setState('sim_missing', urc.status.detail);
        break;
      case 'ignored':
        break;
    }
  }

  private onBoot(line: string): void {
    if (this.initializing || this.state === 'resetting') return;
    this.log.warn({ line }, 'modem restarted by itself; re-initialising');
    this.callTracker.endAll('modem_restarted');
    this.channel.flush(new CallboxError(ErrorCode.ModemNotReady, 'modem restarted'));
    this.stopHealth();
    this.smsService.forgetMode();
    this.ttsService.forget();
    background(this.initialize(), this.log, 'modem initialisation after it restarted');
  }

  private updateNetwork(patch: Partial<NetworkStatus>): void {
    const next = { ...this.network, ...patch };
    if (JSON.stringify(next) === JSON.stringify(this.network)) return;
    this.network = next;
    this.emit('network', next);
  }

  // ---------------------------------------------------------------- Modem API

  listCalls(): Promise<CallInfo[]> {
    return this.callTracker.listCalls();
  }

  answer(): Promise<void> {
    return this.callTracker.answer();
  }

  hangUp(): Promise<void> {
    return this.callTracker.hangUp();
  }

  deflect(number: string): Promise<void> {
    return this.callTracker.deflect(number);
  }

  hold(n: number): Promise<void> {
    return this.callTracker.hold(n);
  }

  setForwarding(reason: ForwardingReason, enable: boolean, number?: string, timeS?: number): Promise<void> {
    return guard('setForwarding', async () => {
      // Enabling with a number registers it (27.007 7.11 mode 3, which also activates);
      // disabling erases it (mode 4) so that nothing stale comes back on a later "enable".
      const mode: CcfcMode = enable ? (number ? 'register' : 'enable') : 'erase';
      const command = formatCcfc({
        reason,
        mode,
        ...(number && enable ? { number } : {}),
        ...(timeS !== undefined && enable ? { timeS } : {}),
      });
      await this.cmd({ command, timeoutMs: this.config.networkTimeoutMs }, Priority.Normal);
    });
  }

  queryForwarding(reason: ForwardingReason): Promise<ForwardingStatus[]> {
    return guard('queryForwarding', async () => {
      const command = formatCcfc({ reason, mode: 'query' });
      const r = await this.cmd({ command, prefixes: ['+CCFC:'], timeoutMs: this.config.networkTimeoutMs });
      return parseCcfcList(r.lines, reason);
    });
  }

  sendSms(to: string, text: string): Promise<number[]> {
    return this.smsService.sendSms(to, text);
  }

  readSms(index: number): Promise<SmsReceived> {
    return this.smsService.readSms(index);
  }

  deleteSms(index: number): Promise<void> {
    return this.smsService.deleteSms(index);
  }

  /** Whether the modem has its own text-to-speech (the vendor profile in use says so). */
  get canSpeak(): boolean {
    return this.ttsService.available;
  }

  /** Speak text into the call with the modem's text-to-speech (tts-service.ts). */
  speak(text: string, opts: SpeakOptions): Promise<SpeakResult> {
    return this.ttsService.speak(text, opts);
  }

  /** A tone to the caller (AT+VTS, at/vts.ts): the beep that marks the start of a voicemail recording. */
  tone(dtmf = '1', durationMs = 500): Promise<void> {
    return guard('tone', async () => {
      await this.cmd({ command: formatVts(dtmf, durationMs) }, Priority.CallControl);
    });
  }

  /** Every message stored on the SIM, reported like new ones (sms-service.ts). */
  scanStoredSms(): Promise<number> {
    return this.smsService.scanStoredSms();
  }

  ussd(code: string): Promise<{ status: number; text: string | null }> {
    return guard('ussd', () =>
      this.ussdLock.run(async () => {
        const command = formatCusd(code, this.profile.ussdPacked);
        let timer: ReturnType<typeof setTimeout> | null = null;
        // The waiter exists before the command goes out: some modems put +CUSD before the OK.
        const answer = new Promise<{ status: number; text: string | null }>((resolve, reject) => {
          this.ussdWaiter = resolve;
          timer = setTimeout(
            () =>
              reject(
                new CallboxError(
                  ErrorCode.ModemTimeout,
                  `no +CUSD answer to ${code} within ${this.config.networkTimeoutMs} ms`,
                  {
                    command,
                  },
                ),
              ),
            this.config.networkTimeoutMs,
          );
        });
        answer.catch(() => {}); // awaited below; never an unhandled rejection if the command fails first
        try {
          await this.cmd({ command, timeoutMs: this.config.networkTimeoutMs });
          return await answer;
        } finally {
          if (timer) clearTimeout(timer);
          this.ussdWaiter = null;
        }
      }),
    );
  }

  async refreshNetwork(priority = Priority.Normal): Promise<NetworkStatus> {
    const reg = await this.cmd({ command: 'AT+CREG?', prefixes: ['+CREG:'] }, priority);
    const info = reg.lines[0] ? parseRegistration(reg.lines[0], true) : null;
    const csq = await this.cmd({ command: 'AT+CSQ', prefixes: ['+CSQ:'] }, priority);
    const sig = csq.lines[0] ? parseCsq(csq.lines[0]) : null;
    let operator = this.network.operator;
    let operatorCode = this.network.operatorCode ?? null;
    try {
      const cops = await this.cmd(
        { command: 'AT+COPS?', prefixes: ['+COPS:'], timeoutMs: this.config.networkTimeoutMs },
        priority,
      );
      const op = cops.lines[0] ? parseCops(cops.lines[0]) : null;
      operator = op?.operator ?? null;
      operatorCode = op?.code ?? null;
    } catch (e) {
      if (!isCallboxError(e, ErrorCode.ModemCommandFailed)) throw e;
    }
    this.updateNetwork({
      registration: info?.registration ?? 'unknown',
      lac: info?.lac ?? null,
      cellId: info?.cellId ?? null,
      signalDbm: sig?.dbm ?? null,
      operator,
      operatorCode,
    });
    return this.network;
  }
}

/** The driver. Side-effect free until start(). */
export function createModem(config: ModemConfig, opts: ModemOptions = {}): GsmModem {
  return new GsmModem(config, opts);
}
