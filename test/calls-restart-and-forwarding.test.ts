/**
 * Issue 6 scenarios that span a restart or the network's forwarding state,
 * end to end: CallManager -> real driver (createModem) -> pty -> modem
 * emulator. The call records live in an SQLite file, as on the box.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CallManager } from '../device/calls/manager.js';
import { type DeepPartial, settingsFrom } from '../device/calls/settings.js';
import { type CallStore, SqliteCallStore } from '../device/calls/store.js';
import { MemoryEventSink } from '../device/events.js';
import { modemConfig } from '../device/modem/config.js';
import { createModem } from '../device/modem/driver.js';
import { ModemEmulator } from '../device/sim/modem/emulator.js';
import type { DeviceSettings } from '../shared/contract/settings.js';
import { waitFor } from '../shared/wait.js';
import { SteppedClock } from './helpers/clock.js';

const ROLLOVER = '+15550009999';
const ALICE = '+15551230001';
const allDay = [{ open: '00:00', close: '24:00' }];
const SETTINGS: DeepPartial<DeviceSettings> = {
  clinic: { timezone: 'UTC' },
  hours: { weekly: { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay } },
  calls: { inHours: 'ring-then-rollover', ringTimeoutS: 20 },
  rollover: { number: ROLLOVER, networkForwarding: true, noReplyTimeS: 25 },
  followUpSms: { enabled: true },
};

const dir = mkdtempSync(join(tmpdir(), 'callbox-calls-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length)
    await cleanups
      .pop()?.()
      .catch(() => undefined);
});

async function newEmulator() {
  const emu = new ModemEmulator({ vendor: 'sim7600', ringIntervalMs: 300 });
  cleanups.push(() => emu.stop());
  const { path } = await emu.start();
  return { emu, path };
}

/**
 * One run of the box's call handling: a driver on the emulator's port, a
 * CallManager, a store. Clinic time is stepped by the test (clock.advance).
 */
async function run(path: string, store: CallStore, opts: { provision?: boolean; startAt?: number } = {}) {
  const modem = createModem(modemConfig({ path, callPollMs: 250, ringEndMs: 1000, clipWaitMs: 50 }));
  await modem.start();
  expect(modem.state).toBe('ready');
  const sink = new MemoryEventSink();
  const clock = new SteppedClock(opts.startAt ?? Date.parse('2026-11-26T15:00:00Z'));
  const mgr = new CallManager({
    modem,
    sink,
    store,
    settings: () => settingsFrom(SETTINGS),
    clock,
    provisionForwarding: opts.provision ?? false,
  });
  const stop = async () => {
    await mgr.stop();
    await modem.stop();
  };
  cleanups.push(stop);
  await mgr.start();
  return { modem, sink, mgr, stop, clock };
}

describe('restart in the middle of a call', () => {
  it('an answered call survives a restart of the box software: no second call.incoming, one call.ended', async () => {
    const { emu, path } = await newEmulator();
    const file = join(dir, 'restart-answered.sqlite');
    const store1 = await SqliteCallStore.open(file);
    const first = await run(path, store1);
    const idx = emu.incomingCall(ALICE);
    await waitFor(() => first.sink.ofType('call.incoming').length === 1, 'call.incoming');
    await first.mgr.answer('handset');
    await waitFor(() => first.sink.ofType('call.answered').length === 1, 'answered');
    const callId = first.sink.ofType('call.incoming')[0]?.callId;
    // the process goes away; the call goes on at the modem
    await first.stop();
    await store1.close();

    const store2 = await SqliteCallStore.open(file);
    cleanups.push(() => store2.close());
    const second = await run(path, store2, { startAt: Date.parse('2026-11-26T15:00:00Z') + 10_000 });
    await waitFor(() => second.mgr.snapshot().inCall, 'call resumed from AT+CLCC');
    expect(second.sink.events).toEqual([]);
    second.clock.advance(5000);
    emu.callerHangsUp(idx);
    await waitFor(() => second.sink.ofType('call.ended').length === 1, 'call.ended after the restart');
    expect(second.sink.events.map((e) => e.type)).toEqual(['call.ended']);
    expect(second.sink.ofType('call.ended')[0]).toMatchObject({ callId, outcome: 'answered', number: ALICE });
    expect(await store2.openCalls()).toEqual([]);
  });

  it('a call that ended while the box was down is ended once at the next start', async () => {
    const { emu, path } = await newEmulator();
    const file = join(dir, 'restart-ended.sqlite');
    const store1 = await SqliteCallStore.open(file);
    const first = await run(path, store1);
    const idx = emu.incomingCall(ALICE);
    await waitFor(() => first.sink.ofType('call.incoming').length === 1, 'call.incoming');
    const callId = first.sink.ofType('call.incoming')[0]?.callId;
    await first.stop();
    await store1.close();
    emu.callerHangsUp(idx);
    await waitFor(() => emu.calls.length === 0, 'the call gone at the modem');

    const store2 = await SqliteCallStore.open(file);
    cleanups.push(() => store2.close());
    const second = await run(path, store2);
    await waitFor(() => second.sink.ofType('call.ended').length === 1, 'call.ended at start');
    expect(second.sink.events.map((e) => e.type)).toEqual(['call.ended']);
    expect(second.sink.ofType('call.ended')[0]).toMatchObject({ callId, number: ALICE });
    await second.mgr.idle();
    expect(second.sink.ofType('call.ended')).toHaveLength(1);
  });
});

