/**
 * A simulated HID device behind node-hid's own HID interface (the methods
 * of node-hid's HID class: read, readSync, readTimeout, write,
 * sendFeatureReport, getFeatureReport, pause, resume, setNonBlocking,
 * getDeviceInfo, close, and the 'data'/'error' events), plus a bus that
 * lists and opens such devices as node-hid's devices() and new HID(path)
 * do. Tests and the demo make devices send input reports (input()), read
 * what the host wrote (writes), and unplug and replug them.
 */
import { EventEmitter } from 'node:events';
import type { HidBackend, HidDeviceInfo, HidLike } from '../../io/hid/types.js';
import type { HidModel } from './models.js';

export class SimulatedHid extends EventEmitter implements HidLike {
  /** Output reports the host wrote, report id first, as node-hid passes them. */
  readonly writes: number[][] = [];
  private closed = false;
  private paused = false;
  private readonly queue: Buffer[] = [];

  constructor(
    readonly info: HidDeviceInfo,
    private readonly unplugged: () => boolean,
  ) {
    super();
    // node-hid starts reading when a 'data' listener is added
    this.on('newListener', (name) => {
      if (name === 'data') this.paused = false;
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** The device sends an input report. */
  input(report: number[]): void {
    if (this.closed || this.unplugged()) return;
    const buf = Buffer.from(report);
    if (this.paused || this.listenerCount('data') === 0) this.queue.push(buf);
    else this.emit('data', buf);
  }

  /** The device vanished: node-hid reports a read error on the open handle. */
  fail(): void {
    if (this.closed) return;
    this.emit('error', new Error('could not read from HID device'));
  }

  write(values: number[] | Buffer): number {
    if (this.closed || this.unplugged()) throw new TypeError('Cannot write to hid device');
    const arr = [...values];
    this.writes.push(arr);
    return arr.length;
  }

  read(callback: (err: unknown, data: number[]) => void): void {
    const next = this.queue.shift();
    setImmediate(() => (next ? callback(null, [...next]) : callback(null, [])));
  }

  readSync(): number[] {
    return [...(this.queue.shift() ?? [])];
  }

  readTimeout(_ms: number): number[] {
    return this.readSync();
  }

  sendFeatureReport(data: number[] | Buffer): number {
    return this.write(data);
  }

  getFeatureReport(reportId: number, length: number): number[] {
    return [reportId, ...new Array<number>(Math.max(0, length - 1)).fill(0)];
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (let b = this.queue.shift(); b; b = this.queue.shift()) this.emit('data', b);
  }

  setNonBlocking(_noBlock: boolean): void {}

  getDeviceInfo(): HidDeviceInfo {
    return { ...this.info };
  }

  close(): void {
    this.closed = true;
    this.removeAllListeners('data');
  }
}

interface Plugged {
  model: HidModel;
  info: HidDeviceInfo;
  plugged: boolean;
  handles: SimulatedHid[];
}

/** A USB bus of simulated devices, implementing the box's HidBackend (devices, open, report descriptor). */
export class SimHidBus implements HidBackend {
  private readonly devicesByPath = new Map<string, Plugged>();
  private next = 0;

  /** Plug a device in; returns its path. */
  plug(model: HidModel, path = `/dev/hidraw-sim${this.next++}`): string {
    const existing = this.devicesByPath.get(path);
    if (existing) {
      existing.plugged = true;
      return path;
    }
    this.devicesByPath.set(path, {
      model,
      plugged: true,
      handles: [],
      info: {
        vendorId: model.vendorId,
        productId: model.productId,
        path,
        manufacturer: model.manufacturer,
        product: model.product,
        release: 0x0100,
        interface: 0,
        usagePage: model.usagePage,
        usage: model.usage,
      },
    });
    return path;
  }

  /** Pull the device out: open handles get a read error, listing no longer shows it. */
  unplug(path: string): void {
    const d = this.devicesByPath.get(path);
    if (!d) return;
    d.plugged = false;
    for (const h of d.handles) h.fail();
  }

  devices(): HidDeviceInfo[] {
    return [...this.devicesByPath.values()].filter((d) => d.plugged).map((d) => ({ ...d.info }));
  }

  open(path: string): SimulatedHid {
    const d = this.devicesByPath.get(path);
    if (!d?.plugged) throw new TypeError(`cannot open device with path ${path}`);
    const h = new SimulatedHid(d.info, () => !d.plugged);
    d.handles.push(h);
    return h;
  }

  reportDescriptor(device: HidDeviceInfo): number[] | null {
    const d = device.path ? this.devicesByPath.get(device.path) : undefined;
    return d ? [...d.model.descriptor] : null;
  }

  /** The newest open handle of a device (what the box is using). */
  handle(path: string): SimulatedHid | undefined {
    const hs = this.devicesByPath.get(path)?.handles.filter((h) => h.isOpen);
    return hs?.[hs.length - 1];
  }

  /** The device sends an input report on every open handle. */
  input(path: string, report: number[]): void {
    for (const h of this.devicesByPath.get(path)?.handles ?? []) h.input(report);
  }
}
