/**
 * A simulated call box for the demo and end-to-end tests: the modem
 * emulator on a socat pty, the virtual johnny-five board, and the real Box
 * with every feature module (device/features), its store in a data
 * directory. Everything below the emulator and the virtual board is the
 * product as it runs on a clinic's desk.
 *
 *   const sim = await SimulatedBox.start({ serial, claimSecret, brokerUrl, dataDir });
 *   sim.emu.incomingCall('+15551234567');   // the network rings the box
 *   await sim.liftHandset();                // hook switch: answer
 *   await sim.pressPanic(700);              // hold the panic button
 *   await sim.stop();
 */
import type { UplinkState } from '../box.js';
import { Box } from '../box.js';
import { type DeviceConfig, loadDeviceConfig } from '../config.js';
import { createFeatures, type FeatureOptions, type Features } from '../features/index.js';
import { loadPinmap, type Pinmap } from '../io/pinmap.js';
import type { ModemConfig } from '../modem/config.js';
import { type EmulatedVendor, ModemEmulator } from './modem/emulator.js';
import { VirtualIo } from './virtual-io/virtual-io.js';

export interface SimulatedBoxOptions {
  serial: string;
  claimSecret: string;
  brokerUrl: string;
  dataDir: string;
  vendor?: EmulatedVendor;
  /** Time between RINGs (a real network: about 3 s). */
  ringIntervalMs?: number;
  modem?: Partial<ModemConfig>;
  /** Extra device configuration values (merged over the simulation's). */
  config?: Record<string, Record<string, unknown>>;
  voicemail?: FeatureOptions['voicemail'];
  softwareVersion?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SimulatedBox {
  private constructor(
    readonly emu: ModemEmulator,
    readonly vio: VirtualIo,
    readonly box: Box,
    readonly features: Features,
    readonly config: DeviceConfig,
    readonly pinmap: Pinmap,
  ) {}

  /** Start the emulator, then the box (which claims, connects and applies its settings in the background). */
  static async start(o: SimulatedBoxOptions): Promise<SimulatedBox> {
    const emu = new ModemEmulator({ vendor: o.vendor ?? 'sim7600', ringIntervalMs: o.ringIntervalMs ?? 1000 });
    const { path } = await emu.start();
    try {
      const extra = o.config ?? {};
      const config = loadDeviceConfig(
        undefined,
        {
          ...extra,
          box: { serial: o.serial, claimSecret: o.claimSecret, dataDir: o.dataDir, ...extra.box },
          mqtt: {
            url: o.brokerUrl,
            keepaliveS: 10,
            connectTimeoutMs: 3000,
            reconnectMinMs: 200,
            reconnectMaxMs: 2000,
            requestTimeoutMs: 3000,
            claimRetryS: 1,
            ...extra.mqtt,
          },
          modem: {
            path,
            commandTimeoutMs: 2000,
            callControlTimeoutMs: 5000,
            networkTimeoutMs: 5000,
            smsTimeoutMs: 5000,
            ringEndMs: 3000,
            clipWaitMs: 100,
            callPollMs: 500,
            reopenMinMs: 100,
            reopenMaxMs: 1000,
            resyncQuietMs: 50,
            ...o.modem,
          },
          io: { board: 'virtual', smsRetryMinS: 1, ...extra.io },
          outbox: { flushDelayMs: 0, ...extra.outbox },
        },
        {},
      );
      const vio = new VirtualIo();
      const features = createFeatures(config, {
        io: { board: { virtualIo: vio }, hidBackend: null },
        ...(o.voicemail ? { voicemail: o.voicemail } : {}),
      });
      const box = new Box({ config, softwareVersion: o.softwareVersion ?? 'sim' });
      for (const m of features.modules) box.use(m);
      await box.start();
      return new SimulatedBox(emu, vio, box, features, config, loadPinmap(config.io.pinmapFile));
    } catch (e) {
      await emu.stop().catch(() => undefined);
      throw e;
    }
  }

  get state(): UplinkState {
    return this.box.state;
  }

  /** Wait until the box's uplink is in this state. */
  waitForState(state: UplinkState, timeoutMs = 15_000): Promise<void> {
    if (this.box.state === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.box.off('state', on);
        reject(new Error(`the box did not become ${state} within ${timeoutMs} ms (it is ${this.box.state})`));
      }, timeoutMs);
      const on = (s: UplinkState) => {
        if (s !== state) return;
        clearTimeout(t);
        this.box.off('state', on);
        resolve();
      };
      this.box.on('state', on);
    });
  }

  private pin(signal: 'button.panic' | 'button.hook'): { pin: number; activeLow: boolean } {
    const s = this.pinmap.signals[signal];
    return { pin: s.gpio, activeLow: (s as { activeLow?: boolean }).activeLow ?? true };
  }

  /** Lift the wired handset (hook switch closes): answers a ringing call. */
  async liftHandset(): Promise<void> {
    const { pin, activeLow } = this.pin('button.hook');
    this.vio.press(pin, true, activeLow);
    await sleep(this.config.io.debounceMs + 50);
  }

  /** Put the handset down: hangs up the call in progress. */
  async putDownHandset(): Promise<void> {
    const { pin, activeLow } = this.pin('button.hook');
    this.vio.press(pin, false, activeLow);
    await sleep(this.config.io.debounceMs + 50);
  }

  /** Hold the panic button for holdMs, then release it. */
  async pressPanic(holdMs: number): Promise<void> {
    const { pin, activeLow } = this.pin('button.panic');
    this.vio.press(pin, true, activeLow);
    await sleep(holdMs);
    this.vio.press(pin, false, activeLow);
  }

  async stop(): Promise<void> {
    try {
      await this.box.stop();
    } finally {
      await this.emu.stop();
    }
  }
}
