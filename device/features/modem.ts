/**
 * The modem as a box feature: the driver on config.modem, its health as
 * telemetry and 'modem.state' events, received SMS as 'sms.received'
 * events (sms-inbox.ts: recorded under a deterministic id, deleted from the
 * SIM only once committed), and the fleet's 'sms.send' command.
 *
 * 'modem.state' is recorded when the line's health changes (ready,
 * disconnected, SIM problems, registration lost or denied, no signal,
 * resetting); the driver's transient states (opening, initializing, closed)
 * are not events.
 */
import type { EventBody } from '../../shared/contract/events.js';
import { describeError } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { Box, BoxModule, ModemTelemetry } from '../box.js';
import type { ModemConfig } from '../modem/config.js';
import { createModem, type GsmModem, type ModemOptions } from '../modem/driver.js';
import type { ModemState, NetworkStatus } from '../modem/types.js';
import { type SmsClaimer, SmsInbox } from './sms-inbox.js';

const log = getLogger('device:features:modem');

export type ModemHealth = EventBody<'modem.state'>['state'];

/** The line's health as the fleet sees it, or null for a transient driver state. */
export function modemHealth(state: ModemState, network: Pick<NetworkStatus, 'registration'>): ModemHealth | null {
  switch (state) {
    case 'closed':
    case 'opening':
    case 'initializing':
      return null;
    case 'disconnected':
    case 'sim_missing':
    case 'sim_pin':
    case 'resetting':
      return state;
    case 'ready':
      break;
  }
  switch (network.registration) {
    case 'denied':
      return 'registration_denied';
    case 'not_registered':
    case 'searching':
      return 'not_registered';
    case 'emergency_only':
      return 'no_signal';
    default:
      return 'ready';
  }
}

/** The modem fields of telemetry. */
export function modemTelemetry(modem: GsmModem): ModemTelemetry {
  const n = modem.network;
  const id = modem.identity;
  return {
    state: modem.state,
    signalDbm: n.signalDbm === null ? null : Math.max(-140, Math.min(0, Math.round(n.signalDbm))),
    registration: n.registration,
    // A name when the modem knows one; else the MCC-MNC code ("310-260"), which reads as a code.
    operator: (n.operator ?? n.operatorCode ?? null)?.slice(0, 64) ?? null,
    model: id.model?.slice(0, 64) ?? null,
    firmware: id.firmware?.slice(0, 128) ?? null,
    simPresent: modem.state !== 'sim_missing' && modem.state !== 'disconnected' && modem.state !== 'closed',
  };
}

export class ModemFeature implements BoxModule {
  readonly name = 'modem';
  readonly modem: GsmModem;
  private lastHealth: ModemHealth | null = null;
  private box: Box | undefined;
  private readonly onHealth = () => this.checkHealth();
  private inbox: SmsInbox | undefined;
  private offSmsSend: (() => void) | undefined;
  /** Claims survey replies among received SMS (set before start; the survey feature). */
  smsClaimer: SmsClaimer | undefined;

  constructor(config: ModemConfig, opts: ModemOptions = {}) {
    this.modem = createModem(config, opts);
  }

  async start(box: Box): Promise<void> {
    this.box = box;
    box.provideModemTelemetry(() => modemTelemetry(this.modem));
    this.offSmsSend = box.handle('sms.send', async ({ to, text }) => {
      const references = await this.modem.sendSms(to, text);
      return { parts: Math.max(1, references.length), references };
    });
    this.modem.on('state', this.onHealth);
    this.modem.on('network', this.onHealth);
    // Listening before the modem starts: the messages stored on the SIM are reported once it is ready.
    this.inbox = new SmsInbox(this.modem, box.events, this.modem.config.deleteSmsAfterRead, box.config.box.serial);
    this.inbox.claimer = this.smsClaimer;
    this.inbox.start();
    // Resolves once ready or in a reported non-ready state (a missing port is 'disconnected' and retried).
    // Should it fail anyway, the box still starts: the panel, the panic flow and the uplink do not need the modem.
    try {
      await this.modem.start();
    } catch (e) {
      log.error({ err: describeError(e) }, 'modem failed to start; the box runs without the phone line for now');
    }
  }

  async stop(): Promise<void> {
    this.offSmsSend?.();
    this.offSmsSend = undefined;
    this.modem.off('state', this.onHealth);
    this.modem.off('network', this.onHealth);
    this.inbox?.stop();
    await this.modem.stop();
  }

  private checkHealth(): void {
    const health = modemHealth(this.modem.state, this.modem.network);
    if (!health || health === this.lastHealth || !this.box) return;
    this.lastHealth = health;
    const body: EventBody<'modem.state'> = { state: health };
    if (health !== 'ready') body.detail = `modem ${this.modem.state}, registration ${this.modem.network.registration}`;
    this.box.events
      .record('modem.state', body)
      .catch((e) => log.error({ err: describeError(e), state: health }, 'modem.state event not recorded'));
  }
}
