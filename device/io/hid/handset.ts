/**
 * A USB telephony handset or headset (HID usage page 0x0B): the hook
 * switch in its input reports, the off-hook/ring/mute LEDs (LED page 0x08)
 * and the ringer (0x0B:0x9E) in its output reports, all located through
 * the report descriptor. An absolute hook switch reports its position; a
 * relative one (some headsets) reports a toggle.
 */
import { EventEmitter } from 'node:events';
import {
  type HidField,
  type ParsedDescriptor,
  parseReportDescriptor,
  readBits,
  reportKey,
  USAGE,
  writeBits,
} from './descriptor.js';
import type { HidLike } from './types.js';

export interface HandsetLeds {
  offHook: boolean;
  ring: boolean;
  mute: boolean;
}

export interface HandsetEvents {
  /** The hook switch moved: true = lifted (off hook). */
  hook: [offHook: boolean];
  mute: [pressed: boolean];
}

export function isTelephonyDescriptor(d: ParsedDescriptor): boolean {
  return d.fields.some(
    (f) => f.kind === 'input' && f.usagePage === USAGE.TELEPHONY_PAGE && f.usage === USAGE.HOOK_SWITCH,
  );
}

export class Handset extends EventEmitter<HandsetEvents> {
  readonly descriptor: ParsedDescriptor;
  private readonly hook: HidField;
  private readonly mute: HidField | undefined;
  private offHook = false;
  private leds: HandsetLeds = { offHook: false, ring: false, mute: false };

  constructor(
    readonly device: HidLike,
    descriptorBytes: ArrayLike<number>,
  ) {
    super();
    this.descriptor = parseReportDescriptor(descriptorBytes);
    const find = (page: number, usage: number) =>
      this.descriptor.fields.find((f) => f.kind === 'input' && f.usagePage === page && f.usage === usage);
    const hook = find(USAGE.TELEPHONY_PAGE, USAGE.HOOK_SWITCH);
    if (!hook) throw new Error('not a telephony device: no hook switch (0x0B:0x20) in its input reports');
    this.hook = hook;
    this.mute = find(USAGE.TELEPHONY_PAGE, USAGE.PHONE_MUTE);
    device.on('data', (data: Buffer) => this.onReport(data));
  }

  get isOffHook(): boolean {
    return this.offHook;
  }

  private onReport(data: Buffer): void {
    let id = 0;
    let body: ArrayLike<number> = data;
    if (this.descriptor.numbered) {
      id = data[0] ?? 0;
      body = data.subarray(1);
    }
    if (id === this.hook.reportId) {
      const v = readBits(body, this.hook.bitOffset, this.hook.bitSize);
      if (this.hook.relative) {
        if (v) this.setHook(!this.offHook);
      } else this.setHook(v !== 0);
    }
    if (this.mute && id === this.mute.reportId && readBits(body, this.mute.bitOffset, this.mute.bitSize)) {
      this.emit('mute', true);
    }
  }

  private setHook(offHook: boolean): void {
    if (offHook === this.offHook) return;
    this.offHook = offHook;
    this.emit('hook', offHook);
  }

  /** Tell the handset the call state (e.g. after the call was answered elsewhere). */
  syncHook(offHook: boolean): void {
    this.offHook = offHook;
  }

  /** Set the LEDs (and the ringer with the ring LED); writes one output report per report id involved. */
  setLeds(leds: Partial<HandsetLeds>): void {
    const next = { ...this.leds, ...leds };
    if (next.offHook === this.leds.offHook && next.ring === this.leds.ring && next.mute === this.leds.mute) return;
    this.leds = next;
    const want: [number, number, boolean][] = [
      [USAGE.LED_PAGE, USAGE.LED_OFF_HOOK, next.offHook],
      [USAGE.LED_PAGE, USAGE.LED_RING, next.ring],
      [USAGE.LED_PAGE, USAGE.LED_MUTE, next.mute],
      [USAGE.TELEPHONY_PAGE, USAGE.RINGER, next.ring],
    ];
    const reports = new Map<number, number[]>();
    for (const [page, usage, on] of want) {
      const f = this.descriptor.fields.find((x) => x.kind === 'output' && x.usagePage === page && x.usage === usage);
      if (!f) continue;
      const len = this.descriptor.reportBytes.get(reportKey('output', f.reportId)) ?? 1;
      const data = reports.get(f.reportId) ?? new Array<number>(len).fill(0);
      writeBits(data, f.bitOffset, f.bitSize, on ? 1 : 0);
      reports.set(f.reportId, data);
    }
    for (const [id, data] of reports) this.device.write([id, ...data]);
  }

  get ledState(): HandsetLeds {
    return { ...this.leds };
  }
}
