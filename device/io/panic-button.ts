/**
 * One panic button's gesture logic, fed with raw levels (GPIO edges, HID
 * report bits). Pure timing, no IO: time comes from the global timers, so
 * unit tests drive it with vi.useFakeTimers().
 *
 *  - debounce: a level counts once it has been stable for debounceMs
 *    (a 100-edge bounce storm is one press);
 *  - confirm: held for holdMs, or a second press within doublePressMs of
 *    the end of a short one;
 *  - stuck: held for stuckMs emits one 'fault' (and one 'recovered' on
 *    release) however long it stays down; a button already down when
 *    watching starts never confirms a panic before it has been released.
 *
 * Every debounced press is also emitted as 'press', so the controller can
 * use a press during its cancel window as a cancel.
 */
import { EventEmitter } from 'node:events';

export interface PanicButtonTiming {
  debounceMs: number;
  holdMs: number;
  doublePressMs: number;
  stuckMs: number;
}

export interface PanicButtonEvents {
  /** A debounced press (every one, including the one that confirms). */
  press: [];
  release: [];
  confirm: [how: 'hold' | 'double'];
  fault: [fault: string];
  recovered: [];
}

export class PanicButton extends EventEmitter<PanicButtonEvents> {
  private raw = false;
  private stable = false;
  private debounceTimer: NodeJS.Timeout | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private stuckTimer: NodeJS.Timeout | null = null;
  private lastShortReleaseAt: number | null = null;
  private confirmedThisPress = false;
  private stuck = false;
  /** Down at start: must be released once before it can confirm. */
  private blocked = false;

  constructor(
    readonly source: string,
    private timing: () => PanicButtonTiming,
  ) {
    super();
  }

  /** The level at start-up, without gestures: a button down at boot is watched for stuck only. */
  init(pressed: boolean): void {
    this.raw = pressed;
    this.stable = pressed;
    if (pressed) {
      this.blocked = true;
      this.startStuckTimer();
    }
  }

  get pressed(): boolean {
    return this.stable;
  }

  get isStuck(): boolean {
    return this.stuck;
  }

  /** A raw level from the hardware (true = pressed), as often as it comes. */
  input(pressed: boolean): void {
    if (pressed === this.raw) return;
    this.raw = pressed;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      if (this.raw !== this.stable) this.settle(this.raw);
    }, this.timing().debounceMs);
  }

  private settle(pressed: boolean): void {
    this.stable = pressed;
    const now = Date.now();
    const t = this.timing();
    if (pressed) {
      this.emit('press');
      this.confirmedThisPress = false;
      this.startStuckTimer();
      if (this.blocked) return;
      if (this.lastShortReleaseAt !== null && now - this.lastShortReleaseAt <= t.doublePressMs) {
        this.lastShortReleaseAt = null;
        this.confirm('double');
        return;
      }
      this.holdTimer = setTimeout(() => {
        this.holdTimer = null;
        this.confirm('hold');
      }, t.holdMs);
    } else {
      this.emit('release');
      this.blocked = false;
      if (this.holdTimer) {
        clearTimeout(this.holdTimer);
        this.holdTimer = null;
      }
      if (this.stuckTimer) {
        clearTimeout(this.stuckTimer);
        this.stuckTimer = null;
      }
      this.lastShortReleaseAt = this.confirmedThisPress ? null : now;
      if (this.stuck) {
        this.stuck = false;
        this.emit('recovered');
      }
    }
  }

  private confirm(how: 'hold' | 'double'): void {
    this.confirmedThisPress = true;
    this.emit('confirm', how);
  }

  private startStuckTimer(): void {
    if (this.stuckTimer) clearTimeout(this.stuckTimer);
    const ms = this.timing().stuckMs;
    this.stuckTimer = setTimeout(() => {
      this.stuckTimer = null;
      this.stuck = true;
      this.emit('fault', `stuck: held down for ${Math.round(ms / 1000)} s`);
    }, ms);
  }

  stop(): void {
    for (const t of [this.debounceTimer, this.holdTimer, this.stuckTimer]) if (t) clearTimeout(t);
    this.debounceTimer = this.holdTimer = this.stuckTimer = null;
    this.removeAllListeners();
  }
}
