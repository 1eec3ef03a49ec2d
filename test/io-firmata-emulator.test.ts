/**
 * The real Firmata path end to end: johnny-five -> firmata-io -> serialport
 * 13 -> a socat pty -> the Firmata board emulator. An LED toggles on the
 * emulated board and a button press on it is reported back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openBoard } from '../device/io/board.js';
import { IDLE_STATE, indicatorOutputs } from '../device/io/indicators.js';
import { Panel } from '../device/io/outputs.js';
import { loadPinmap } from '../device/io/pinmap.js';
import { FirmataEmulator } from '../device/sim/firmata/emulator.js';
import { PIN_MODES } from '../device/sim/firmata/protocol.js';
import { waitFor } from '../shared/wait.js';

const pinmap = loadPinmap();
const pin = (s: keyof typeof pinmap.signals) => pinmap.signals[s].firmata;
const settings = { buzzerVolume: 50, quietHours: null, timezone: 'UTC' };
let emulator: FirmataEmulator | null = null;
let panel: Panel | null = null;

afterEach(async () => {
  await panel?.close();
  await emulator?.stop();
  panel = null;
  emulator = null;
});

describe('johnny-five over Firmata over a pty', () => {
  it('toggles an LED and reports a button press', async () => {
    emulator = await FirmataEmulator.start();
    const opened = await openBoard(
      { board: 'firmata', firmataPath: emulator.path, firmataBaudRate: 57600, gpioChip: 'gpiochip0' },
      { reportVersionTimeoutMs: 100, readyTimeoutMs: 5000 },
    );
    expect(opened.numbering).toBe('firmata');
    panel = new Panel(opened, pinmap, 10);
    const outputs: [number, number][] = [];
    emulator.on('output', (p, v) => outputs.push([p, v]));

    // LEDs on PWM-capable pins are driven as PWM by johnny-five's Led, the others as digital outputs
    await waitFor(() => emulator!.mode(pin('led.voicemail')) === PIN_MODES.PWM);
    await waitFor(() => emulator!.mode(pin('led.panic')) === PIN_MODES.OUTPUT);
    await waitFor(() => emulator!.mode(pin('button.panic')) === PIN_MODES.INPUT);

    panel.show(indicatorOutputs({ ...IDLE_STATE, voicemailsWaiting: 1 }, settings, new Date()));
    await waitFor(() => emulator!.level(pin('led.voicemail')) === 255);
    panel.show(indicatorOutputs(IDLE_STATE, settings, new Date()));
    await waitFor(() => emulator!.level(pin('led.voicemail')) === 0);
    expect(outputs.filter(([p]) => p === pin('led.voicemail')).map(([, v]) => v)).toEqual([255, 0]);
    panel.show(indicatorOutputs({ ...IDLE_STATE, panic: 'acknowledged' }, settings, new Date()));
    await waitFor(() => emulator!.level(pin('led.panic')) === 1);

    const presses: boolean[] = [];
    panel.on('panic', (p) => presses.push(p));
    await new Promise((r) => setTimeout(r, 50));
    emulator.setInput(pin('button.panic'), 0); // closed to ground: pressed
    await waitFor(() => presses.includes(true));
    emulator.setInput(pin('button.panic'), null); // released: the pull-up wins
    await waitFor(() => presses.includes(false));
    expect(presses).toEqual([true, false]);
  });
});
