/**
 * A panic press with the fleet unreachable, end to end on real transports:
 * the virtual panic button through johnny-five, the panic flow, the real
 * outbox (SQLite), the real modem driver talking AT to the modem emulator
 * over a socat pty, and the real MQTT link to an aedes broker that is down.
 *
 * The SMS reaches the modem (the first round is refused by the network
 * and retried) with the clinic name, the box and the time, within the
 * configured timeout; when the broker comes back the whole history reaches
 * the fleet in order, and the fleet's acknowledgement (panic.ack command)
 * lights the panic LED steady.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceConfigSchema } from '../device/config.js';
import { IoService } from '../device/io/index.js';
import { loadPinmap } from '../device/io/pinmap.js';
import { VirtualIo } from '../device/sim/virtual-io/virtual-io.js';
import { Store } from '../device/store/store.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { DEVICE_COMMANDS } from '../shared/contract/rpc.js';
import { DeviceSettingsSchema } from '../shared/contract/settings.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { RpcResponder } from '../shared/rpc.js';
import { waitFor } from '../shared/wait.js';
import { rig } from './modem-helpers.js';
import { FakeFleet, startBroker } from './uplink-helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const DEVICE = 'box-panic';
const CONTACTS = ['+15550001111', '+15550002222'];

describe('panic with the fleet unreachable', () => {
  it('SMS through the modem emulator in time; history reaches the fleet when the link returns', async () => {
    // the fleet's broker, down for the box (the fleet itself stays connected on its own listener)
    const broker = await startBroker();
    cleanups.push(() => broker.close());
    const fleet = await FakeFleet.start(broker.fleetUrl);
    cleanups.push(() => fleet.close());
    await broker.down();

    // the modem: real driver, emulator on a pty; the network refuses the first SMS
    const { emu, modem, stop } = await rig('sim7600', { smsTimeoutMs: 5000 });
    cleanups.push(stop);
    let refused = 0;
    emu.prepend({
      name: 'network refuses the first round of SMS',
      onCommand: (cmd) =>
        /^AT\+CMGS/.test(cmd) && refused++ < CONTACTS.length ? { final: '+CMS ERROR: 332' } : undefined,
    });

    // the box: outbox, link, io
    const store = await Store.open({
      file: join(mkdtempSync(join(tmpdir(), 'callbox-io-')), 'box.db'),
      migrations: { uplink: UPLINK_MIGRATIONS },
    });
    const outbox = new Outbox(store, {
      bootId: newBootId(),
      maxEvents: 1000,
      publishBatch: 50,
      minFreeBytes: 1,
      freeBytes: async () => 10 ** 12,
    });
    await outbox.open();
    cleanups.push(async () => {
      await outbox.close();
      await store.close();
    });
    const link = new Link({
      url: broker.url,
      identity: { kind: 'device', id: DEVICE, username: DEVICE, password: 'secret-secret-secret' },
      keepaliveS: 5,
      connectTimeoutMs: 1000,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      bootId: newBootId(),
      softwareVersion: 'test',
    });
    cleanups.push(() => link.stop());
    const unwire = wireOutbox(link, outbox, DEVICE);
    cleanups.push(async () => unwire());

    const config = Value.Cast(DeviceConfigSchema, Value.Default(DeviceConfigSchema, {}));
    config.io.board = 'virtual';
    config.io.smsRetryMinS = 1;
    const settings = Value.Cast(DeviceSettingsSchema, Value.Default(DeviceSettingsSchema, {}));
    settings.clinic.name = 'Main Street Clinic';
    settings.clinic.timezone = 'Europe/Berlin';
    settings.panic.contacts = CONTACTS;
    settings.panic.holdMs = 500;
    settings.panic.cancelWindowMs = 1000;
    settings.panic.ackTimeoutS = 10;
    const vio = new VirtualIo();
    const io = new IoService({
      config: config.io,
      sink: outbox,
      settings: () => settings,
      boxName: 'CB-0042',
      modem: () => modem,
      board: { virtualIo: vio },
      hidBackend: null,
    });
    cleanups.push(() => io.stop());
    await io.start();
    io.watchModem(modem);
    io.setLink('offline');
    link.on('online', () => io.setLink('online'));
    link.on('offline', () => io.setLink('offline'));
    link.start();

    // hold the panic button (wired to ground, pull-up) for 0.7 s
    const pinmap = loadPinmap();
    const panicPin = pinmap.signals['button.panic'].gpio;
    const panicLed = pinmap.signals['led.panic'].gpio;
    await new Promise((r) => setTimeout(r, 50));
    const pressedAt = Date.now();
    vio.press(panicPin, true);
    await waitFor(() => io.indicatorState.panic !== 'idle', 'the panic confirmed by the hold');
    vio.press(panicPin, false);

    // first attempt refused by the network, then accepted after the retry
    await waitFor(() => emu.smsSent.length === CONTACTS.length, 'SMS to every contact');
    const elapsed = Date.now() - pressedAt;
    expect(elapsed).toBeLessThan(settings.panic.ackTimeoutS * 1000);
    expect(emu.smsSent.map((s) => s.to)).toEqual(CONTACTS);
    const text = emu.smsSent[0]!.text;
    expect(text).toContain('Main Street Clinic');
    expect(text).toContain('CB-0042');
    const local = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/Berlin',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).format(new Date(pressedAt + 500));
    expect(text).toContain(local);
    // the emulator has the SMS a moment before the driver has its +CMGS answer and the panic is marked escalated
    await waitFor(() => io.indicatorState.panic === 'escalated', 'the panic marked escalated');
    expect(link.online).toBe(false);
    expect(fleet.events.count()).toBe(0);

    // the link returns: the whole history reaches the fleet, in order
    await broker.up();
    await fleet.events.waitFor(() => fleet.events.count() >= 5, 15_000, 'panic history');
    const history = (fleet.events.byDevice.get(DEVICE) ?? []).filter((e) => e.type.startsWith('panic.'));
    expect(history.map((e) => e.type)).toEqual(['panic.pressed', 'panic.sms', 'panic.sms', 'panic.sms', 'panic.sms']);
    const sms = history.filter((e) => e.type === 'panic.sms').map((e) => e.body as { status: string; attempt: number });
    expect(sms.map((b) => [b.status, b.attempt])).toEqual([
      ['failed', 1],
      ['failed', 1],
      ['sent', 2],
      ['sent', 2],
    ]);
    const panicId = (history[0]!.body as { panicId: string }).panicId;

    // the fleet acknowledges through the panic.ack command; the LED goes steady
    const responder = new RpcResponder(link.client, DEVICE_COMMANDS, io.commandHandlers(), {
      requestFilter: deviceTopics(DEVICE).cmdReq,
    });
    await responder.start();
    cleanups.push(() => responder.stop());
    const res = await fleet.commands.request(deviceTopics(DEVICE).cmdReq, 'panic.ack', { panicId, by: 'ops:alice' });
    expect(res).toEqual({ acknowledged: true });
    await fleet.events.waitFor(() => fleet.events.count() >= 6, 10_000, 'panic.acknowledged');
    expect(fleet.events.byDevice.get(DEVICE)!.at(-1)!.type).toBe('panic.acknowledged');
    expect(io.indicatorState.panic).toBe('acknowledged');
    const writes = vio.writes.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(vio.level(panicLed)).toBeGreaterThan(0);
    expect(vio.writes.slice(writes).filter((w) => w.pin === panicLed)).toEqual([]); // steady: no more toggles
  });
});
