import { afterEach, describe, expect, it, vi } from 'vitest';
import { openBoard } from './board.js';
import { IDLE_STATE, indicatorOutputs } from './indicators.js';
import { type Bias, type GpioBackend, gpiodV1, gpiodV2, parseGpiodVersion } from './linux-gpio.js';
import { Panel } from './outputs.js';
import { loadPinmap } from './pinmap.js';

/** A stand-in for the GPIO character device: records line requests and levels. */
class FakeChip implements GpioBackend {
  readonly outputs = new Map<number, number[]>();
  readonly inputs = new Map<number, { bias: Bias; onValue: (v: 0 | 1) => void; closed: boolean }>();
  output(_chip: string, line: number, initial: 0 | 1) {
    this.outputs.set(line, [initial]);
    return { set: (v: 0 | 1) => this.outputs.get(line)!.push(v), close: () => undefined };
  }
  input(_chip: string, line: number, bias: Bias, onValue: (v: 0 | 1) => void) {
    const rec = { bias, onValue, closed: false };
    this.inputs.set(line, rec);
    queueMicrotask(() => onValue(bias === 'pull-up' ? 1 : 0));
    return {
      close: () => {
        rec.closed = true;
      },
    };
  }
  level(line: number): number | undefined {
    return this.outputs.get(line)?.at(-1);
  }
}

const pinmap = loadPinmap();
const gpio = (s: keyof typeof pinmap.signals) => pinmap.signals[s].gpio;
const settings = { buzzerVolume: 60, quietHours: null, timezone: 'UTC' };
let panel: Panel | null = null;
afterEach(async () => {
  await panel?.close();
  panel = null;
});

describe('linux-gpio IO plugin (johnny-five over a GPIO backend)', () => {
  it('drives LEDs as output lines and reads buttons with the pull-up bias', async () => {
    const chip = new FakeChip();
    const opened = await openBoard(
      { board: 'linux-gpio', firmataPath: '', firmataBaudRate: 57600, gpioChip: 'gpiochip0' },
      { gpioBackend: chip },
    );
    panel = new Panel(opened, pinmap, 10);
    expect(chip.outputs.has(gpio('led.ring'))).toBe(true);
    expect(chip.inputs.get(gpio('button.panic'))?.bias).toBe('pull-up');

    panel.show(indicatorOutputs({ ...IDLE_STATE, voicemailsWaiting: 1, call: 'ringing' }, settings, new Date()));
    expect(chip.level(gpio('led.voicemail'))).toBe(1);
    expect(chip.level(gpio('buzzer'))).toBe(1); // no PWM on this plugin: volume is on/off
    panel.show(indicatorOutputs(IDLE_STATE, settings, new Date()));
    expect(chip.level(gpio('led.voicemail'))).toBe(0);

    const presses: boolean[] = [];
    panel.on('panic', (p) => presses.push(p));
    // johnny-five debounces button edges (7 ms): fake time moves past each one
    vi.useFakeTimers();
    try {
      await vi.advanceTimersByTimeAsync(20); // the first reading, at rest
      chip.inputs.get(gpio('button.panic'))!.onValue(0);
      await vi.advanceTimersByTimeAsync(30);
      chip.inputs.get(gpio('button.panic'))!.onValue(1);
      await vi.advanceTimersByTimeAsync(30);
    } finally {
      vi.useRealTimers();
    }
    expect(presses).toEqual([true, false]);
  });

  it('builds libgpiod v2 command lines and parses gpiomon events', () => {
    expect(gpiodV2.set('gpiochip0', 17, 0)).toEqual(['gpioset', '--chip', 'gpiochip0', '--interactive', '17=0']);
    expect(gpiodV2.setLine?.(17, 1)).toBe('set 17=1\n');
    expect(gpiodV2.mon('gpiochip4', 5, 'pull-up')).toContain('--bias');
    expect(gpiodV2.parseEvent('5 2')).toEqual({ line: 5, value: 0 });
    expect(gpiodV2.parseEvent('5 1\n')).toEqual({ line: 5, value: 1 });
    expect(gpiodV2.parseEvent('5 0')).toBeNull();
    expect(gpiodV2.parseEvent('garbage')).toBeNull();
  });

  it('builds libgpiod v1 command lines (Debian 12, Bookworm) and parses its edge numbers', () => {
    expect(gpiodV1.set('gpiochip0', 17, 1)).toEqual(['gpioset', '--mode=signal', 'gpiochip0', '17=1']);
    expect(gpiodV1.setLine).toBeNull();
    expect(gpiodV1.get('gpiochip0', 5, 'disabled')).toEqual(['gpioget', '--bias=disable', 'gpiochip0', '5']);
    expect(gpiodV1.mon('gpiochip0', 5, 'pull-up')).toEqual([
      'gpiomon',
      '--bias=pull-up',
      '--format=%o %e',
      'gpiochip0',
      '5',
    ]);
    expect(gpiodV1.parseEvent('5 0')).toEqual({ line: 5, value: 0 });
    expect(gpiodV1.parseEvent('5 1')).toEqual({ line: 5, value: 1 });
    expect(gpiodV1.parseEvent('5 2')).toBeNull();
  });

  it('tells the generation from gpioset --version', () => {
    expect(parseGpiodVersion('gpioset (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski')).toBe('v1');
    expect(parseGpiodVersion('gpioset (libgpiod) v2.1.3\nCopyright (C) 2017-2023 Bartosz Golaszewski')).toBe('v2');
    expect(parseGpiodVersion('bash: gpioset: command not found')).toBeNull();
    expect(parseGpiodVersion('gpioset (libgpiod) v3.0')).toBeNull();
  });
});
