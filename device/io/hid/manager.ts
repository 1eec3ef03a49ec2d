/**
 * Finds, opens and watches the box's HID devices: configured panic buttons
 * (by vendor/product id) and a telephony handset (usage page 0x0B, or the
 * configured ids). A device that errors (unplugged) is closed and forgotten;
 * the rescan, every hidRescanMs, reopens it when it is back.
 */
import { EventEmitter } from 'node:events';
import { describeError } from '../../../shared/errors.js';
import { getLogger } from '../../../shared/log.js';
import { parseReportDescriptor } from './descriptor.js';
import { Handset, isTelephonyDescriptor } from './handset.js';
import { type HidButtonConfig, hidButtonPressed } from './hid-button.js';
import type { HidBackend, HidDeviceInfo, HidLike } from './types.js';

const log = getLogger('device:io:hid');

export interface HidManagerOptions {
  backend: HidBackend;
  buttons: HidButtonConfig[];
  handset: { enabled: boolean; vendorId: number | null; productId: number | null };
  rescanMs: number;
}

export interface HidManagerEvents {
  /** Raw pressed level of a configured HID panic button (debounced and interpreted by PanicButton). */
  button: [name: string, pressed: boolean];
  handset: [handset: Handset | null];
  attached: [info: HidDeviceInfo, role: 'button' | 'handset'];
  detached: [info: HidDeviceInfo, role: 'button' | 'handset'];
}

interface Open {
  info: HidDeviceInfo;
  device: HidLike;
  role: 'button' | 'handset';
}

export class HidManager extends EventEmitter<HidManagerEvents> {
  private readonly open = new Map<string, Open>();
  private timer: NodeJS.Timeout | null = null;
  private handsetPath: string | null = null;
  private listError: string | null = null;

  constructor(private readonly opts: HidManagerOptions) {
    super();
  }

  start(): void {
    this.rescan();
    this.timer = setInterval(() => this.rescan(), this.opts.rescanMs);
    this.timer.unref?.();
  }

  get handset(): Handset | null {
    const o = this.handsetPath ? this.open.get(this.handsetPath) : undefined;
    return (o as (Open & { handset?: Handset }) | undefined)?.handset ?? null;
  }

  rescan(): void {
    let list: HidDeviceInfo[];
    try {
      list = this.opts.backend.devices();
    } catch (e) {
      // once per distinct failure, not every rescan (a box without hidraw/libusb would fill the journal)
      const msg = describeError(e);
      if (msg !== this.listError) log.warn({ err: e }, `cannot list HID devices: ${msg}`);
      this.listError = msg;
      return;
    }
    this.listError = null;
    for (const info of list) {
      if (!info.path || this.open.has(info.path)) continue;
      const button = this.opts.buttons.find((b) => b.vendorId === info.vendorId && b.productId === info.productId);
      if (button) {
        this.openButton(info, button);
        continue;
      }
      if (this.wantsHandset(info)) this.openHandset(info);
    }
  }

  private wantsHandset(info: HidDeviceInfo): boolean {
    const h = this.opts.handset;
    if (!h.enabled || this.handsetPath) return false;
    if (h.vendorId !== null && h.vendorId !== info.vendorId) return false;
    if (h.productId !== null && h.productId !== info.productId) return false;
    return info.usagePage === 0x0b || (h.vendorId !== null && h.productId !== null);
  }

  private tryOpen(info: HidDeviceInfo): HidLike | null {
    try {
      return this.opts.backend.open(info.path!);
    } catch (e) {
      log.warn({ path: info.path, err: e }, `cannot open HID device: ${describeError(e)}`);
      return null;
    }
  }

  private openButton(info: HidDeviceInfo, cfg: HidButtonConfig): void {
    const device = this.tryOpen(info);
    if (!device) return;
    const entry: Open = { info, device, role: 'button' };
    this.open.set(info.path!, entry);
    let last = false;
    device.on('data', (data: Buffer) => {
      const pressed = hidButtonPressed(cfg, data);
      if (pressed === null || pressed === last) return;
      last = pressed;
      this.emit('button', cfg.name, pressed);
    });
    device.on('error', (e: unknown) => {
      if (last) this.emit('button', cfg.name, false);
      this.drop(entry, e);
    });
    log.info({ name: cfg.name, product: info.product }, 'HID panic button attached');
    this.emit('attached', info, 'button');
  }

  private openHandset(info: HidDeviceInfo): void {
    const desc = this.opts.backend.reportDescriptor(info);
    if (!desc || !isTelephonyDescriptor(parseReportDescriptor(desc))) return;
    const device = this.tryOpen(info);
    if (!device) return;
    let handset: Handset;
    try {
      handset = new Handset(device, desc);
    } catch (e) {
      device.close();
      log.warn({ err: e, product: info.product }, 'HID device is not a usable handset');
      return;
    }
    const entry: Open & { handset: Handset } = { info, device, role: 'handset', handset };
    this.open.set(info.path!, entry);
    this.handsetPath = info.path!;
    device.on('error', (e: unknown) => this.drop(entry, e));
    log.info({ product: info.product }, 'USB handset attached');
    this.emit('attached', info, 'handset');
    this.emit('handset', handset);
  }

  private drop(entry: Open, e: unknown): void {
    if (this.open.get(entry.info.path!) !== entry) return;
    this.open.delete(entry.info.path!);
    try {
      entry.device.close();
    } catch {
      // already gone
    }
    log.warn({ product: entry.info.product, role: entry.role }, `HID device gone: ${describeError(e)}`);
    if (entry.role === 'handset') {
      this.handsetPath = null;
      this.emit('handset', null);
    }
    this.emit('detached', entry.info, entry.role);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const o of this.open.values()) {
      try {
        o.device.close();
      } catch {
        // ignore
      }
    }
    this.open.clear();
    this.handsetPath = null;
  }
}
