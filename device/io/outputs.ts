/**
 * The johnny-five side of the box's panel: LEDs and the buzzer as
 * five.Led components, the panic button and hook switch as five.Button
 * components, all placed by the pin map. A small player turns the
 * indicator patterns (indicators.ts) into on/off writes on a tick; only
 * changes are written.
 */
import { EventEmitter } from 'node:events';
import type { OpenedBoard } from './board.js';
import type { FiveButton, FiveLed } from './five.js';
import { johnnyFive } from './five.js';
import { buzzerLevelAt, type IndicatorOutputs, type LedPattern, ledLevelAt } from './indicators.js';
import { LED_NAMES, type LedName, type Pinmap, pinOf, type SignalName } from './pinmap.js';

export interface PanelEvents {
  /** Raw (johnny-five debounced only) level of the panic button. */
  panic: [pressed: boolean];
  /** The wired handset's hook switch: true = off hook (lifted). */
  hook: [offHook: boolean];
}

interface Driven {
  led: FiveLed;
  activeLow: boolean;
  pwm: boolean;
  /** last level written: null = never */
  level: number | null;
}

export class Panel extends EventEmitter<PanelEvents> {
  private readonly leds = new Map<LedName, Driven>();
  private readonly buzzer: Driven;
  private readonly buttons: FiveButton[] = [];
  private current: IndicatorOutputs | null = null;
  private readonly since = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opened: OpenedBoard,
    pinmap: Pinmap,
    private readonly tickMs = 25,
  ) {
    super();
    const five = johnnyFive();
    const { board, numbering } = opened;
    const pwmCapable = (pin: number) => opened.io.pins[pin]?.supportedModes.includes(opened.io.MODES.PWM!) ?? false;
    for (const name of LED_NAMES) {
      const signal = `led.${name}` as SignalName;
      const pin = pinOf(pinmap, signal, numbering);
      this.leds.set(name, {
        led: new five.Led({ pin, board }),
        activeLow: pinmap.signals[signal].activeLow,
        pwm: false,
        level: null,
      });
    }
    const bz = pinOf(pinmap, 'buzzer', numbering);
    this.buzzer = {
      led: new five.Led({ pin: bz, board }),
      activeLow: pinmap.signals.buzzer.activeLow,
      pwm: pinmap.signals.buzzer.pwm && pwmCapable(bz),
      level: null,
    };
    for (const [signal, event] of [
      ['button.panic', 'panic'],
      ['button.hook', 'hook'],
    ] as const) {
      const s = pinmap.signals[signal];
      const button = new five.Button({
        pin: pinOf(pinmap, signal, numbering),
        board,
        isPullup: s.pull === 'up',
        invert: s.activeLow,
      });
      button.on('down', () => this.emit(event, true));
      button.on('up', () => this.emit(event, false));
      this.buttons.push(button);
    }
    for (const d of [...this.leds.values(), this.buzzer]) this.write(d, 0);
  }

  /** Show new outputs; a pattern that did not change keeps its phase. */
  show(out: IndicatorOutputs): void {
    const now = Date.now();
    for (const name of LED_NAMES) {
      if (!this.current || !samePattern(this.current.leds[name], out.leds[name])) this.since.set(name, now);
    }
    if (!this.current || this.current.buzzer.pattern !== out.buzzer.pattern) this.since.set('buzzer', now);
    this.current = out;
    this.render();
    // tick only while something blinks or sounds
    const animated = LED_NAMES.some((n) => out.leds[n].kind !== 'on' && out.leds[n].kind !== 'off');
    if ((animated || out.buzzer.pattern !== 'silent') && !this.timer) {
      this.timer = setInterval(() => this.render(), this.tickMs);
      this.timer.unref?.();
    } else if (!animated && out.buzzer.pattern === 'silent' && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private render(): void {
    const out = this.current;
    if (!out) return;
    const now = Date.now();
    for (const name of LED_NAMES) {
      const on = ledLevelAt(out.leds[name], now - (this.since.get(name) ?? now));
      this.write(this.leds.get(name)!, on ? 255 : 0);
    }
    const b = out.buzzer;
    const sounding = buzzerLevelAt(b.pattern, now - (this.since.get('buzzer') ?? now));
    this.write(this.buzzer, sounding ? (this.buzzer.pwm ? Math.round((b.volume / 100) * 255) : 255) : 0);
  }

  private write(d: Driven, level: number): void {
    const effective = d.activeLow ? 255 - level : level;
    if (d.level === effective) return;
    d.level = effective;
    if (d.pwm && effective > 0 && effective < 255) d.led.brightness(effective);
    else if (effective > 0) d.led.on();
    else d.led.off();
  }

  /** The board still sees its inputs (the panic button): asked by the box's systemd watchdog. */
  healthy(): boolean {
    return this.opened.io.healthy?.() ?? true;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const d of [...this.leds.values(), this.buzzer]) this.write(d, 0);
    this.removeAllListeners();
    await this.opened.close();
  }
}

function samePattern(a: LedPattern, b: LedPattern): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
