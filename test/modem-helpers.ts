/** Shared set-up for end-to-end modem tests: the emulator on a socat pty, the real driver on the other end. */
import { type ModemConfig, modemConfig } from '../device/modem/config.js';
import { createModem, type GsmModem, type ModemOptions } from '../device/modem/driver.js';
import type { ModemEventMap } from '../device/modem/types.js';
import { type EmulatedVendor, ModemEmulator } from '../device/sim/modem/emulator.js';

export interface Rig {
  emu: ModemEmulator;
  modem: GsmModem;
  stop(): Promise<void>;
}

export async function rig(
  vendor: EmulatedVendor = 'generic',
  cfg: Partial<ModemConfig> = {},
  opts: ModemOptions = {},
): Promise<Rig> {
  const emu = new ModemEmulator({ vendor, ringIntervalMs: 150 });
  const { path } = await emu.start();
  const modem = createModem(
    modemConfig({
      path,
      commandTimeoutMs: 1000,
      callControlTimeoutMs: 3000,
      ringEndMs: 1000,
      clipWaitMs: 100,
      callPollMs: 500,
      reopenMinMs: 100,
      reopenMaxMs: 1000,
      resyncQuietMs: 50,
      ...cfg,
    }),
    opts,
  );
  await modem.start();
  return {
    emu,
    modem,
    async stop() {
      await modem.stop();
      await emu.stop();
    },
  };
}

/** The next event of a kind that satisfies pred, or a clear failure after timeoutMs. */
export function nextEvent<K extends keyof ModemEventMap>(
  modem: GsmModem,
  event: K,
  pred: (...args: ModemEventMap[K]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<ModemEventMap[K]> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      modem.off(event, on as never);
      reject(new Error(`no '${String(event)}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (...args: ModemEventMap[K]) => {
      if (!pred(...args)) return;
      clearTimeout(t);
      modem.off(event, on as never);
      resolve(args);
    };
    modem.on(event, on as never);
  });
}

export async function waitState(modem: GsmModem, state: string, timeoutMs = 5000): Promise<void> {
  if (modem.state === state) return;
  await nextEvent(modem, 'state', (s) => s === state, timeoutMs);
}
