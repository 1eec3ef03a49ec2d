/**
 * The HID seam. HidLike is the part of node-hid's HID class the box uses
 * (a 'data' and an 'error' event, write, close), so a simulated device
 * (device/sim/hid) drops in where node-hid's HID goes. HidBackend lists
 * devices, opens them and fetches report descriptors.
 */
import type { EventEmitter } from 'node:events';

export interface HidDeviceInfo {
  vendorId: number;
  productId: number;
  path?: string | undefined;
  product?: string | undefined;
  manufacturer?: string | undefined;
  serialNumber?: string | undefined;
  release: number;
  interface: number;
  usagePage?: number | undefined;
  usage?: number | undefined;
}

/** node-hid's HID as the box uses it: 'data' (Buffer, report id first for numbered reports), 'error'. */
export interface HidLike extends EventEmitter {
  write(values: number[] | Buffer): number;
  close(): void;
}

export interface HidBackend {
  devices(): HidDeviceInfo[];
  open(path: string): HidLike;
  /** The device's report descriptor, or null when it cannot be read. */
  reportDescriptor(device: HidDeviceInfo): number[] | null;
}
