/**
 * The real johnny-five Led and Button components on the virtual IO board:
 * indicator outputs become pin writes at the pin map's pins, and a press on
 * the virtual panic input comes back as a panel event.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openBoard } from '../device/io/board.js';
import { IDLE_STATE, indicatorOutputs } from '../device/io/indicators.js';
import { Panel } from '../device/io/outputs.js';
import { loadPinmap } from '../device/io/pinmap.js';
import { VirtualIo } from '../device/sim/virtual-io/virtual-io.js';
import { waitFor } from '../shared/wait.js';

const cfg = { board: 'virtual' as const, firmataPath: '', firmataBaudRate: 57600, gpioChip: 'gpiochip0' };
const settings = { buzzerVolume: 100, quietHours: null, timezone: 'UTC' };
const pinmap = loadPinmap();
const gpio = (s: keyof typeof pinmap.signals) => pinmap.signals[s].gpio;
let panel: Panel | null = null;

afterEach(async () => {
  await panel?.close();
  panel = null;
});

describe('virtual IO board through johnny-five', () => {
  it('drives the LEDs of the pin map and reports the panic button', async () => {
    const io = new VirtualIo();
    const opened = await openBoard(cfg, { virtualIo: io });
    panel = new Panel(opened, pinmap, 10);
    expect(io.inOutputMode(gpio('led.ring'))).toBe(true);
    expect(io.inOutputMode(gpio('button.panic'))).toBe(false);

    panel.show(indicatorOutputs({ ...IDLE_STATE, voicemailsWaiting: 1, panic: 'acknowledged' }, settings, new Date()));
    expect(io.level(gpio('led.voicemail'))).toBeGreaterThan(0);
    expect(io.level(gpio('led.panic'))).toBeGreaterThan(0);
    expect(io.level(gpio('led.status'))).toBeGreaterThan(0);
    expect(io.level(gpio('led.ring'))).toBe(0);

    // ringing: the ring LED blinks (125/125 ms) and the buzzer follows the ring cadence
    panel.show(indicatorOutputs({ ...IDLE_STATE, call: 'ringing' }, settings, new Date()));
    const ringWrites = () => io.writes.filter((w) => w.pin === gpio('led.ring')).length;
    const before = ringWrites();
    await waitFor(() => ringWrites() - before >= 3, 'the ring LED toggled three times');
    expect(io.writes.some((w) => w.pin === gpio('buzzer') && w.value > 0)).toBe(true);

    const levels: boolean[] = [];
    panel.on('panic', (p) => levels.push(p));
    io.press(gpio('button.panic'), true);
    await waitFor(() => levels.includes(true));
    io.press(gpio('button.panic'), false);
    await waitFor(() => levels.includes(false));
    expect(levels).toEqual([true, false]);
  });
});