describe('network forwarding (AT+CCFC)', () => {
  it('provisioning registers busy, no reply (25 s) and not reachable to the answering service, read back', async () => {
    const { emu, path } = await newEmulator();
    const store = await SqliteCallStore.open(join(dir, 'provision.sqlite'));
    cleanups.push(() => store.close());
    const box = await run(path, store, { provision: true });
    await waitFor(() => box.sink.ofType('forwarding.state').length === 3, 'three forwarding.state events');
    expect(box.sink.ofType('forwarding.state')).toEqual([
      { reason: 'busy', enabled: true, number: ROLLOVER, confirmed: true },
      { reason: 'no_reply', enabled: true, number: ROLLOVER, confirmed: true },
      { reason: 'not_reachable', enabled: true, number: ROLLOVER, confirmed: true },
    ]);
    expect(emu.forwarding.get(1)).toMatchObject({ enabled: true, number: ROLLOVER });
    expect(emu.forwarding.get(2)).toMatchObject({ enabled: true, number: ROLLOVER, time: 25 });
    expect(emu.forwarding.get(3)).toMatchObject({ enabled: true, number: ROLLOVER });
    expect(emu.forwarding.get(0)?.enabled ?? false).toBe(false);
  });

  it('rollover on and off by command: idempotent, each confirmed by an AT+CCFC query', async () => {
    const { emu, path } = await newEmulator();
    const store = await SqliteCallStore.open(join(dir, 'command.sqlite'));
    cleanups.push(() => store.close());
    const { mgr, sink } = await run(path, store);
    const handlers = mgr.commandHandlers();
    const ctx = { topic: 'callbox/v1/box-1/cmd/req', id: 'r1' };

    const on = await handlers['forwarding.set']?.({ enabled: true, reasonText: 'alert: no answer' }, ctx);
    expect(on).toEqual({ reason: 'unconditional', enabled: true, number: ROLLOVER, confirmed: true });
    expect(emu.forwarding.get(0)).toMatchObject({ enabled: true, number: ROLLOVER });
    const setOn = emu.commands.findIndex((c) => /^AT\+CCFC=0,3,/.test(c));
    expect(setOn).toBeGreaterThan(-1);
    expect(emu.commands.slice(setOn + 1).some((c) => /^AT\+CCFC=0,2/.test(c))).toBe(true);

    // the same command again: nothing written, still confirmed
    const writes = () => emu.commands.filter((c) => /^AT\+CCFC=0,[34]/.test(c)).length;
    expect(await handlers['forwarding.set']?.({ enabled: true }, ctx)).toMatchObject({ confirmed: true });
    expect(writes()).toBe(1);

    const off = await handlers['forwarding.set']?.({ enabled: false }, ctx);
    expect(off).toEqual({ reason: 'unconditional', enabled: false, number: null, confirmed: true });
    expect(emu.forwarding.get(0)?.enabled ?? false).toBe(false);
    expect(writes()).toBe(2);

    const q = await handlers['forwarding.query']?.({}, ctx);
    expect(q?.states.find((s) => s.reason === 'unconditional')).toEqual({
      reason: 'unconditional',
      enabled: false,
      number: null,
      confirmed: true,
    });
    expect(
      sink
        .ofType('forwarding.state')
        .slice(0, 3)
        .map((s) => [s.enabled, s.confirmed]),
    ).toEqual([
      [true, true],
      [true, true],
      [false, true],
    ]);
    expect(mgr.snapshot().forwardingOn).toBe(false);
  });

  it('a network that refuses the change: the command answers confirmed: false, reported as such', async () => {
    const { emu, path } = await newEmulator();
    const store = await SqliteCallStore.open(join(dir, 'refuse.sqlite'));
    cleanups.push(() => store.close());
    const { mgr, sink } = await run(path, store);
    // the modem accepts AT+CCFC writes with OK but nothing changes at the network
    emu.prepend({
      name: 'ccfc-write-ignored',
      onCommand: (cmd) => (/^AT\+CCFC=\d,[34]/i.test(cmd) ? { final: 'OK' } : undefined),
    });
    const r = await mgr.setForwarding({ enabled: true });
    expect(r).toEqual({ reason: 'unconditional', enabled: false, number: null, confirmed: false });
    expect(sink.ofType('forwarding.state')).toEqual([r]);
  });
});
