/**
 * device/io: the box's panel (LEDs, buzzer, panic button, hook switch on
 * a johnny-five board), USB HID panic buttons and handset, and the panic
 * flow. The composition root creates one IoService and wires it:
 *
 *   const io = new IoService({ config: cfg.io, sink: outbox, settings: () => remote, boxName: cfg.box.serial,
 *                              modem: () => modem });
 *   await io.start();
 *   // inputs
 *   link.on('online'/'offline', ...) -> io.setLink('online' | 'connecting' | 'offline'); io.setProvisioning(bool)
 *   io.watchModem(modem)                      // phone line state for the fault LED and the buzzer chirp
 *   calls -> io.setCall('ringing' | 'active' | 'idle', { waiting }), io.setMissedCalls(n), io.setVoicemailsWaiting(n)
 *   // outputs
 *   io.on('answer', (source) => calls.answer()); io.on('hangup', (source) => calls.hangUp())
 *   // commands (register with the RPC responder)
 *   'panic.ack' -> io.handlePanicAck(params); 'indicators.test' -> io.handleIndicatorsTest(params)
 *
 * Panic events go straight to the sink (the outbox); a panel that cannot
 * start (no board) is logged and the rest (HID buttons, SMS) still works.
 */
import { EventEmitter } from 'node:events';
import { DEVICE_COMMANDS } from '../../shared/contract/rpc.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { describeError } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { Handlers } from '../../shared/rpc.js';
import type { Static } from '../../shared/schema.js';
import { validate } from '../../shared/validate.js';
import type { EventSink } from '../events.js';
import type { Modem, ModemState, NetworkStatus } from '../modem/types.js';
import { type OpenBoardOptions, openBoard } from './board.js';
import type { IoConfigSchema } from './config.js';
import type { Handset } from './hid/handset.js';
import { HidManager } from './hid/manager.js';
import { NodeHidBackend } from './hid/node-hid-backend.js';
import type { HidBackend } from './hid/types.js';
import {
  type CallIndicatorState,
  IDLE_STATE,
  type IndicatorOutputs,
  type IndicatorState,
  indicatorOutputs,
  type LinkState,
  type PhoneLineState,
} from './indicators.js';
import { Panel } from './outputs.js';
import { attachPanicButton, PanicController } from './panic.js';
import { PanicButton, type PanicButtonTiming } from './panic-button.js';
import { LED_NAMES, loadPinmap, type Pinmap } from './pinmap.js';

const log = getLogger('device:io');

export type IoConfig = Static<typeof IoConfigSchema>;

export interface IoServiceOptions {
  config: IoConfig;
  sink: EventSink;
  settings: () => DeviceSettings;
  boxName: string;
  modem?: () => Pick<Modem, 'sendSms'> | null;
  /** Board options (the virtual board to drive, a fake GPIO backend, timeouts). */
  board?: OpenBoardOptions;
  /** HID backend; null disables HID. Default: node-hid. */
  hidBackend?: HidBackend | null;
  pinmap?: Pinmap;
}

export interface IoServiceEvents {
  /** The handset was lifted (or the hook switch closed) while a call rings: answer it. */
  answer: [source: 'handset' | 'hook'];
  /** The handset was put down during a call: end it. */
  hangup: [source: 'handset' | 'hook'];
  /** The indicator outputs changed (the demo and tests read them). */
  outputs: [outputs: IndicatorOutputs];
}

/** The modem's state reduced to what the indicators show. */
export function phoneLineOf(state: ModemState, network: Pick<NetworkStatus, 'registration'>): PhoneLineState {
  switch (state) {
    case 'closed':
    case 'opening':
    case 'initializing':
    case 'resetting':
      return 'starting';
    case 'sim_missing':
    case 'sim_pin':
      return 'sim_problem';
    case 'disconnected':
      return 'modem_missing';
    case 'ready':
      break;
  }
  switch (network.registration) {
    case 'home':
    case 'roaming':
    case 'sms_only_home':
    case 'sms_only_roaming':
    case 'csfb_not_preferred_home':
    case 'csfb_not_preferred_roaming':
      return 'ok';
    case 'emergency_only':
      return 'no_signal';
    default:
      return 'not_registered';
  }
}

