/**
 * The panel as a box feature: IoService on config.io (johnny-five board,
 * pin map, HID buttons and handset). Inputs: the uplink state (link LED,
 * provisioning), the modem's line state, the calls (ringing, in call,
 * waiting, missed), the unheard voicemails (the voicemail LED). Outputs: panic events through box.events and the SMS
 * fallback through the modem; the handset or hook switch answers and hangs
 * up calls. Commands 'panic.ack' and 'indicators.test'.
 */
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { Box, BoxModule, UplinkState } from '../box.js';
import type { CallsSnapshot } from '../calls/manager.js';
import type { OpenBoardOptions } from '../io/board.js';
import type { HidBackend } from '../io/hid/types.js';
import { IoService } from '../io/index.js';
import type { LinkState } from '../io/indicators.js';
import type { Pinmap } from '../io/pinmap.js';
import type { CallsFeature } from './calls.js';
import type { ModemFeature } from './modem.js';
import type { VoicemailFeature } from './voicemail.js';

const log = getLogger('device:features:io');

export interface IoFeatureOptions {
  /** Board options (the virtual board the demo and tests drive). */
  board?: OpenBoardOptions;
  /** HID backend; null disables HID; default node-hid. */
  hidBackend?: HidBackend | null;
  pinmap?: Pinmap;
}

/** The uplink state as the link LED shows it. */
export function linkOf(state: UplinkState): { link: LinkState; provisioning: boolean } {
  switch (state) {
    case 'online':
      return { link: 'online', provisioning: false };
    case 'starting':
    case 'connecting':
      return { link: 'connecting', provisioning: false };
    case 'unprovisioned':
    case 'revoked':
      return { link: 'offline', provisioning: true };
    default:
      return { link: 'offline', provisioning: false };
  }
}

export class IoFeature implements BoxModule {
  readonly name = 'io';
  private serviceRef: IoService | undefined;
  private box: Box | undefined;
  /** What start() registered on the box and the calls feature, removed by stop(). */
  private readonly detach: (() => void)[] = [];
  private readonly onState = (s: UplinkState) => {
    const { link, provisioning } = linkOf(s);
    this.serviceRef?.setProvisioning(provisioning);
    this.serviceRef?.setLink(link);
  };

  constructor(
    private readonly modem: ModemFeature,
    private readonly calls: CallsFeature,
    private readonly opts: IoFeatureOptions = {},
    /** Unheard voicemails light the voicemail LED (absent: it stays off). */
    private readonly voicemail?: VoicemailFeature,
  ) {}

  get service(): IoService {
    if (!this.serviceRef) throw new CallboxError(ErrorCode.Internal, 'io feature used before start');
    return this.serviceRef;
  }

  async start(box: Box): Promise<void> {
    this.box = box;
    let current: DeviceSettings = box.settings;
    const io = new IoService({
      config: box.config.io,
      sink: box.events,
      settings: () => current,
      boxName: box.config.box.serial,
      modem: () => this.modem.modem,
      ...(this.opts.board ? { board: this.opts.board } : {}),
      ...(this.opts.hidBackend !== undefined ? { hidBackend: this.opts.hidBackend } : {}),
      ...(this.opts.pinmap ? { pinmap: this.opts.pinmap } : {}),
    });
    this.serviceRef = io;
    const offSettings = await box.onSettings({
      name: 'io',
      apply: (next) => {
        current = next;
      },
    });
    this.detach.push(
      offSettings,
      box.handle('panic.ack', (p) => io.handlePanicAck(p)),
      box.handle('indicators.test', (p) => io.handleIndicatorsTest(p)),
    );
    await io.start();
    io.watchModem(this.modem.modem);
    box.on('state', this.onState);
    this.onState(box.state);
    this.detach.push(this.calls.onChange((s) => this.showCalls(s)));
    if (this.voicemail) this.detach.push(this.voicemail.onUnheard((n) => io.setVoicemailsWaiting(n)));
    io.on('answer', (source) => {
      this.calls.manager
        .answer('handset')
        .then((callId) => log.info({ source, callId }, callId ? 'answered at the desk' : 'nothing to answer'))
        .catch((e) => log.warn({ err: describeError(e) }, 'answer from the desk failed'));
    });
    io.on('hangup', (source) => {
      this.calls.manager
        .hangUp()
        .then(() => log.info({ source }, 'hung up at the desk'))
        .catch((e) => log.warn({ err: describeError(e) }, 'hang-up from the desk failed'));
    });
  }

  /** Asked by the box's watchdog: a panic input without a live watcher is a dead panic button. */
  healthy(): boolean {
    return this.serviceRef?.healthy() ?? true;
  }

  async stop(): Promise<void> {
    this.box?.off('state', this.onState);
    for (const off of this.detach.splice(0)) off();
    await this.serviceRef?.stop();
  }

  private showCalls(s: CallsSnapshot): void {
    const io = this.serviceRef;
    if (!io) return;
    io.setCall(s.inCall ? 'active' : s.ringing ? 'ringing' : 'idle', { waiting: s.waiting });
    io.setMissedCalls(s.missedCount);
  }
}
