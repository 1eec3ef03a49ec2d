/**
 * The real HID backend: node-hid (hidapi, hidraw driver on Linux) for
 * listing, opening, reading and writing; the report descriptor from sysfs
 * (/sys/class/hidraw/hidrawN/device/report_descriptor), because node-hid 3
 * does not expose hid_get_report_descriptor. Loaded lazily so that a box
 * without libusb/hidraw still starts (HID is then reported missing).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import type { HidBackend, HidDeviceInfo, HidLike } from './types.js';

const require = createRequire(import.meta.url);

interface NodeHid {
  devices(): HidDeviceInfo[];
  HID: new (path: string) => HidLike;
}

export class NodeHidBackend implements HidBackend {
  private hid: NodeHid | null = null;

  private lib(): NodeHid {
    this.hid ??= require('node-hid') as NodeHid;
    return this.hid;
  }

  devices(): HidDeviceInfo[] {
    return this.lib().devices();
  }

  open(path: string): HidLike {
    const HID = this.lib().HID;
    return new HID(path);
  }

  reportDescriptor(device: HidDeviceInfo): number[] | null {
    if (!device.path?.startsWith('/dev/hidraw')) return null;
    try {
      return [...readFileSync(`/sys/class/hidraw/${basename(device.path)}/device/report_descriptor`)];
    } catch {
      return null;
    }
  }
}