export class IoService extends EventEmitter<IoServiceEvents> {
  readonly panic: PanicController;
  private state: IndicatorState = { ...IDLE_STATE, link: 'offline', phoneLine: 'starting' };
  private panel: Panel | null = null;
  private hid: HidManager | null = null;
  private readonly buttons = new Map<string, PanicButton>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private lampTimer: NodeJS.Timeout | null = null;
  private hookDebounce: NodeJS.Timeout | null = null;
  private lastOutputs = '';
  private unwatchModem: (() => void) | null = null;

  constructor(private readonly opts: IoServiceOptions) {
    super();
    const c = opts.config;
    this.panic = new PanicController({
      sink: opts.sink,
      modem: opts.modem ?? (() => null),
      settings: opts.settings,
      boxName: opts.boxName,
      smsRetryMinS: c.smsRetryMinS,
      smsRetryMaxS: Math.max(c.smsRetryMinS, c.smsRetryMaxS),
    });
    this.panic.on('indicator', (panic) => this.update({ panic }));
    this.panic.on('buttonFault', (buttonFault) => this.update({ buttonFault }));
  }

  private timing = (): PanicButtonTiming => ({
    debounceMs: this.opts.config.debounceMs,
    holdMs: this.opts.settings().panic.holdMs,
    doublePressMs: this.opts.config.doublePressMs,
    stuckMs: this.opts.config.stuckS * 1000,
  });

  /** A panic button by source name (created on first use and wired to the panic flow). */
  button(source: string): PanicButton {
    let b = this.buttons.get(source);
    if (!b) {
      b = new PanicButton(source, this.timing);
      attachPanicButton(b, this.panic);
      this.buttons.set(source, b);
    }
    return b;
  }

  /** False while the wired panel cannot see its buttons (the box's watchdog stops, and systemd restarts the box). */
  healthy(): boolean {
    return this.panel?.healthy() ?? true;
  }

  async start(): Promise<void> {
    const c = this.opts.config;
    try {
      const pinmap = this.opts.pinmap ?? loadPinmap(c.pinmapFile);
      const opened = await openBoard(c, this.opts.board ?? {});
      this.panel = new Panel(opened, pinmap);
      const gpioButton = this.button('gpio');
      this.panel.on('panic', (pressed) => gpioButton.input(pressed));
      this.panel.on('hook', (offHook) => this.hookInput(offHook));
    } catch (e) {
      log.error({ err: e }, `panel unavailable, continuing without LEDs and wired buttons: ${describeError(e)}`);
    }
    const backend = this.opts.hidBackend === undefined ? new NodeHidBackend() : this.opts.hidBackend;
    if (backend) {
      this.hid = new HidManager({
        backend,
        buttons: c.hidButtons,
        handset: c.handset,
        rescanMs: c.hidRescanMs,
      });
      this.hid.on('button', (name, pressed) => this.button(name).input(pressed));
      this.hid.on('handset', (h) => this.onHandset(h));
      this.hid.start();
    }
    this.refresh();
    this.refreshTimer = setInterval(() => this.refresh(), 30_000);
    this.refreshTimer.unref?.();
  }

  // ---- inputs -----------------------------------------------------------

  setLink(link: LinkState): void {
    this.panic.setLink(link === 'online');
    this.update({ link });
  }

  setProvisioning(provisioning: boolean): void {
    this.update({ provisioning });
  }

  setPhoneLine(phoneLine: PhoneLineState): void {
    this.update({ phoneLine });
  }

  /** Follow a modem's state and registration; returns the undo. */
  watchModem(modem: Pick<Modem, 'state' | 'network' | 'on' | 'off'>): () => void {
    this.unwatchModem?.();
    const apply = () => this.setPhoneLine(phoneLineOf(modem.state, modem.network));
    modem.on('state', apply);
    modem.on('network', apply);
    apply();
    this.unwatchModem = () => {
      modem.off('state', apply);
      modem.off('network', apply);
    };
    return this.unwatchModem;
  }

