/**
 * USB HID through node-hid's interface, on the simulated bus: lifting the
 * handset answers a ringing call, putting it down ends the call, the ring
 * and off-hook LEDs follow the call, an unplugged handset is reopened when
 * it comes back, and HID panic buttons (bitmask and keyboard) raise a panic.
 */
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceConfigSchema } from '../device/config.js';
import { MemoryEventSink } from '../device/events.js';
import { IoService } from '../device/io/index.js';
import { DESK_HANDSET, KEYBOARD_BUTTON, PANIC_BUTTON } from '../device/sim/hid/models.js';
import { SimHidBus } from '../device/sim/hid/simulated-hid.js';
import { VirtualIo } from '../device/sim/virtual-io/virtual-io.js';
import { DeviceSettingsSchema } from '../shared/contract/settings.js';
import { waitFor } from '../shared/wait.js';

let io: IoService | null = null;
afterEach(async () => {
  await io?.stop();
  io = null;
});

function make(bus: SimHidBus) {
  const config = Value.Default(DeviceConfigSchema, {}) as ReturnType<typeof Value.Cast<typeof DeviceConfigSchema>>;
  const cfg = Value.Cast(DeviceConfigSchema, config).io;
  cfg.board = 'virtual';
  cfg.hidRescanMs = 50;
  cfg.hidButtons = [
    {
      name: 'hid-desk',
      vendorId: PANIC_BUTTON.vendorId,
      productId: PANIC_BUTTON.productId,
      kind: 'bitmask',
      reportId: 0,
      byte: 0,
      mask: 1,
      keyUsage: 0x28,
    },
    {
      name: 'foot',
      vendorId: KEYBOARD_BUTTON.vendorId,
      productId: KEYBOARD_BUTTON.productId,
      kind: 'keyboard',
      reportId: 0,
      byte: 0,
      mask: 1,
      keyUsage: 0x68,
    },
  ];
  const settings = Value.Cast(DeviceSettingsSchema, Value.Default(DeviceSettingsSchema, {}));
  settings.panic.holdMs = 150;
  settings.panic.cancelWindowMs = 0;
  const sink = new MemoryEventSink();
  const service = new IoService({
    config: cfg,
    sink,
    settings: () => settings,
    boxName: 'CB-TEST',
    hidBackend: bus,
    board: { virtualIo: new VirtualIo() },
  });
  return { service, sink };
}

describe('USB HID handset and buttons', () => {
  it('lift to answer, hang up to end; LEDs follow the call; unplug and replug', async () => {
    const bus = new SimHidBus();
    const path = bus.plug(DESK_HANDSET);
    const { service } = make(bus);
    io = service;
    const requests: string[] = [];
    service.on('answer', (s) => requests.push(`answer:${s}`));
    service.on('hangup', (s) => requests.push(`hangup:${s}`));
    await service.start();
    await waitFor(() => service.handset !== null);
    const dev = () => bus.handle(path)!;

    service.setCall('ringing');
    // ring LED (report 2 bit 2) and ringer (report 3 bit 0)
    expect(dev().writes).toContainEqual([2, 0b0100]);
    expect(dev().writes).toContainEqual([3, 0b1]);

    bus.input(path, DESK_HANDSET.reports.offHook);
    await waitFor(() => requests.length === 1);
    expect(requests).toEqual(['answer:handset']);

    service.setCall('active');
    expect(dev().writes.at(-2)).toEqual([2, 0b0001]); // off-hook LED on, ring off
    expect(dev().writes.at(-1)).toEqual([3, 0]); // ringer off

    bus.input(path, DESK_HANDSET.reports.onHook);
    await waitFor(() => requests.length === 2);
    expect(requests).toEqual(['answer:handset', 'hangup:handset']);
    service.setCall('idle');
    expect(dev().writes.slice(-2)).toEqual([
      [2, 0],
      [3, 0],
    ]);

    // lifting while nothing rings does nothing
    bus.input(path, DESK_HANDSET.reports.offHook);
    bus.input(path, DESK_HANDSET.reports.onHook);
    await new Promise((r) => setTimeout(r, 50));
    expect(requests).toHaveLength(2);

    // unplug: noticed; replug: reopened and working again
    const first = dev();
    bus.unplug(path);
    await waitFor(() => service.handset === null);
    expect(first.isOpen).toBe(false);
    bus.plug(DESK_HANDSET, path);
    await waitFor(() => service.handset !== null);
    expect(dev()).not.toBe(first);
    service.setCall('ringing');
    bus.input(path, DESK_HANDSET.reports.offHook);
    await waitFor(() => requests.length === 3);
    expect(requests[2]).toBe('answer:handset');
  });

  it('HID panic buttons (bitmask and keyboard style) raise a panic when held', async () => {
    const bus = new SimHidBus();
    const desk = bus.plug(PANIC_BUTTON);
    const foot = bus.plug(KEYBOARD_BUTTON);
    const { service, sink } = make(bus);
    io = service;
    await service.start();
    await waitFor(() => bus.handle(desk) !== undefined && bus.handle(foot) !== undefined);

    bus.input(desk, PANIC_BUTTON.reports.press);
    await waitFor(() => sink.ofType('panic.pressed').length === 1, 'the panic confirmed by the hold');
    bus.input(desk, PANIC_BUTTON.reports.release);
    expect(sink.ofType('panic.pressed')[0]!.source).toBe('hid-desk');

    const panicId = sink.ofType('panic.pressed')[0]!.panicId;
    await service.handlePanicAck({ panicId, by: 'ops:test' });

    bus.input(foot, KEYBOARD_BUTTON.reports.press);
    await waitFor(() => sink.ofType('panic.pressed').length === 2, 'the second panic confirmed by the hold');
    bus.input(foot, KEYBOARD_BUTTON.reports.release);
    expect(sink.ofType('panic.pressed')[1]!.source).toBe('foot');
  });
});