  setCall(call: CallIndicatorState, opts: { waiting?: boolean } = {}): void {
    this.update({ call, callWaiting: opts.waiting ?? false });
    const h = this.hid?.handset;
    if (h) {
      h.setLeds({ ring: call === 'ringing', offHook: call === 'active' });
      if (call === 'idle' && !h.isOffHook) h.syncHook(false);
    }
  }

  setMissedCalls(n: number): void {
    this.update({ missedCalls: Math.max(0, Math.floor(n)) });
  }

  setVoicemailsWaiting(n: number): void {
    this.update({ voicemailsWaiting: Math.max(0, Math.floor(n)) });
  }

  // ---- commands -----------------------------------------------------------

  /** The 'panic.ack' device command. */
  handlePanicAck(params: { panicId: string; by: string }): Promise<{ acknowledged: boolean }> {
    return this.panic.handleAck(params);
  }

  /** The 'indicators.test' device command: every LED and the buzzer for durationMs (default 2000). */
  async handleIndicatorsTest(params: { durationMs?: number }): Promise<{ tested: string[] }> {
    if (this.lampTimer) clearTimeout(this.lampTimer);
    this.update({ lampTest: true });
    this.lampTimer = setTimeout(() => {
      this.lampTimer = null;
      this.update({ lampTest: false });
    }, params.durationMs ?? 2000);
    return { tested: this.panel ? [...LED_NAMES, 'buzzer'] : [] };
  }

  /** Handlers for the box's RpcResponder on DEVICE_COMMANDS (params validated against the contract). */
  commandHandlers(): Handlers<typeof DEVICE_COMMANDS> {
    return {
      'panic.ack': (p) => this.handlePanicAck(validate(DEVICE_COMMANDS['panic.ack'].params, p, 'command panic.ack')),
      'indicators.test': (p) =>
        this.handleIndicatorsTest(validate(DEVICE_COMMANDS['indicators.test'].params, p, 'command indicators.test')),
    };
  }

  // ---- state ----------------------------------------------------------------

  get indicatorState(): IndicatorState {
    return { ...this.state };
  }

  get outputs(): IndicatorOutputs {
    return this.compute();
  }

  get handset(): Handset | null {
    return this.hid?.handset ?? null;
  }

  private compute(): IndicatorOutputs {
    const s = this.opts.settings();
    return indicatorOutputs(
      this.state,
      { buzzerVolume: s.indicators.buzzerVolume, quietHours: s.indicators.quietHours, timezone: s.clinic.timezone },
      new Date(),
    );
  }

  private update(patch: Partial<IndicatorState>): void {
    this.state = { ...this.state, ...patch };
    this.refresh();
  }

  private refresh(): void {
    const out = this.compute();
    const key = JSON.stringify(out);
    if (key === this.lastOutputs) return;
    this.lastOutputs = key;
    this.panel?.show(out);
    this.emit('outputs', out);
  }

  private hookInput(offHook: boolean): void {
    if (this.hookDebounce) clearTimeout(this.hookDebounce);
    this.hookDebounce = setTimeout(() => {
      this.hookDebounce = null;
      this.onHook('hook', offHook);
    }, this.opts.config.debounceMs);
  }

  private onHandset(h: Handset | null): void {
    if (!h) return;
    h.on('hook', (offHook) => this.onHook('handset', offHook));
    h.setLeds({ ring: this.state.call === 'ringing', offHook: this.state.call === 'active' });
  }

  private onHook(source: 'handset' | 'hook', offHook: boolean): void {
    if (offHook && this.state.call === 'ringing') {
      log.info({ source }, 'handset lifted: answer');
      this.emit('answer', source);
    } else if (!offHook && this.state.call === 'active') {
      log.info({ source }, 'handset down: hang up');
      this.emit('hangup', source);
    }
  }

  async stop(): Promise<void> {
    for (const t of [this.refreshTimer, this.lampTimer, this.hookDebounce]) if (t) clearTimeout(t);
    this.refreshTimer = this.lampTimer = this.hookDebounce = null;
    this.unwatchModem?.();
    this.panic.stop();
    for (const b of this.buttons.values()) b.stop();
    this.buttons.clear();
    this.hid?.stop();
    await this.panel?.close();
    this.panel = null;
  }
}
